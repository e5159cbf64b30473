"""The Optuna driver: samplers, pruners, the objective, workers and the trial budget.

Each trial samples parameters from the spec's search space, trains through `train.run`
(reporting validation MSE every epoch for pruning) and records the contract the report and
the dashboard read: params, the best validation MSE as its value, the per-epoch curve as
intermediate values, and the user attrs in `TRIAL_ATTRS`.

`--trials N` is a target of finished (COMPLETE or PRUNED) trials in the storage, so a
relaunch runs only the remainder, and several workers or machines fill one budget exactly.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

import harness
from harness import train
from harness.device import cpu_name, resolve_device
from harness.spec import Choice, Range, StudySpec, spec_from_dict
from harness.storage import ClaimLock, open_storage, record_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Trials that hold a place in the budget: finished, running, or queued for a retry.
CLAIMING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
MAX_CONSECUTIVE_FAILURES = 3
TRIAL_ATTRS = (
    "config", "seed", "val_mse", "test_mse", "rollout_mse", "horizon", "train_seconds", "seconds_per_epoch",
    "samples_per_second", "peak_memory_bytes", "device", "device_name", "n_params", "epochs_run", "overhead_seconds",
)  # fmt: skip


class BudgetReached(Exception):
    """Another worker claimed the last place in the budget between our check and our ask."""


class TrialFailed(Exception):
    """Training failed in a way the user should read (divergence in a Pareto study, OOM)."""


def derive_seed(*parts: int) -> int:
    """A seed derived from several integers, independent of the ones derived from others."""
    return int(np.random.SeedSequence([abs(p) for p in parts]).generate_state(1)[0])


def reseed(sampler: optuna.samplers.BaseSampler, seed: int) -> None:
    """Seed every random state of a sampler and of the samplers inside it.

    Called before each trial samples, with a seed derived from the study's sampler seed and
    the trial's number. Trial numbers are unique in a study, so workers and machines sharing
    it never draw the same random proposals (same-seeded workers would), and one worker's
    study is still reproducible from its seed. Optuna has no public way to seed a sampler
    after construction; its samplers keep their state in `LazyRandomState` attributes.
    """
    from optuna.samplers._lazy_random_state import LazyRandomState

    stack, seen = [sampler], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for value in vars(current).values():
            if isinstance(value, LazyRandomState):
                value.rng.seed(seed)
            elif isinstance(value, optuna.samplers.BaseSampler):
                stack.append(value)


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    name = spec.study.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            grid = {k: list(p.values) for k, p in spec.search.items() if isinstance(p, Choice)}
            return optuna.samplers.GridSampler(grid, seed=seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed)
        return optuna.samplers.NSGAIISampler(seed=seed)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    name = spec.study.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.training.epochs)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


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


def trial_attrs(result: train.TrainResult) -> dict[str, Any]:
    """The user attrs every trial records (the contract the report and dashboard read)."""
    attrs: dict[str, Any] = {
        "config": result.config.to_dict(),
        "seed": result.config.seed,
        **result.metrics,
        "train_seconds": result.train_seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "samples_per_second": result.samples_per_second,
        "peak_memory_bytes": result.peak_memory_bytes,
        "device": result.device,
        "device_name": result.device_name,
        "n_params": result.n_params,
        "epochs_run": result.epochs_run,
    }
    if result.fail_reason:
        attrs["fail_reason"] = result.fail_reason
    return attrs


def count_trials(study: optuna.Study) -> tuple[int, int, int]:
    """(finished, running, waiting) trials; waiting ones are retries queued for any worker."""
    states = [t.state for t in study.get_trials(deepcopy=False, states=CLAIMING)]
    running, waiting = states.count(TrialState.RUNNING), states.count(TrialState.WAITING)
    return len(states) - running - waiting, running, waiting


@dataclass(frozen=True)
class Objective:
    spec: StudySpec
    device: torch.device
    target: int
    claimed: Callable[[], None] = lambda: None  # called once this trial's place is settled

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            return self._run(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (SIGINT)")  # Optuna marks it FAIL
            raise

    def _run(self, trial: optuna.Trial) -> float | tuple[float, float]:
        start = time.perf_counter()
        self._claim(trial)
        reseed(trial.study.sampler, derive_seed(self.spec.study.sampler_seed, trial.number))
        params = {name: suggest(trial, name, p) for name, p in self.spec.search.items()}
        config = self.spec.run_config(params)
        single = len(self.spec.study.objectives) == 1
        pruning = single and self.spec.study.pruner != "none"
        curve: dict[int, float] = {}  # validation MSE per epoch, written with the attrs if not reported

        def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
            if not (single and math.isfinite(metrics.get("val_mse", math.nan))):
                return False
            if not pruning:
                curve[epoch] = metrics["val_mse"]
                return False
            trial.report(metrics["val_mse"], epoch)  # the pruner reads it now
            return trial.should_prune()

        try:
            result = train.run(config, self.device, on_epoch)
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            trial.set_user_attr("fail_reason", f"CUDA out of memory: {str(e).splitlines()[0]}")
            raise TrialFailed("CUDA out of memory") from None
        attrs = trial_attrs(result)
        attrs["overhead_seconds"] = time.perf_counter() - start - result.train_seconds
        record_trial(trial, attrs, curve)
        if result.diverged:
            if single:
                raise optuna.TrialPruned(result.fail_reason)
            raise TrialFailed(result.fail_reason)
        if result.stopped:
            raise optuna.TrialPruned(f"pruned at epoch {result.epochs_run - 1}")
        best = result.metrics["val_mse"]
        return best if single else (best, result.train_seconds)

    def _claim(self, trial: optuna.Trial) -> None:
        try:
            ahead = [t for t in trial.study.get_trials(deepcopy=False, states=CLAIMING) if t.number < trial.number]
        finally:
            self.claimed()
        if len(ahead) >= self.target:
            trial.set_user_attr("fail_reason", "budget already filled by other workers")
            raise BudgetReached


def create_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    study = optuna.create_study(
        study_name=spec.study.name,
        storage=storage,
        directions=["minimize"] * len(spec.study.objectives),
        load_if_exists=True,
    )
    study.set_user_attr("spec", spec.to_dict())
    study.set_user_attr("environment", environment())
    if len(spec.study.objectives) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(spec.study.objectives))
    return study


@dataclass(frozen=True)
class WorkerTask:
    spec: dict[str, Any]
    storage_url: str
    worker: int
    target: int
    device: str
    threads: int
    deadline: float | None  # time.time() after which no new trial starts


def run_worker(task: WorkerTask, on_trial: Callable[[optuna.Study], None] | None = None) -> int:
    """Run trials until the study holds `target` finished ones; returns trials this worker ran."""
    threads = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    try:
        return _trial_loop(task, on_trial)
    finally:
        torch.set_num_threads(threads)  # in-process runs (one worker, tests) leave no trace


class _NoTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; the one-line message and the trial's
    `fail_reason` say enough, and a Ctrl-C should not look like a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback())


def _trial_loop(task: WorkerTask, on_trial: Callable[[optuna.Study], None] | None) -> int:
    _quiet_optuna()
    spec = spec_from_dict(task.spec)
    study = optuna.load_study(
        study_name=spec.study.name,
        storage=open_storage(task.storage_url),
        sampler=make_sampler(spec, spec.study.sampler_seed),
        pruner=make_pruner(spec),
    )
    lock = ClaimLock(task.storage_url, spec.study.name)
    objective = Objective(spec, resolve_device(task.device), task.target, claimed=lock.release)
    ran, failures = 0, 0
    while task.deadline is None or time.time() < task.deadline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        lock.acquire()
        try:
            finished, running, waiting = count_trials(study)
            if finished >= task.target:
                break
            if finished + running >= task.target and not waiting:
                lock.release()
                time.sleep(0.5)  # the last places are taken; wait in case one of them fails
                continue
            finished_trials: list[optuna.trial.FrozenTrial] = []
            study.optimize(
                objective,
                n_trials=1,
                catch=(TrialFailed, BudgetReached, RuntimeError),
                callbacks=[_Collect(finished_trials)],
            )
        finally:
            lock.release()
        ran += 1
        mine = finished_trials[0]
        if mine.state == TrialState.FAIL and "budget" not in str(mine.user_attrs.get("fail_reason", "")):
            failures += 1
        else:
            failures = 0
        if on_trial is not None:
            on_trial(study)
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise RuntimeError(f"{MAX_CONSECUTIVE_FAILURES} trials failed in a row; see their fail_reason")
    return ran


@dataclass(frozen=True)
class _Collect:
    """An Optuna callback that keeps the trials this worker finished."""

    into: list[optuna.trial.FrozenTrial]

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.into.append(trial)


def _worker_main(task: WorkerTask) -> None:
    try:
        run_worker(task)
    except KeyboardInterrupt:
        sys.exit(130)


class WorkerError(Exception):
    """A worker process ended with an error (its own message is on stderr)."""


def launch(
    spec: StudySpec,
    storage_url: str,
    *,
    trials: int | None = None,
    workers: int = 1,
    device: str = "auto",
    timeout: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Create or resume the spec's study and fill its budget; returns its summary."""
    from tqdm import tqdm

    resolve_device(device)  # a missing device is a usage error, before anything is written
    _quiet_optuna()
    target = trials or spec.study.trials
    study = create_study(spec, open_storage(storage_url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    threads = max(1, (os.cpu_count() or 1) // workers)
    deadline = time.time() + timeout if timeout else None
    tasks = [WorkerTask(spec.to_dict(), storage_url, i, target, device, threads, deadline) for i in range(workers)]
    bar = tqdm(total=target, desc=spec.study.name, unit="trial", disable=not progress, file=sys.stderr)

    def update(s: optuna.Study) -> None:
        bar.n = min(count_trials(s)[0], target)
        best = best_value(s)
        bar.set_postfix_str(f"best val_mse {best:.3g}" if best is not None else "", refresh=False)
        bar.refresh()

    update(study)
    try:
        _run_workers(tasks, update, study)
    finally:
        bar.close()
    return summarize(study)


def _run_workers(tasks: list[WorkerTask], update: Callable[[optuna.Study], None], study: optuna.Study) -> None:
    """Worker 0 runs in this process, which has everything imported already; the others are
    fresh interpreters (spawn: no forked torch threads or DB connections), started first so
    their start-up overlaps worker 0's first trials."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(t,), name=f"harness-worker-{t.worker}") for t in tasks[1:]]
    for p in procs:
        p.start()
    try:
        run_worker(tasks[0], on_trial=update)
        while any(p.is_alive() for p in procs):
            update(study)
            for p in procs:
                p.join(timeout=0.5 / len(procs))
        update(study)
    except KeyboardInterrupt:
        # Workers in the terminal's process group got the same SIGINT; a signal sent to us
        # alone is passed on, so every running trial is marked FAIL before we exit.
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join()
        raise
    bad = [p for p in procs if p.exitcode != 0]
    if any(p.exitcode == 130 for p in bad):
        raise KeyboardInterrupt
    if bad:
        raise WorkerError(f"{len(bad)} of {len(tasks)} workers failed (exit codes {[p.exitcode for p in bad]})")


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best finished trial by validation MSE (the first objective, also in Pareto studies)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    return min(done, key=lambda t: t.values[0]) if done else None


def best_value(study: optuna.Study) -> float | None:
    best = best_trial(study)
    return best.values[0] if best is not None else None


def summarize(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    best = best_trial(study)
    return {
        "study": study.study_name,
        "counts": {state.name: sum(t.state == state for t in trials) for state in TrialState},
        "best_value": best.values[0] if best else None,
        "best_params": best.params if best else None,
        "best_trial": best.number if best else None,
    }
