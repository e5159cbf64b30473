"""`harness race`: which search method finds a good model fastest, over repeats, on wall-clock.

A **method** is a sampler + pruner pair (`tpe+median`). Each method runs `repeats` times
with sampler seeds derived from the spec's, the same seed for the same repeat index of every
method (they share nothing else), into studies `<name>/race/<method>/<r>` of one storage.
Each repeat is an ordinary study made by `launch.launch`, so budgets, workers, heartbeats
and resume behave as for `harness launch`; the race adds study attrs only:

- `race`: the parent name, method, sampler, pruner, repeat, seed and budget (set before the
  first trial, so a report running meanwhile never mistakes the study for a search);
- `race_segments`: the wall-clock intervals `[start, end]` during which the race ran this
  repeat (one per session; a resumed repeat gets another). A trial's elapsed time is the
  length of those intervals up to the moment it finished (`datetime_complete`, written with
  the trial by Optuna on the same clock), so a resume counts only time spent on the repeat.

A race searches over all cells in one study (the spec's `equal_cells` is switched off):
the question is which method finds a good model soonest, whatever its cell. Race studies
keep no trained weights (no artifact store): they measure the search, not the models.

Repeats run in the order r = 0 for every method, then r = 1, ..., so an interrupted race
leaves every method with about the same number of repeats.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.race.read import RACE_ATTR, RACE_INFIX, SEGMENTS_ATTR
from harness.search.optuna_internals import startup_trials
from harness.search.samplers import PRUNERS, SAMPLERS
from harness.search.spec import StudySpec, spec_from_dict
from harness.search.storage import open_storage
from harness.search.study import count_trials, derive_seed, summarize
from harness.stats.race_stats import MethodInfo, close_segments, spent_seconds

DEFAULT_METHODS = ("random+none", "tpe+none", "tpe+median", "tpe+hyperband", "gp+none")
DEFAULT_REPEATS = 10
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_SEED_SALT = 4111  # race seeds are independent of the search's and the replicates' seeds
# A seconds budget has no trial target; launch needs one, so it gets one it never reaches.
UNBOUNDED_TRIALS = 1_000_000
MIN_SECONDS = 1.0  # a seconds budget with less than this left is done: a launch takes about this to start


@dataclass(frozen=True)
class Method:
    sampler: str
    pruner: str

    @property
    def name(self) -> str:
        return f"{self.sampler}+{self.pruner}"


def parse_methods(text: str) -> tuple[Method, ...]:
    """`tpe+median,random+none` -> methods, in order, without duplicates; a `ConfigError` on
    key `methods` that names the allowed samplers and pruners otherwise."""
    allowed = f"SAMPLER+PRUNER with sampler in {', '.join(SAMPLERS)}, pruner in {', '.join(PRUNERS)}"
    methods: list[Method] = []
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ConfigError("methods", f"no method given; each is {allowed}")
    for item in items:
        sampler, sep, pruner = item.partition("+")
        if not sep or "+" in pruner:
            raise ConfigError("methods", f"{item!r} is not a method; each is {allowed}")
        if sampler not in SAMPLERS:
            raise ConfigError("methods", f"unknown sampler {sampler!r} in {item!r}; allowed: {', '.join(SAMPLERS)}")
        if pruner not in PRUNERS:
            raise ConfigError("methods", f"unknown pruner {pruner!r} in {item!r}; allowed: {', '.join(PRUNERS)}")
        method = Method(sampler, pruner)
        if method not in methods:
            methods.append(method)
    return tuple(methods)


@dataclass(frozen=True)
class Budget:
    """Per repeat: a number of finished trials, or seconds of wall-clock (no new trial starts after)."""

    trials: int | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials} if self.seconds is None else {"seconds": self.seconds}


def study_name(parent: str, method: Method, repeat: int) -> str:
    return f"{parent}{RACE_INFIX}{method.name}/{repeat}"


def repeat_seed(spec: StudySpec, repeat: int) -> int:
    """The sampler seed of repeat `repeat`: the same for every method, different per repeat."""
    return derive_seed(spec.study.sampler_seed, _SEED_SALT, repeat) % 2**31


def race_spec(spec: StudySpec, method: Method, repeat: int, trials: int) -> StudySpec:
    """The spec of one repeat: the method's sampler and pruner, the repeat's seed, one study
    over all cells, val_mse alone; validated like a file (e.g. grid needs lists, not ranges)."""
    study = replace(spec.study, name=study_name(spec.study.name, method, repeat), sampler=method.sampler,
                    pruner=method.pruner, sampler_seed=repeat_seed(spec, repeat), trials=trials, equal_cells=False,
                    objectives=("val_mse",))  # fmt: skip
    try:
        return spec_from_dict(replace(spec, study=study).to_dict(), source=f"{spec.study.name} with {method.name}")
    except ConfigError as e:  # a SpecError names the spec and key
        raise ConfigError("methods", f"{method.name}: {e}") from None


def _now() -> str:
    # Optuna stamps datetime_start/complete with naive local datetime.now(); the segments use the same clock.
    return datetime.now().isoformat()


def segments(study: optuna.Study) -> list[list[str | None]]:
    return [list(s) for s in study.user_attrs.get(SEGMENTS_ATTR, [])]


def _close_open_segments(study: optuna.Study) -> None:
    segs = segments(study)
    if any(end is None for _, end in segs):
        done = [t.datetime_complete for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
        study.set_user_attr(SEGMENTS_ATTR, close_segments(segs, done))


def _prepare(storage_url: str, spec: StudySpec, info: dict[str, Any]) -> optuna.Study:
    """Create (or load) the repeat's study and mark it as a race study before any trial runs;
    the budget recorded is this run's (the report reads the race as last asked for)."""
    study = optuna.create_study(study_name=spec.study.name, storage=open_storage(storage_url), load_if_exists=True)
    if study.user_attrs.get(RACE_ATTR) != info:
        study.set_user_attr(RACE_ATTR, info)
    _close_open_segments(study)
    return study


