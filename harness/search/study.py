"""The Optuna side of a trial: samplers, pruners, sampling a config, and what each trial records.

Each trial samples parameters from the spec's search space (`sample_config`), trains
(reporting validation MSE every epoch for pruning, `Pruning`) and records the contract the
report and the dashboard read (`conclude`): params, the best validation MSE as its value,
the per-epoch curve as intermediate values, and the user attrs in `TRIAL_ATTRS`.

Running a claimed trial is `harness.search.trials`'s; workers and the trial budget are
`harness.search.launch`'s.
"""

from __future__ import annotations

import math
import platform
import subprocess
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

import harness
from harness.errors import ConfigError
from harness.search import weights
from harness.search.faults import artifact_fault
from harness.search.optuna_internals import record_trial, reseed
from harness.search.samplers import PRUNERS, SAMPLERS
from harness.search.spec import Choice, Range, StudySpec
from harness.series import collections
from harness.series.signals import identity
from harness.training import train
from harness.training.collection import CollectionResult, CollectionRunConfig
from harness.training.device import cpu_name, numerics_path

# Trials that hold a place in the budget: finished, running, or queued for a retry.
CLAIMING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
TRIAL_ATTRS = (
    "config", "seed", "val_mse", "test_mse", "rollout_mse", "horizon", "train_seconds", "seconds_per_epoch",
    "samples_per_second", "run_memory_bytes", "process_peak_bytes", "device", "device_name", "n_params", "epochs_run",
    "torch_threads",
    "overhead_seconds", "epoch_seconds", "epoch_cpu_seconds",
)  # fmt: skip


PER_CELL_ATTR = "per_cell"  # on each per-cell study of an `equal_cells` spec: its parent's name, the cell, the spec
COMPANION_SUFFIX = "/confirm"  # `harness confirm`'s runs of study (or per-cell search) X live in X/confirm
COMPANION_ATTR = "replicates_of"  # on that companion: X


def derive_seed(*parts: int) -> int:
    """A seed derived from several integers, independent of the ones derived from others."""
    return int(np.random.SeedSequence([abs(p) for p in parts]).generate_state(1)[0])


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler from the registry (the spec allows only registered names)."""
    grid = {k: list(p.values) for k, p in spec.search.items() if isinstance(p, Choice)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # GP, QMC
        return SAMPLERS[spec.study.sampler](seed, grid)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    return PRUNERS[spec.study.pruner](spec.training.epochs)


def suggest(trial: optuna.Trial, name: str, p: Range | Choice) -> Any:
    if isinstance(p, Choice):
        return trial.suggest_categorical(name, list(p.values))
    if isinstance(p.low, int) and isinstance(p.high, int):
        return trial.suggest_int(name, p.low, p.high, log=p.log)
    return trial.suggest_float(name, p.low, p.high, log=p.log)


def environment() -> dict[str, Any]:
    """Study attrs that say what produced the numbers."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "harness_version": harness.__version__,
        "torch_version": torch.__version__,
        "optuna_version": optuna.__version__,
        "python_version": platform.python_version(),
        "git_commit": commit or None,
        "cpu": cpu_name(),
        "gpus": gpus,
    }


def trial_attrs(result: train.TrainResult | CollectionResult) -> dict[str, Any]:
    """The user attrs every trial records (the contract the report and dashboard read)."""
    if isinstance(result, CollectionResult):
        where = {"series": _collection_identity(result), "per_series": result.series}
    else:
        # source, name or path, length, SHA-256 of the values; a real series' train-only scaler
        where = {"series": identity(result.config.signal, result.config.train_frac)}
    attrs: dict[str, Any] = {
        "config": result.config.to_dict(),
        "seed": result.config.seed,
        **result.metrics,
        "train_seconds": result.train_seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "samples_per_second": result.samples_per_second,
        "run_memory_bytes": result.run_memory_bytes,
        "process_peak_bytes": result.process_peak_bytes,
        "device": result.device,
        "device_name": result.device_name,
        "n_params": result.n_params,
        "epochs_run": result.epochs_run,
        "torch_threads": torch.get_num_threads(),  # intra-op threads the run had (launch --threads)
        "numerics_path": numerics_path(),  # what decides its float rounding: same path, same numbers
        **where,
    }
    if result.fail_reason:
        attrs["fail_reason"] = result.fail_reason
    return attrs


def _collection_identity(result: CollectionResult) -> dict[str, Any]:
    """A collection run's series: which selection, how many, and the SHA-256 of their values."""
    chosen = result.config.collection
    return {"source": "collection", "name": chosen.label, "length": len(result.series["id"]),
            "sha256": collections.identity(collections.load(chosen))}  # fmt: skip


def count_trials(study: optuna.Study) -> tuple[int, int, int]:
    """(finished, running, waiting) trials; waiting ones are retries queued for any worker."""
    states = [t.state for t in study.get_trials(deepcopy=False, states=CLAIMING)]
    running, waiting = states.count(TrialState.RUNNING), states.count(TrialState.WAITING)
    return len(states) - running - waiting, running, waiting


