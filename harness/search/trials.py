"""Running a claimed trial: sample, train, record, tell.

`harness.search.launch` claims a trial (asks Optuna for it, under the claim lock) and hands it
here. The trial samples its parameters, trains (a series' run through `train.run`, a
collection's through `collection.run`), reporting its validation curve to the pruner every
epoch, is recorded (`study.conclude`) and is told to Optuna, its heartbeat running until
then, as `study.optimize` would do.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.search.exits import Terminated
from harness.search.faults import StorageFault, storage_cause
from harness.search.optuna_internals import heartbeats
from harness.search.spec import StudySpec
from harness.search.study import Outcome, Pruning, conclude, failure, sample_config
from harness.training import collection, train
from harness.training.collection import CollectionResult, CollectionRunConfig
from harness.training.train import RunConfig, TrainResult

INTERRUPTED = "interrupted (SIGINT)"  # a Ctrl-C's fail_reason
TERMINATED = "terminated (SIGTERM)"  # ... and a scheduler's or container runtime's stop
STORAGE_FAULT = "storage fault"  # how a trial the storage's failure interrupted begins its fail_reason
BAD_INPUT = "bad input"  # ... and a trial stopped by bad input met mid-search (a series file edited)
_log = logging.getLogger("optuna")  # where Optuna itself reports failed trials


@dataclass(frozen=True)
class Runner:
    spec: StudySpec
    device: torch.device
    # Where a Ctrl-C may interrupt: inside training, not inside Optuna's storage calls.
    interruptible: Callable[[], AbstractContextManager[None]] = nullcontext
    artifacts: FileSystemArtifactStore | None = None  # where complete trials keep their weights

    def run(self, study: optuna.Study, trial: optuna.Trial) -> TrialState:
        """Run, record and tell the claimed trial; returns its final state. A Ctrl-C fails it
        (with its reason) and is raised again."""
        running = {trial.number: trial}  # until it is told
        try:
            with heartbeats([trial], alive=lambda t: t.number in running):
                outcome = self._outcome(trial)
                return _tell(study, running.pop(trial.number), outcome)
        except StorageFault as fault:
            # Not the trial's fault: it is failed with the real cause where the storage still
            # takes it (else the next launch's heartbeat check fails it), and the launch
            # stops; the next one queues its parameters again.
            _fail_all(study, running, f"{STORAGE_FAULT}: {fault}")
            raise
        except ConfigError as error:
            # Bad input met mid-search (a series file edited since the launch read it): not
            # the trial's fault either, and every further trial would meet it; the launch stops.
            _fail_all(study, running, f"{BAD_INPUT}: {error}", warn=False)
            raise
        except KeyboardInterrupt as stop:
            reason = TERMINATED if isinstance(stop, Terminated) else INTERRUPTED
            for number, left in list(running.items()):
                left.set_user_attr("fail_reason", reason)  # the next launch queues its parameters again
                _tell(study, running.pop(number), Outcome(TrialState.FAIL, reason=reason))
            raise

    def _outcome(self, trial: optuna.Trial) -> Outcome:
        """Sample the trial's config and train it; an error of its own fails it."""
        start = time.perf_counter()
        try:
            config = sample_config(self.spec, trial)
        except Exception as e:
            _raise_fault(e)
            return failure(trial, e)
        sampling = time.perf_counter() - start
        try:
            return self._train(trial, config, sampling)
        except (StorageFault, ConfigError):
            raise
        except Exception as e:
            _raise_fault(e)
            return failure(trial, e)

    def _train(self, trial: optuna.Trial, config: RunConfig | CollectionRunConfig, sampling: float) -> Outcome:
        start = time.perf_counter()
        pruning = Pruning(self.spec, trial)
        result: TrainResult | CollectionResult
        try:
            with self.interruptible():
                if isinstance(config, CollectionRunConfig):
                    result = collection.run(config, self.device, pruning)
                else:  # train.run looked up on the module: tests patch it
                    result = train.run(config, self.device, pruning, self.spec.objective)
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            return failure(trial, e)
        outcome = conclude(trial, result, pruning, self.artifacts)
        # Time outside training, the record and weight writes included, and the sampling.
        trial.set_user_attr("overhead_seconds", time.perf_counter() - start - result.train_seconds + sampling)
        return outcome


def _fail_all(study: optuna.Study, running: dict[int, optuna.Trial], reason: str, warn: bool = True) -> None:
    """Fail every trial still running with `reason`, recorded where the storage still takes it."""
    for number, trial in list(running.items()):
        with contextlib.suppress(Exception):
            trial.set_user_attr("fail_reason", reason)
        _tell(study, running.pop(number), Outcome(TrialState.FAIL, reason=reason), warn=warn)


def _raise_fault(error: Exception) -> None:
    """A storage error is the storage's fault, not the trial's: raised as `StorageFault`."""
    cause = storage_cause(error)
    if cause is not None:
        raise StorageFault(None, cause) from error


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome, warn: bool = True) -> TrialState:
    """Tell Optuna how a trial ended; a storage error here is logged, not raised (a trial left
    RUNNING is failed by the heartbeat check).
    A failure is logged unless `warn` is false (bad input: the launch's own line says it once)."""
    try:
        if outcome.state == TrialState.COMPLETE:
            study.tell(trial, outcome.values)
        else:
            study.tell(trial, state=outcome.state)
    except Exception as e:
        _log.warning(f"Trial {trial.number} could not be told ({type(e).__name__}: {e}); it will be failed")
        return TrialState.FAIL
    if outcome.state == TrialState.FAIL and warn:
        _log.warning(f"Trial {trial.number} failed with parameters: {trial.params}: {outcome.reason}")
    return outcome.state