def _done(study: optuna.Study, budget: Budget) -> tuple[bool, float | None]:
    """Whether the repeat has its budget, and for a seconds budget the seconds left."""
    if budget.seconds is None:
        assert budget.trials is not None
        return count_trials(study)[0] >= budget.trials, None
    left = budget.seconds - spent_seconds(segments(study))
    return left < MIN_SECONDS, left


def warm_up(spec: StudySpec, device: str) -> None:
    """One short, untimed training per cell before the first repeat, so that the first
    repeat (always the first method's) does not pay this process's one-off costs: torch's
    first kernels, loading the compiled fused recurrence."""
    from harness.search.spec import Choice, Range
    from harness.training.train import run

    params: dict[str, Any] = {}
    for name, p in spec.search.items():
        if name != "cell":
            params[name] = p.values[0] if isinstance(p, Choice) else (p.low if isinstance(p, Range) else p)
    for cell in spec.cells():
        config = spec.run_config({**params, "cell": cell})
        run(replace(config, epochs=1), device)


class _Deadline:
    """Ends a seconds-budget repeat at its deadline: the trial then training is stopped like a
    Ctrl-C (launch marks it FAIL, `interrupted`, and stops its workers), and `race` goes on.
    Without this a trial started just before the deadline could run minutes past it."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._armed = False
        self._timer: threading.Timer | None = None

    def _fire(self) -> None:
        with self._lock:
            if self._armed:
                self.fired = True
                os.kill(os.getpid(), signal.SIGINT)  # handled by launch's interrupt gate

    def __enter__(self) -> _Deadline:
        if self.seconds is not None:
            self._armed = True
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._armed = False
        if self._timer is not None:
            self._timer.cancel()


def race(
    specs: Sequence[StudySpec],
    storage_url: str,
    *,
    methods: Sequence[Method] = (),
    repeats: int = DEFAULT_REPEATS,
    budget: Budget | None = None,
    workers: int = 1,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    log: Any = None,
) -> list[dict[str, Any]]:
    """Run (or resume) every spec's race; returns the summary of each repeat run or found done.
    Every repeat's spec is built and validated before anything is written."""
    from harness.search.launch import launch  # here: the report reads race studies without importing the launcher

    methods = tuple(methods) or parse_methods(",".join(DEFAULT_METHODS))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plans = []
    for spec in specs:
        b = budget if budget is not None and (budget.trials or budget.seconds) else Budget(trials=spec.study.trials)
        trials = b.trials if b.seconds is None else UNBOUNDED_TRIALS
        assert trials is not None
        for r in range(repeats):
            for m in methods:
                plans.append((spec, m, r, b, race_spec(spec, m, r, trials)))
    summaries, warmed = [], set()
    for spec, m, r, b, member in plans:
        info = {"name": spec.study.name, "method": m.name, "sampler": m.sampler, "pruner": m.pruner, "repeat": r,
                "seed": member.study.sampler_seed, "budget": b.to_dict(), "spec": spec.to_dict()}  # fmt: skip
        study = _prepare(storage_url, member, info)
        done, left = _done(study, b)
        if not done:
            if spec.study.name not in warmed:
                warm_up(spec, device)
                warmed.add(spec.study.name)
            study.set_user_attr(SEGMENTS_ATTR, [*segments(study), [_now(), None]])
            deadline = _Deadline(left)
            try:
                with deadline:
                    launch(member, storage_url, trials=member.study.trials, workers=workers, device=device,
                           timeout=left, progress=progress and b.seconds is None, threads=threads)  # fmt: skip
            except KeyboardInterrupt:
                if not deadline.fired:
                    raise  # the user's Ctrl-C
            finally:
                segs = segments(study)
                segs[-1][1] = _now()
                study.set_user_attr(SEGMENTS_ATTR, segs)
        summary = summarize(study) | {"ran": not done, "seconds": spent_seconds(segments(study))}
        summaries.append(summary)
        finished = sum(summary["counts"][s.name] for s in FINISHED)
        line = f"{member.study.name}: {'ran' if not done else 'done already'}; {finished} finished trials"
        line += f" in {summary['seconds']:.1f} s"
        if summary["best_value"] is not None:
            line += f", best val_mse {summary['best_value']:.4g}"
        print(line, file=log or sys.stderr)
    return summaries


