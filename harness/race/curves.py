"""Recorded learning curves: the table a simulated race (`harness race --simulate`) replays.

A table is an ordinary Optuna study, `<name>/curves`, in the same storage as the spec's
searches and races (`harness record` fills it through `launch`, so budgets, workers, resume,
heartbeats and kill -9 survival are launch's). Each trial is one recorded run: a configuration
of the spec's search space on one training seed, trained to the full epoch budget without
pruning. What the replay reads from each trial is what every trial already records:

- the validation MSE of each epoch: its intermediate values;
- the seconds of each epoch: `epoch_seconds` (the gaps between epoch callbacks), scaled to sum to
  `train_seconds`, or `seconds_per_epoch` for every epoch where a trial predates `epoch_seconds`;
- the seconds outside training: `overhead_seconds` (records, the record's own sampling);
- the machine and settings: the study's `environment` attr, each trial's `numerics_path`,
  `torch_threads` and `device_name`.

A run that ended early on its own (diverged, or the slow-epoch guard) is PRUNED in the table
and is replayed as ending there too: live searches meet such configurations as well.

Why a study and not a file under `results/`: `harness report` and `harness studies` find it
in the storage the races live in, resume and workers come for free, and `--harvest` can copy
complete runs from the spec's own searches next door.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.search.spec import Choice, Range, StudySpec, spec_from_dict

CURVES_SUFFIX = "/curves"  # the table of spec X: study X/curves
CURVES_ATTR = "curves"  # on that study: the spec it records (without the seed), its seeds, configs and QMC seed
HARVESTED_ATTR = "harvested_from"  # on a copied trial: "<study>#<number>"
FLAG = "simulate"  # the key a user's mistake about a table is reported under (`--simulate`)


def table_name(spec_name: str) -> str:
    return spec_name + CURVES_SUFFIX


def distribution(p: Range | Choice) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution `study.suggest` uses for a search parameter."""
    if isinstance(p, Choice):
        return optuna.distributions.CategoricalDistribution(list(p.values))
    if isinstance(p.low, int) and isinstance(p.high, int):
        return optuna.distributions.IntDistribution(p.low, p.high, log=p.log)
    return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)


@dataclass(frozen=True)
class Scale:
    """Maps a numeric parameter to [0, 1] over its recorded range (log where the space is log)."""

    low: float
    high: float
    log: bool

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        f = np.log if self.log else np.asarray
        lo, hi = f(self.low), f(self.high)
        return (f(np.asarray(x, dtype=float)) - lo) / (hi - lo if hi > lo else 1.0)


@dataclass(frozen=True)
class CurveTable:
    """Recorded runs, grouped by configuration. Rows of the run arrays are runs; `curves` and
    `epoch_seconds` hold NaN past the epoch where a run ended."""

    name: str  # the study the runs were read from
    spec: StudySpec  # the recorded spec (its search space, without the seed)
    numeric: tuple[str, ...]  # numeric search parameters, the columns of `points`
    categorical: tuple[str, ...]
    params: tuple[dict[str, Any], ...]  # per configuration
    points: np.ndarray  # configurations x numeric: standardised coordinates
    keys: tuple[tuple[Any, ...], ...]  # per configuration: its categorical values
    runs: tuple[np.ndarray, ...]  # per configuration: the indices of its runs
    curves: np.ndarray  # runs x epochs: validation MSE
    epoch_seconds: np.ndarray  # runs x epochs
    overhead: np.ndarray  # runs: seconds outside training
    complete: np.ndarray  # runs: trained to the last epoch
    seeds: np.ndarray  # runs: the training seed
    clock: str = "wall"  # what the seconds are: "wall", or "cpu" (`read_table`)

    @property
    def epochs(self) -> int:
        return int(self.curves.shape[1])

    def standardise(self, params: dict[str, Any]) -> np.ndarray:
        scales = _scales(self.spec)
        return np.array([float(scales[k](params[k])) for k in self.numeric])

    def nearest(self, params: dict[str, Any], exclude: int | None = None) -> int:
        """The recorded configuration nearest to `params`: the same categorical values, then the
        least Euclidean distance in standardised space (the first recorded on a tie)."""
        key = tuple(params[k] for k in self.categorical)
        index = self.by_key.get(key)
        if index is None:
            shown = dict(zip(self.categorical, key, strict=True))
            raise ConfigError(FLAG, f"table {self.name!r} holds no run with {shown}")
        if exclude is not None:
            index = index[index != exclude]
            if not len(index):
                raise ConfigError(FLAG, f"table {self.name!r} holds only one run with {key}")
        d = np.sum((self.points[index] - self.standardise(params)) ** 2, axis=1)
        return int(index[int(np.argmin(d))])

    @cached_property
    def by_key(self) -> dict[tuple[Any, ...], np.ndarray]:
        """Configuration indices per categorical key (computed once: a replay looks up every trial)."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, key in enumerate(self.keys):
            groups.setdefault(key, []).append(i)
        return {k: np.array(v) for k, v in groups.items()}

    def final(self, run: int) -> float:
        """A run's best validation MSE (its trial value); NaN for a run that ended early."""
        return float(np.nanmin(self.curves[run])) if self.complete[run] else math.nan