def sample_params(spec: StudySpec, trial: optuna.Trial) -> dict[str, Any]:
    """The trial's parameters from the spec's search space (a replay samples exactly so)."""
    reseed(trial.study.sampler, derive_seed(spec.study.sampler_seed, trial.number))
    return {name: suggest(trial, name, p) for name, p in spec.search.items()}


def sample_config(spec: StudySpec, trial: optuna.Trial) -> train.RunConfig | CollectionRunConfig:
    """The trial's parameters from the spec's search space, as a run config."""
    return spec.trial_config(sample_params(spec, trial))


class Pruning:
    """What a running trial does with each epoch's validation MSE: reports it to the pruner
    and asks whether to stop, or (no pruner) keeps it to be written with the trial's attrs.
    A Pareto study (two objectives) has no pruner and keeps no curve.

    The median (percentile) pruner reads only the study's COMPLETE trials and this trial's own
    curve, so it is asked in memory: the complete trials are read once when the trial starts,
    and the curve goes to the storage with the trial's record (`record_trial`, one
    transaction). Optuna's `report` + `should_prune` cost two storage round trips an epoch,
    10-15 ms on SQLite, a third of a 1-s trial of 30 epochs. With one worker the decisions are
    Optuna's own (nothing else completes meanwhile); with several, a trial does not see the
    trials other workers complete while it trains. Other pruners (Hyperband and successive
    halving write their rungs into the trial) are asked through the storage, as Optuna does.
    """

    def __init__(self, spec: StudySpec, trial: optuna.Trial) -> None:
        self.trial = trial
        self.objective = spec.objective
        self.single = len(spec.study.objectives) == 1
        self.pruning = self.single and spec.study.pruner != "none"
        self.curve: dict[int, float] = {}  # validation MSE per epoch, written with the attrs if not reported
        pruner = trial.study.pruner
        self.in_memory = self.pruning and isinstance(pruner, optuna.pruners.PercentilePruner)
        if self.in_memory:  # what the pruner reads, once
            complete = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._study_view = _Completed(trial.study.direction, complete)
        # When each epoch's callback came (the first stamp: training's start), on the wall clock
        # and in process CPU time, for `epoch_seconds` and `epoch_cpu_seconds`: recorded curves
        # (`harness record`) replay a trial's clock epoch by epoch.
        self.stamps = [(time.perf_counter(), time.process_time())]

    def epoch_seconds(self, cpu: bool = False) -> list[float]:
        """Seconds between epoch callbacks: each epoch's training and validation (the first
        also the run's set-up), the callbacks' own time included; wall seconds, or with `cpu`
        this process's CPU seconds (all its threads), which a machine busy with other work
        does not inflate."""
        return [b[cpu] - a[cpu] for a, b in zip(self.stamps, self.stamps[1:], strict=False)]

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
        self.stamps.append((time.perf_counter(), time.process_time()))
        value = metrics.get(self.objective, math.nan)
        if not (self.single and math.isfinite(value)):
            return False
        if not self.pruning or self.in_memory:
            self.curve[epoch] = value
            return self.in_memory and self.trial.study.pruner.prune(self._study_view, self._running())  # type: ignore[arg-type]
        self.trial.report(value, epoch)  # the pruner reads it now
        return self.trial.should_prune()

    def _running(self) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=self.curve)


class _Completed:
    """The part of a study a percentile pruner reads: its direction and its COMPLETE trials."""

    def __init__(self, direction: optuna.study.StudyDirection, complete: list[optuna.trial.FrozenTrial]) -> None:
        self.direction, self._complete = direction, complete

    def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        return self._complete  # the pruner asks for COMPLETE trials only, and never changes them


@dataclass(frozen=True)
class Outcome:
    """How a trial ends: the state and values to tell Optuna, or a reason it failed."""

    state: TrialState
    values: float | tuple[float, float] | None = None
    reason: str | None = None


def conclude(
    trial: optuna.Trial,
    result: train.TrainResult | CollectionResult,
    pruning: Pruning,
    artifacts: FileSystemArtifactStore | None,
    extra: dict[str, Any] | None = None,
) -> Outcome:
    """Write a trained trial's record (the contract in `TRIAL_ATTRS`, plus `extra`) and its
    weights, and say how it ends. Weights go up before the trial is told: Optuna 5 refuses
    artifacts on finished trials."""
    timing = {"epoch_seconds": pruning.epoch_seconds(), "epoch_cpu_seconds": pruning.epoch_seconds(cpu=True)}
    record_trial(trial, trial_attrs(result) | timing | (extra or {}), pruning.curve)
    complete = not (result.diverged or result.stopped)
    if complete and artifacts is not None and isinstance(result, train.TrainResult) and result.model is not None:
        try:
            weights.upload(artifacts, trial, weights.checkpoint(result.model, result.config))
        except OSError as e:
            raise artifact_fault(e) from e
    if result.diverged:  # a pruned single-objective trial keeps its curve; a Pareto study has no pruning
        return Outcome(TrialState.PRUNED if pruning.single else TrialState.FAIL, reason=result.fail_reason)
    if result.stopped:
        # the pruner's stop, or the slow-epoch guard's (its reason is in the record as fail_reason)
        return Outcome(TrialState.PRUNED, reason=result.fail_reason or f"pruned at epoch {result.epochs_run - 1}")
    best = result.metrics[pruning.objective]
    return Outcome(TrialState.COMPLETE, best if pruning.single else (best, result.train_seconds))