def startup_warnings(infos: Sequence[MethodInfo]) -> list[str]:
    """Methods whose median repeat ended before their sampler's random start-up was over: they
    searched exactly as random search did (the same seeds), so the race cannot tell them apart."""
    found = []
    for info in infos:
        sampler = info.method.split("+")[0]
        with warnings.catch_warnings():  # QMC's "experimental" warning, for a sampler built only to ask this
            warnings.simplefilter("ignore")
            startup = startup_trials(SAMPLERS[sampler](0, {})) if sampler in SAMPLERS else 0
        if info.median_trials < startup:
            found.append(f"{info.name}: {info.method}'s median repeat holds {info.median_trials:g} trials, fewer "
                            f"than {sampler}'s {startup} random start-up trials, so it searched as random search "
                            "did; give each repeat a larger budget to compare it")  # fmt: skip
    return found


def describe(storage: optuna.storages.BaseStorage, names: Sequence[str]) -> list[str]:
    """One line per (race, method) for `harness studies`: repeats, trials, best value range."""
    groups: dict[tuple[str, str], list[optuna.Study]] = {}
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        info = study.user_attrs[RACE_ATTR]
        groups.setdefault((info["name"], info["method"]), []).append(study)
    lines = []
    for (parent, method), studies in groups.items():
        finished = [sum(t.state in FINISHED for t in s.get_trials(deepcopy=False)) for s in studies]
        bests = [b for b in (_best(s) for s in studies) if b is not None]
        line = f"{parent}{RACE_INFIX}{method}: {len(studies)} repeats, {sum(finished)} finished trials"
        if bests:
            line += f"; best val_mse per repeat {min(bests):.4g} .. {max(bests):.4g}"
        lines.append(line)
    return lines


def _best(study: optuna.Study) -> float | None:
    values = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    return min(values) if values else None