def _scales(spec: StudySpec) -> dict[str, Scale]:
    return {k: Scale(float(p.low), float(p.high), p.log) for k, p in spec.search.items() if isinstance(p, Range)}


def _runs_of(trial: optuna.trial.FrozenTrial, epochs: int, clock: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A recorded trial's curve and epoch seconds on `clock` (NaN-padded to `epochs`); None where
    it holds no curve or ended early for another reason than its own (pruned by a pruner, a
    harvested trial that ran fewer epochs)."""
    steps = sorted(trial.intermediate_values)
    if not steps or steps != list(range(len(steps))) or len(steps) > epochs:
        return None
    curve = np.full(epochs, np.nan)
    curve[: len(steps)] = [trial.intermediate_values[s] for s in steps]
    attrs = trial.user_attrs
    train = float(attrs.get("train_seconds", 0.0))
    raw = attrs.get("epoch_seconds")
    cpu = attrs.get("epoch_cpu_seconds")
    if clock == "cpu" and cpu and len(cpu) == len(steps):
        shape = np.asarray(cpu, dtype=float)
    elif raw and len(raw) == len(steps) and sum(raw) > 0:
        shape = np.asarray(raw, dtype=float) * train / sum(raw)
    else:
        shape = np.full(len(steps), train / len(steps))
    seconds = np.full(epochs, np.nan)
    seconds[: len(steps)] = shape
    return curve, seconds


def read_table(study: optuna.Study, clock: str = "wall") -> CurveTable:
    """The table held by a curves study (`harness record`); a `ConfigError` on `simulate` when
    it is not one or holds no run.

    `clock` "wall": each epoch's wall seconds, each run's own overhead. "cpu", for a table
    recorded on a machine shared with other work (whose wall times that work inflates): each
    epoch's process CPU seconds (`epoch_cpu_seconds`; a run without them keeps its wall
    seconds) and, for every run, the table's median overhead. CPU seconds count all of torch's
    threads, so they match an idle machine's wall time where the runs had one thread
    (`harness record --threads 1`)."""
    info = study.user_attrs.get(CURVES_ATTR)
    if info is None:
        raise ConfigError(FLAG, f"study {study.study_name!r} is not a table of recorded curves (`harness record`)")
    spec = spec_from_dict(info["spec"], source=study.study_name)
    numeric = tuple(k for k, p in spec.search.items() if isinstance(p, Range))
    categorical = tuple(k for k, p in spec.search.items() if isinstance(p, Choice))
    epochs = spec.training.epochs
    configs: dict[tuple[Any, ...], int] = {}
    params: list[dict[str, Any]] = []
    rows: list[tuple[int, np.ndarray, np.ndarray, float, bool, int]] = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        config = t.user_attrs.get("config", {})
        read = _runs_of(t, epochs, clock)
        if read is None or any(k not in config for k in spec.search):
            continue
        complete = t.state == TrialState.COMPLETE and not np.isnan(read[0][-1])
        if t.state == TrialState.COMPLETE and not complete:
            continue  # complete in fewer epochs than the table's: another budget
        p = {k: config[k] for k in spec.search}
        key = tuple(p[k] for k in (*categorical, *numeric))
        if key not in configs:
            configs[key] = len(params)
            params.append(p)
        overhead = float(t.user_attrs.get("overhead_seconds", 0.0))
        rows.append((configs[key], read[0], read[1], overhead, complete, int(config.get("seed", 0))))
    if not rows:
        raise ConfigError(FLAG, f"table {study.study_name!r} holds no recorded run yet; `harness record` fills it")
    overheads = np.array([r[3] for r in rows])
    if clock == "cpu":
        overheads = np.full(len(rows), float(np.median(overheads)))
    scales = _scales(spec)
    points = np.array([[float(scales[k](p[k])) for k in numeric] for p in params]).reshape(len(params), len(numeric))
    owner = np.array([r[0] for r in rows])
    return CurveTable(
        name=study.study_name,
        spec=spec,
        numeric=numeric,
        categorical=categorical,
        params=tuple(params),
        points=points,
        keys=tuple(tuple(p[k] for k in categorical) for p in params),
        runs=tuple(np.nonzero(owner == i)[0] for i in range(len(params))),
        curves=np.vstack([r[1] for r in rows]),
        epoch_seconds=np.vstack([r[2] for r in rows]),
        overhead=overheads,
        clock=clock,
        complete=np.array([r[4] for r in rows]),
        seeds=np.array([r[5] for r in rows]),
    )


def load_table(storage: optuna.storages.BaseStorage, name: str, clock: str = "wall") -> CurveTable:
    """The table `name` in the storage; a `ConfigError` on `simulate` that lists the tables
    there when there is no such study."""
    names = optuna.get_all_study_names(storage=storage)
    if name not in names:
        tables = [n for n in names if n.endswith(CURVES_SUFFIX)]
        raise ConfigError(FLAG, f"no table {name!r} in the storage; tables there: {', '.join(tables) or '(none)'}; "
                                "`harness record SPEC` records one")  # fmt: skip
    return read_table(optuna.load_study(study_name=name, storage=storage), clock)


def check_covers(table: CurveTable, spec: StudySpec) -> None:
    """Refuse (a `ConfigError` on `simulate`) a spec the table cannot answer: another search
    space (a parameter, a range wider than recorded, a category without a run) or other fixed
    settings (the signal, epochs, protocol, ...: the curves would be another experiment's)."""
    where = f"table {table.name!r}"
    if set(spec.search) != set(table.spec.search):
        raise ConfigError(FLAG, f"{where} records the search space {sorted(table.spec.search)}, "
                                f"the spec searches {sorted(spec.search)}")  # fmt: skip
    for k, p in spec.search.items():
        rec = table.spec.search[k]
        if isinstance(p, Choice):
            missing = [v for v in p.values if not any(params[k] == v for params in table.params)]
            if missing or not isinstance(rec, Choice):
                raise ConfigError(FLAG, f"{where} does not cover search.{k}: no run with {missing or p.values}")
        elif not isinstance(rec, Range) or p.low < rec.low or p.high > rec.high or p.log != rec.log:
            raise ConfigError(FLAG, f"{where} does not cover search.{k}: recorded {_show(rec)}, "
                                    f"the spec has {_show(p)}")  # fmt: skip
    mine, theirs = _settings(spec), _settings(table.spec)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            raise ConfigError(FLAG, f"{where} was recorded with {key} = {theirs.get(key)!r}, the spec has "
                                    f"{mine.get(key)!r}")  # fmt: skip


def _show(p: Range | Choice) -> str:
    return str(list(p.values)) if isinstance(p, Choice) else f"{p.low}..{p.high}" + (" (log)" if p.log else "")


def _settings(spec: StudySpec) -> dict[str, Any]:
    """What decides a run besides its searched parameters and seed, as `section.key` -> value."""
    d = spec.to_dict()
    out = {f"signal.{k}": v for k, v in d["signal"].items()}
    out |= {f"training.{k}": v for k, v in d["training"].items() if k != "seed" and k not in spec.search}
    out |= {f"search.{k}": v for k, v in spec.fixed.items()}
    return out


def loo_pairs(table: CurveTable) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out coverage: for each configuration with a complete run, its own mean final
    loss and that of its nearest other configuration (the same categorical values)."""
    own, near = [], []
    mean_final = [np.nanmean([table.final(r) for r in runs]) for runs in table.runs]
    for i, p in enumerate(table.params):
        if not math.isfinite(mean_final[i]):
            continue
        try:
            j = table.nearest(p, exclude=i)
        except ConfigError:
            continue
        if math.isfinite(mean_final[j]):
            own.append(mean_final[i])
            near.append(mean_final[j])
    return np.array(own), np.array(near)


def describe_table(table: CurveTable) -> dict[str, Any]:
    """A table's size, for the replay's record and the command's summary line."""
    return {"table": table.name, "configs": len(table.params), "runs": len(table.overhead),
            "ended_early": int((~table.complete).sum()), "epochs": table.epochs, "clock": table.clock}  # fmt: skip


def harvestable(trial: optuna.trial.FrozenTrial, spec: StudySpec, settings: dict[str, Any]) -> bool:
    """A search trial the table can take: complete, trained to the spec's epochs with a curve for
    every epoch, under the same fixed settings, with parameters inside the search space."""
    config = trial.user_attrs.get("config")
    if trial.state != TrialState.COMPLETE or not config or len(trial.intermediate_values) != spec.training.epochs:
        return False
    if int(trial.user_attrs.get("epochs_run", 0)) != spec.training.epochs:
        return False
    for k, p in spec.search.items():
        inside = isinstance(p, Choice) and config.get(k) in p.values
        inside |= isinstance(p, Range) and isinstance(config.get(k), int | float) and p.low <= config[k] <= p.high
        if not inside:
            return False
    probe = _run_settings(config, spec)
    return all(probe.get(k) == v for k, v in settings.items())


def _run_settings(config: dict[str, Any], spec: StudySpec) -> dict[str, Any]:
    """A stored run config's fixed settings in `settings_of`'s shape."""
    return {k: v for k, v in config.items() if k not in spec.search and k != "seed"}


def settings_of(spec: StudySpec, example: dict[str, Any]) -> dict[str, Any]:
    """The fixed settings every harvested run must share: the spec's run config for `example`
    parameters, less the searched parameters and the seed."""
    return _run_settings(spec.run_config(example).to_dict(), spec)
