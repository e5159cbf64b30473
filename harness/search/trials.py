"""Running claimed trials: one by one, or several trained as one group (`harness.training.group`).

`harness.search.launch` claims trials (asks Optuna for them, under the claim lock) and hands them
here. Each trial samples its parameters, trains, is recorded (`study.conclude`) and is told
to Optuna, its heartbeat running until then, as `study.optimize` would do. With `fuse` > 1
the claimed trials whose configs fit together (`group.pack`) train as one group; each member
is still its own trial, reporting its own validation curve to the pruner every epoch and
recorded in full, plus three attrs: the group's id (its smallest trial number), its size,
and its wall time. A member's `train_seconds` is its share of that wall time. Each group is
told as soon as it is done, so the sampler and the pruner see it before the next trains.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

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
from harness.training import collection, group
from harness.training.collection import CollectionRunConfig

INTERRUPTED = "interrupted (SIGINT)"  # a Ctrl-C's fail_reason
TERMINATED = "terminated (SIGTERM)"  # ... and a scheduler's or container runtime's stop
STORAGE_FAULT = "storage fault"  # how a trial the storage's failure interrupted begins its fail_reason
BAD_INPUT = "bad input"  # ... and a trial stopped by bad input met mid-search (a series file edited)
_log = logging.getLogger("optuna")  # where Optuna itself reports failed trials


@dataclass(frozen=True)
class Runner:
    spec: StudySpec
    device: torch.device
    fuse: int = 1  # at most this many trials train as one group
    # Where a Ctrl-C may interrupt: inside training, not inside Optuna's storage calls.
    interruptible: Callable[[], AbstractContextManager[None]] = nullcontext
    artifacts: FileSystemArtifactStore | None = None  # where complete trials keep their weights

    def run(self, study: optuna.Study, trials: list[optuna.Trial]) -> list[list[TrialState]]:
        """Run, record and tell the claimed trials, each group as soon as it is done; returns
        the final states group by group. A Ctrl-C fails every trial not yet told (with its
        reason) and is raised again."""
        running = {t.number: t for t in trials}
        states: list[list[TrialState]] = []
        try:
            with heartbeats(trials, alive=lambda t: t.number in running):
                for outcomes in self._groups(trials):
                    states.append([_tell(study, running.pop(n), o) for n, o in outcomes.items()])
        except StorageFault as fault:
            # Not the trials' fault: each running one is failed with the real cause where the
            # storage still takes it (else the next launch's heartbeat check fails it), and
            # the launch stops; the next one queues their parameters again.
            _fail_all(study, running, f"{STORAGE_FAULT}: {fault}")
            raise
        except ConfigError as error:
            # Bad input met mid-search (a series file edited since the launch read it): not
            # the trials' fault either, and every further trial would meet it; the launch stops.
            _fail_all(study, running, f"{BAD_INPUT}: {error}", warn=False)
            raise
        except KeyboardInterrupt as stop:
            reason = TERMINATED if isinstance(stop, Terminated) else INTERRUPTED
            for number, trial in list(running.items()):
                trial.set_user_attr("fail_reason", reason)  # the next launch queues its parameters again
                _tell(study, running.pop(number), Outcome(TrialState.FAIL, reason=reason))
            raise
        return states

    def _groups(self, trials: list[optuna.Trial]) -> Iterator[dict[int, Outcome]]:
        """Sample every trial, then train them group by group, yielding each group's outcomes."""
        configs: list[Any] = []  # RunConfig, or CollectionRunConfig for a collection's spec
        sampled: list[optuna.Trial] = []
        sampling: dict[int, float] = {}
        for trial in trials:
            start = time.perf_counter()
            try:
                configs.append(sample_config(self.spec, trial))
                sampled.append(trial)
            except Exception as e:
                _raise_fault(e)
                yield {trial.number: failure(trial, e)}
            sampling[trial.number] = time.perf_counter() - start
        alone = self.spec.collection is not None  # a collection's trial is a group of its own
        packed = [[i] for i in range(len(configs))] if alone else group.pack(configs, self.fuse, self.device.type)
        for members in packed:
            chosen = [sampled[i] for i in members]
            try:
                yield self._train(chosen, [configs[i] for i in members], sampling)
            except (StorageFault, ConfigError):
                raise
            except Exception as e:
                _raise_fault(e)
                yield {t.number: failure(t, e) for t in chosen}

    def _train(self, trials: list[optuna.Trial], configs: list[Any], sampling: dict[int, float]) -> dict[int, Outcome]:
        start = time.perf_counter()
        pruning = [Pruning(self.spec, t) for t in trials]
        try:
            with self.interruptible():
                if isinstance(configs[0], CollectionRunConfig):
                    trained: Any = group.GroupResult([collection.run(configs[0], self.device, pruning[0])], None)  # type: ignore[list-item]
                else:
                    trained = group.train_members(configs, self.device, lambda m, e, x: pruning[m](e, x),
                                                  self.spec.objective)  # fmt: skip
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            return {t.number: failure(t, e) for t in trials}
        numbers = [t.number for t in trials]
        extra = trained.attrs(min(numbers), numbers)
        outcomes = {
            t.number: conclude(t, r, p, self.artifacts, extra)
            for t, r, p in zip(trials, trained.members, pruning, strict=True)
        }
        # Time outside training, the records and weight writes included, shared like the
        # training time; each trial adds its own sampling.
        seconds = trained.seconds if trained.seconds is not None else trained.members[0].train_seconds
        shared = (time.perf_counter() - start - seconds) / len(trials)
        for t in trials:
            t.set_user_attr("overhead_seconds", shared + sampling[t.number])
        return outcomes


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
    """Tell Optuna how a trial ended; a storage error here is logged, not raised, so the other
    trials of the claim are still told (a trial left RUNNING is failed by the heartbeat check).
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