def failure(trial: optuna.Trial, error: BaseException) -> Outcome:
    """A trial that raised fails with the error's first line (CUDA out of memory says so)."""
    first = (str(error).splitlines() or [""])[0]
    if isinstance(error, torch.cuda.OutOfMemoryError):
        reason = first if first.startswith("CUDA out of memory") else f"CUDA out of memory: {first}"
    else:
        reason = f"{type(error).__name__}: {first}"
    trial.set_user_attr("fail_reason", reason)
    return Outcome(TrialState.FAIL, reason=reason)


def create_study(
    spec: StudySpec, storage: optuna.storages.BaseStorage, target: int | None = None, parent: StudySpec | None = None
) -> optuna.Study:
    """Create or load the spec's study and record the spec (with the current trial target, so
    a resume to more trials says so), the environment, and the `equal_cells` spec it was split from, if any."""
    study = optuna.create_study(
        study_name=spec.study.name,
        storage=storage,
        directions=["minimize"] * len(spec.study.objectives),
        load_if_exists=True,
    )
    check_same_series(study, spec)
    recorded = replace(spec, study=replace(spec.study, trials=target)) if target else spec
    study.set_user_attr("spec", recorded.to_dict())
    study.set_user_attr("environment", environment())
    if parent is not None:
        cell = spec.cells()[0]
        study.set_user_attr(PER_CELL_ATTR, {"name": parent.study.name, "cell": cell, "spec": parent.to_dict()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(spec.study.objectives))  # the dashboard says val_mse, not "Objective 0"
    return study


def check_same_series(study: optuna.Study, spec: StudySpec) -> None:
    """A relaunch on a series whose values changed since the study recorded them is refused:
    its old and new trials would not be comparable."""
    recorded = study.user_attrs.get("spec", {}).get("signal", {}).get("sha256", "")
    now = spec.signal.sha256
    if recorded and now and recorded != now:
        raise ConfigError("signal.sha256", f"{spec.signal.label} changed since study {spec.study.name!r} recorded it: "
                                           f"recorded sha256 {recorded}, now {now}; restore it or give the study "
                                           "another name")  # fmt: skip


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best finished trial by validation MSE (the first objective, also in Pareto studies)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    return min(done, key=lambda t: t.values[0]) if done else None


def best_value(study: optuna.Study) -> float | None:
    best = best_trial(study)
    return best.values[0] if best is not None else None


def wall_seconds(study: optuna.Study) -> float:
    """A study's wall time as its database saw it: first trial's start to last trial's end."""
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    if not done:
        return 0.0
    end = max(t.datetime_complete for t in done if t.datetime_complete)
    begin = min(t.datetime_start for t in done if t.datetime_start)
    return (end - begin).total_seconds()


def summarize(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    best = best_trial(study)
    return {
        "study": study.study_name,
        "counts": {state.name: sum(t.state == state for t in trials) for state in TrialState},
        "best_value": best.values[0] if best else None,
        "best_params": best.params if best else None,
        "best_trial": best.number if best else None,
        "target": study.user_attrs.get("spec", {}).get("study", {}).get("trials"),  # the budget it was given
        # a per-cell study or a replicate study does not sample the cell: its config names it
        "best_cell": best.user_attrs.get("config", {}).get("cell", best.params.get("cell")) if best else None,
        "objective": (study.metric_names or ["val_mse"])[0],
    }


def study_line(summary: dict[str, Any]) -> str:
    """`summarize` in one line, as `harness launch` and `harness studies` print it."""
    c = summary["counts"]
    budget = f" of {summary['target']}" if summary.get("target") else ""  # a per-cell study's share, as it runs
    line = (
        f"{summary['study']}: {c['COMPLETE'] + c['PRUNED']} finished{budget} ({c['COMPLETE']} complete, "
        f"{c['PRUNED']} pruned), {c['FAIL']} failed"
    )
    if summary["best_value"] is None:
        return line + "; no complete trial yet"
    params = ({"cell": summary["best_cell"]} if summary.get("best_cell") else {}) | summary["best_params"]
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    objective = summary.get("objective", "val_mse")
    return line + f"; best {objective} {summary['best_value']:.4g} (trial {summary['best_trial']}): {shown}"
