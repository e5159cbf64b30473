"""The report's numbers: study frames, comparison tables and the records figures are drawn from.

Each table and figure is computed by a function here that returns a DataFrame or a typed
record (`figure_data`), then drawn or written elsewhere (`figures`, `write`), so tests check
the numbers, not the pixels. It reads only the storage and the artifact store, and never
trains: the prediction figures load each cell's best trial's stored weights
(`harness.search.weights`). Only for a study recorded before trials kept weights, and only
when asked (`retrain`), does it re-run the stored config.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.race.curves import CURVES_ATTR, CURVES_SUFFIX
from harness.race.read import RACE_ATTR
from harness.report.figure_data import (
    MSE_UNITS,
    STANDARDISED,
    BestSoFarInfo,
    HorizonInfo,
    LearningCurvesInfo,
    ParamScatterInfo,
    ParetoInfo,
    PredictionsInfo,
)
from harness.search import weights
from harness.search.spec import Range, StudySpec, spec_from_dict
from harness.search.study import COMPANION_ATTR, PER_CELL_ATTR
from harness.series.compare import baseline_horizon, baseline_scores, horizon_scores, origins
from harness.series.data import make_windows, split_indices
from harness.series.signals import SignalConfig, make_signal, prepared, real_series
from harness.series.sources import BUILTINS
from harness.training import evaluate
from harness.training.models import RecurrentRegressor
from harness.training.train import RunConfig, run

CELL_ORDER = ("rnn", "lstm", "lstm-fb1", "gru")
REFERENCES = ("persistence", "mean", "linear-ar")
TOP_CURVES = 3  # learning curves drawn per cell


@dataclass(frozen=True)
class StudyData:
    """One signal's search: a study, or the per-cell studies of an `equal_cells` spec."""

    name: str
    spec: StudySpec
    trials: pd.DataFrame  # one row per trial of every member study, see `trials_frame`
    studies: tuple[optuna.Study, ...]

    @property
    def signal_label(self) -> str:
        signal = self.spec.signal
        return signal.label + (f" (noise {signal.noise_std:g})" if signal.noise_std > 0 else "")

    def trial(self, study_name: str, number: int) -> optuna.trial.FrozenTrial:
        study = next(study for study in self.studies if study.study_name == study_name)
        return study.trials[number]

    def budgets(self) -> dict[str, int]:
        """Each cell's trial budget: its study's target, or for one shared study its count."""
        if len(self.studies) == 1 and PER_CELL_ATTR not in self.studies[0].user_attrs:
            counts = self.trials.groupby("cell")["number"].count()
            budgets = {str(cell): int(count) for cell, count in counts.items()}
        else:
            budgets = {
                study.user_attrs[PER_CELL_ATTR]["cell"]: int(study.user_attrs["spec"]["study"]["trials"])
                for study in self.studies
            }
        return dict(sorted(budgets.items(), key=lambda item: _cell_rank(item[0])))


# A real series' test errors in its own units and scale-free (`harness.training.train.units_metrics`).
UNIT_COLUMNS = ("test_mase", "test_rmsse", "test_mae", "test_rmse", "test_mse_units")
TRIAL_COLUMNS = ["study", "number", "state", "value", "cell", "test_mse", "rollout_mse", "horizon", "train_seconds",
                 "seconds_per_epoch", "n_params", "overhead_seconds", "fail_reason", "curve"]  # fmt: skip


def trials_frame(study: optuna.Study, params: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per trial; every column is there even before any trial has reported it. A
    pruned trial's value is the best validation MSE it reported."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        config = attrs.get("config", {})
        curve = [trial.intermediate_values[epoch] for epoch in sorted(trial.intermediate_values)]
        value = trial.values[0] if trial.values else np.nan
        if trial.state == TrialState.PRUNED and curve:
            value = float(np.nanmin(curve))
        rows.append(
            {
                "study": study.study_name,
                "number": trial.number,
                "state": trial.state.name,
                "value": value,
                "cell": trial.params.get("cell", config.get("cell")),
                **{name: chosen for name, chosen in trial.params.items() if name != "cell"},
                **{name: config[name] for name in params if name not in trial.params and name in config},
                **{name: attrs.get(name, np.nan) for name in ("test_mse", "rollout_mse", "horizon", "train_seconds")},
                **{name: attrs.get(name, np.nan) for name in ("seconds_per_epoch", "n_params", "overhead_seconds")},
                **{name: attrs[name] for name in UNIT_COLUMNS if name in attrs},  # real series only
                "fail_reason": attrs.get("fail_reason"),
                "curve": curve,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=list(dict.fromkeys([*TRIAL_COLUMNS, *params, *frame.columns])))


def _searches(storage: optuna.storages.BaseStorage) -> dict[str, list[str]]:
    """Report name -> its Optuna studies: a harness study alone, or an `equal_cells` spec's per-cell
    studies; companions (replicates) and studies the harness did not make are left out."""
    searches: dict[str, list[str]] = {}
    plain: list[str] = []
    for name in optuna.get_all_study_names(storage=storage):
        # study by study: get_all_study_summaries parses every study's system attrs, and a
        # concurrent writer (a worker, the dashboard) can make that read fail
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        if "spec" not in attrs or COMPANION_ATTR in attrs or RACE_ATTR in attrs:  # race studies: `race_section`
            continue
        if CURVES_ATTR in attrs or name.endswith(CURVES_SUFFIX):  # recorded curves (`harness record`)
            continue
        if PER_CELL_ATTR in attrs:
            searches.setdefault(attrs[PER_CELL_ATTR]["name"], []).append(name)
        else:
            plain.append(name)
    for name in plain:  # a study over all cells of the same name as a per-cell search (launch refuses that today)
        searches[f"{name} (all cells)" if name in searches else name] = [name]
    return searches


def search_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names `load_studies` knows (searches, not companions or races)."""
    return list(_searches(storage))


def load_studies(storage: optuna.storages.BaseStorage, names: list[str] | None = None) -> list[StudyData]:
    searches = _searches(storage)
    unknown = [name for name in names or [] if name not in searches]
    if unknown:
        raise ConfigError("study", f"unknown study {unknown[0]!r}; allowed: {', '.join(searches) or '(none yet)'}")
    out = []
    for name in names or searches:
        studies = tuple(optuna.load_study(study_name=member, storage=storage) for member in searches[name])
        studies = tuple(
            sorted(studies, key=lambda member: _cell_rank(member.user_attrs.get(PER_CELL_ATTR, {}).get("cell")))
        )
        attrs = studies[0].user_attrs
        spec = spec_from_dict(attrs[PER_CELL_ATTR]["spec"] if PER_CELL_ATTR in attrs else attrs["spec"])
        frames = [trials_frame(study, tuple(spec.search)) for study in studies]
        trials = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        out.append(StudyData(name, spec, trials, studies))
    return out


def _cell_rank(cell: str | None) -> int:
    return CELL_ORDER.index(cell) if cell in CELL_ORDER else len(CELL_ORDER)


# ---------------------------------------------------------------- tables
def _count(frame: pd.DataFrame, state: str) -> int:
    return int((frame["state"] == state).sum())


def cell_summary(searches: list[StudyData]) -> pd.DataFrame:
    """Table 1: per study (signal) x cell, counts, best and median validation MSE, and the
    best trial's test/free-running metrics, parameters and cost."""
    rows = []
    for search in searches:
        for cell in [cell for cell in CELL_ORDER if cell in set(search.trials["cell"])]:
            cell_trials = search.trials[search.trials["cell"] == cell]
            done = cell_trials[cell_trials["state"] == "COMPLETE"]
            row: dict[str, Any] = {"study": search.name, "signal": search.signal_label, "cell": cell,
                                   "budget": search.budgets().get(cell)}  # fmt: skip
            row |= {state.lower(): _count(cell_trials, state) for state in ("COMPLETE", "PRUNED")}
            row |= {"failed": _count(cell_trials, "FAIL")}
            if len(done):
                best = done.loc[done["value"].idxmin()]
                row |= {
                    "best_val_mse": best["value"],
                    "median_val_mse": float(done["value"].median()),
                    "test_mse": best["test_mse"],
                    "rollout_mse": best["rollout_mse"],
                    "horizon": best["horizon"],
                    "trial": int(best["number"]),
                    **{param: best[param] for param in ("window", "hidden_size", "lr") if param in best},
                    "median_s_per_epoch": float(done["seconds_per_epoch"].median()),
                    "train_seconds": best["train_seconds"],
                    "n_params": best["n_params"],
                }
                if search.spec.signal.real:
                    row |= {name: best.get(name, np.nan) for name in UNIT_COLUMNS}
            rows.append(row)
    return pd.DataFrame(rows)


def baseline_rows(search: StudyData) -> pd.DataFrame:
    """Table 2 for a real series: forecasting's baselines on the cells' validation and test
    targets (`harness.series.compare`), named `baseline: <name>`; `model` says what each is."""
    scores = baseline_scores(search.spec.signal)
    rows = scores.rename(columns={"baseline": "cell"}).assign(cell=lambda f: "baseline: " + f["cell"])
    rows.insert(0, "signal", search.signal_label)
    rows.insert(0, "study", search.name)
    return rows[["study", "signal", "cell", "model", "best", "val_mase", *UNIT_COLUMNS]]


def reference_rows(search: StudyData) -> pd.DataFrame:
    """Table 2's references on the study's own splits; linear AR at its best validation window.
    A real series has forecasting's baselines instead (`baseline_rows`)."""
    spec = search.spec
    if spec.signal.real:
        return baseline_rows(search)
    series = make_signal(spec.signal)
    searched = spec.search.get("window", spec.fixed.get("window"))
    if isinstance(searched, Range):
        windows = list(range(int(searched.low), int(searched.high) + 1))
    else:
        windows = list(getattr(searched, "values", [searched]))
    fits = {window: evaluate.references(series, split_indices(spec.signal.length, window)) for window in windows}
    best_window = min(windows, key=lambda window: fits[window]["linear-ar"]["val_mse"])
    rows = []
    for name in REFERENCES:
        window = best_window if name == "linear-ar" else 1
        ref = fits[best_window][name] if name == "linear-ar" else fits[windows[0]][name]
        rows.append({"study": search.name, "signal": search.signal_label, "cell": f"ref: {name}",
                     "best_val_mse": ref["val_mse"], "test_mse": ref["test_mse"], "window": window})  # fmt: skip
    return pd.DataFrame(rows)


def comparison_table(searches: list[StudyData]) -> pd.DataFrame:
    """Tables 1 and 2 in one: every cell and reference, with `x_floor` = test MSE divided by
    the linear reference's test MSE on the same study. On a noiseless signal that floor is
    float rounding (1e-28), so the ratio says nothing and is left empty; with noise the floor
    is about the noise variance and the ratio reads as "how far above the noise". A real
    series has every cell and baseline in MASE, RMSSE and its own units instead, with
    `x_best_baseline` = test MASE over that of the baseline best on validation."""
    parts = []
    for search in searches:
        cells = cell_summary([search])
        refs = reference_rows(search)
        both = pd.concat([cells, refs], ignore_index=True)
        if search.spec.signal.real:
            # every cell and baseline against the baseline that was best on validation
            best = float(refs.loc[refs["best"].astype(bool), "test_mase"].iloc[0])
            both["x_best_baseline"] = both["test_mase"] / best
            first = ["study", "signal", "cell", "model", "test_mase", "test_rmsse", "x_best_baseline"]
            first += ["val_mase", "best"]
            parts.append(both[[*first, *[c for c in both.columns if c not in first]]])
            continue
        floor = float(refs.loc[refs["cell"] == "ref: linear-ar", "test_mse"].iloc[0])
        meaningful = search.spec.signal.noise_std > 0 and floor > 0
        both["x_floor"] = both["test_mse"] / floor if meaningful else np.nan
        parts.append(both)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def side_by_side(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 3: per cell, each study's best validation MSE, horizon and best window, side by side."""
    if summary.empty or "cell" not in summary:
        return pd.DataFrame(columns=["cell"])  # no trial has finished yet
    cells = summary[summary["cell"].isin(CELL_ORDER)]
    if cells.empty or "best_val_mse" not in cells:
        return pd.DataFrame()
    wide = cells.pivot(index="cell", columns="study", values=["best_val_mse", "horizon", "window"])
    wide.columns = [f"{study}: {metric}" for metric, study in wide.columns]
    order = [cell for cell in CELL_ORDER if cell in wide.index]
    return wide.loc[order].reset_index()


def importances(searches: list[StudyData]) -> pd.DataFrame:
    """Table 4: Optuna's default parameter importances (PED-ANOVA in Optuna 5) per study."""
    rows = []
    for study in [study for search in searches for study in search.studies]:
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "low target values are important": yes
                found = optuna.importance.get_param_importances(study, target=lambda trial: trial.values[0])
        except (RuntimeError, ValueError):
            continue  # too few distinct values to say anything
        rows += [{"study": study.study_name, "param": param, "importance": value} for param, value in found.items()]
    return pd.DataFrame(rows, columns=["study", "param", "importance"])


# ---------------------------------------------------------------- figure data
FINISHED_STATES = ("COMPLETE", "PRUNED")  # trials with a value (a pruned one's best reported value)


def mse_units(search: StudyData) -> str:
    """What the search's validation and test MSE are measured in (`figure_data.MSE_UNITS`)."""
    return STANDARDISED if search.spec.signal.real else MSE_UNITS


def value_label(signal: SignalConfig) -> str:
    """What a series' values are, in their units: a builtin's quantity, a CSV column as it is."""
    if not signal.real:
        return "y (signal units)"
    return BUILTINS[signal.name].quantity if signal.source == "builtin" else f"{signal.column} (the file's units)"


def best_so_far_info(search: StudyData) -> BestSoFarInfo:
    """Figure 3: per cell, every finished trial's value (a pruned one's best reported value)
    and the cell's best complete value so far, with a last row at the study's last trial
    number so each line runs to the end of the search."""
    columns = ["cell", "number", "state", "value", "best_so_far"]
    parts = []
    last = int(search.trials["number"].max()) if len(search.trials) else 0
    finished = search.trials[search.trials["state"].isin(FINISHED_STATES)].sort_values("number")
    for cell, cell_trials in finished.groupby("cell", sort=False):
        complete = cell_trials["value"].where(cell_trials["state"] == "COMPLETE")
        part = pd.DataFrame({"cell": cell, "number": cell_trials["number"], "state": cell_trials["state"],
                             "value": cell_trials["value"], "best_so_far": complete.cummin().ffill()})  # fmt: skip
        if int(cell_trials["number"].max()) < last:
            end = {"cell": cell, "number": last, "state": "END", "value": np.nan}
            end["best_so_far"] = part["best_so_far"].iloc[-1]
            part = pd.concat([part, pd.DataFrame([end])], ignore_index=True)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return BestSoFarInfo(frame, mse_units(search))


def learning_curves_info(search: StudyData, top: int = TOP_CURVES) -> LearningCurvesInfo:
    """Figure 4: validation MSE per epoch of the `top` best complete trials of each cell."""
    done = search.trials[search.trials["state"] == "COMPLETE"]
    rows = []
    for cell, cell_trials in done.groupby("cell"):
        for _, trial in cell_trials.nsmallest(top, "value").iterrows():
            rows += [{"cell": cell, "number": trial["number"], "epoch": epoch, "val_mse": value}
                     for epoch, value in enumerate(trial["curve"])]  # fmt: skip
    return LearningCurvesInfo(pd.DataFrame(rows, columns=["cell", "number", "epoch", "val_mse"]), mse_units(search))


def pareto_info(search: StudyData) -> ParetoInfo:
    """Figure 5: validation MSE against train seconds, with the non-dominated trials marked."""
    done = search.trials[search.trials["state"] == "COMPLETE"][["number", "cell", "value", "train_seconds"]].copy()
    values, seconds = done["value"].to_numpy(), done["train_seconds"].to_numpy()
    done["on_front"] = [
        not np.any((values <= value) & (seconds <= cost) & ((values < value) | (seconds < cost)))
        for value, cost in zip(values, seconds, strict=True)
    ]
    return ParetoInfo(done.reset_index(drop=True), mse_units(search))


def param_scatter_info(search: StudyData) -> ParamScatterInfo:
    """Figure 2: validation MSE against each searched numeric parameter, and each one's range
    (drawn as the axis limits, so a best value on an edge shows)."""
    ranges = {name: param for name, param in search.spec.search.items() if isinstance(param, Range)}
    trials = search.trials
    finished = trials[trials["state"].isin(FINISHED_STATES) & trials["value"].notna()]
    frame = finished[["number", "cell", "state", "value", *ranges]].reset_index(drop=True)
    return ParamScatterInfo(frame, ranges, mse_units(search))


def rerun_device(recorded: str, requested: str = "auto") -> str:
    """Where to re-run a stored trial: the requested device, or with `auto` the class of the
    device it was recorded on (cpu, cuda, mps), since the same config on another class of
    device need not give the same numbers. A class this machine lacks falls back to the CPU."""
    if requested != "auto":
        return requested
    kind = recorded.split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    return kind if available.get(kind, False) else "cpu"


def best_model(search: StudyData, trial: optuna.trial.FrozenTrial, artifacts: Path | None, device: str,
               retrain: bool) -> RecurrentRegressor | None:  # fmt: skip
    """A trial's trained model: its stored weights, or (with `retrain`, for a trial recorded
    before weights were kept) a re-run of its stored config; None if neither."""
    try:
        checkpoint = weights.load_checkpoint(trial, artifacts) if artifacts is not None else None
    except weights.WeightsMissing as err:  # e.g. a database copied without its artifact folder
        print(f"harness report: {err.message}", file=sys.stderr)
        checkpoint = None
    if checkpoint is not None:
        return weights.model_from(checkpoint)
    if not retrain:
        return None
    config = RunConfig.from_dict(trial.user_attrs["config"])
    return run(config, rerun_device(trial.user_attrs.get("device", "cpu"), device)).model


def predictions_info(
    search: StudyData, artifacts: Path | None = None, device: str = "auto", retrain: bool = False
) -> PredictionsInfo:
    """Figures 1 and 6: each cell's best trial on the test region, from its stored weights:
    truth, one-step and free-running predictions, and the free-running error (a real series:
    in its own units and times, each value's date beside it where the series has dates)."""
    done = search.trials[search.trials["state"] == "COMPLETE"]
    frames, missing = [], []
    signal = search.spec.signal
    loaded = real_series(signal) if signal.real else None
    time = "t (samples)"
    if loaded is not None:
        spacing = f"{loaded.frequency} values" if loaded.frequency else "irregularly spaced"
        time = f"date ({spacing})" if loaded.times is not None else "t (sample index: the series has no dates)"
    for cell in [cell for cell in CELL_ORDER if cell in set(done["cell"])]:
        cell_trials = done[done["cell"] == cell]
        row = cell_trials.loc[cell_trials["value"].idxmin()]
        trial = search.trial(row["study"], int(row["number"]))
        config = RunConfig.from_dict(trial.user_attrs["config"])
        model = best_model(search, trial, artifacts, device, retrain)
        if model is None:
            missing.append(cell)
            continue
        windows = make_windows(make_signal(config.signal), config.window, model.fc.weight.device,
                               config.train_frac, config.val_frac, model.fc.weight.dtype)  # fmt: skip
        splits = windows.splits
        truth = windows.y[splits.test].cpu().numpy()
        one = evaluate.predict(model, windows, config.protocol, splits.test).cpu().numpy()
        free = evaluate.rollout(model, windows, config.protocol).cpu().numpy()
        start = splits.test_start_time
        if config.signal.real:  # back to the file's units and times
            series = prepared(config.signal, config.train_frac)
            times = np.arange(start, start + len(truth))
            truth, one = series.targets(times), series.to_original(one, times)
            free = series.paths_to_original(free[None, :], times[:1] - 1)[0]
            start += series.lag
        frames.append(pd.DataFrame({
            "cell": row["cell"], "t": np.arange(start, start + len(truth)),
            "step": np.arange(1, len(truth) + 1), "truth": truth, "one_step": one, "free_running": free,
            "free_error": np.abs(free - truth),
        }))  # fmt: skip
        if loaded is not None and loaded.times is not None:
            frames[-1]["date"] = loaded.times[frames[-1]["t"].to_numpy()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return PredictionsInfo(frame, tuple(missing), value_label(signal), time)


def horizon_info(
    search: StudyData, artifacts: Path | None = None, device: str = "auto", retrain: bool = False
) -> HorizonInfo:
    """A real series' error at each step ahead h = 1..H (the spec's horizon), from every
    rolling origin over the test part: each cell's best trial (stored weights, window protocol:
    fed its own predictions, mapped back to the series' units) and each baseline."""
    signal = search.spec.signal
    at = origins(signal)
    frames = [baseline_horizon(signal).rename(columns={"baseline": "name"}).assign(kind="baseline")]
    done = search.trials[search.trials["state"] == "COMPLETE"]
    for cell in [cell for cell in CELL_ORDER if cell in set(done["cell"])]:
        cell_trials = done[done["cell"] == cell]
        trial = search.trial(*cell_trials.loc[cell_trials["value"].idxmin(), ["study", "number"]])
        config = RunConfig.from_dict(trial.user_attrs["config"])
        model = best_model(search, trial, artifacts, device, retrain)
        if model is None or config.protocol != "window":
            continue  # the seed protocol carries a state across the series: no rolling origins
        series = prepared(config.signal, config.train_frac)
        weight = model.fc.weight
        tensor = torch.as_tensor(series.model, dtype=weight.dtype, device=weight.device)
        path = evaluate.rollout_paths(model, tensor, at.model_times, config.window, at.steps).double().cpu().numpy()
        scores = horizon_scores(signal, series.paths_to_original(path, at.model_times), at)
        frames.append(scores.assign(name=cell, kind="cell", model=cell))
    columns = ["name", "kind", "model", "h", "mae", "rmse", "mase", "rmsse"]
    return HorizonInfo(pd.concat(frames, ignore_index=True)[columns], len(at.times))
