"""Running claimed trials: one by one, or several trained as one group (`harness.group`).

`harness.launch` claims trials (asks Optuna for them, under the claim lock) and hands them
here. Each trial samples its parameters, trains, is recorded (`study.conclude`) and is told
to Optuna with its heartbeat running, as `study.optimize` would do. With `fuse` > 1 the
claimed trials whose configs fit together (`group.pack`) train as one group; each member is
still its own trial, reporting its own validation curve to the pruner every epoch and
recorded in full, plus three attrs: the group's id (its first trial number), its size, and
its wall time. A member's `train_seconds` is its share of that wall time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from harness import group, train
from harness.optuna_internals import heartbeat
from harness.spec import StudySpec
from harness.study import Outcome, Pruning, conclude, out_of_memory, sample_config

_log = logging.getLogger("optuna")  # where Optuna itself reports failed trials


@dataclass(frozen=True)
class Runner:
    spec: StudySpec
    device: torch.device
    fuse: int = 1  # at most this many trials train as one group
    # Where a Ctrl-C may interrupt: inside training, not inside Optuna's storage calls.
    interruptible: Callable[[], AbstractContextManager[None]] = nullcontext
    artifacts: FileSystemArtifactStore | None = None  # where complete trials keep their weights

    def run(self, study: optuna.Study, trials: list[optuna.Trial]) -> list[TrialState]:
        """Run, record and tell the claimed trials; returns their final states in order. A
        Ctrl-C fails every trial not yet told (reason recorded) and is raised again."""
        outcomes: dict[int, Outcome] = {}
        try:
            with ExitStack() as beats:
                for trial in trials:
                    beats.enter_context(heartbeat(trial))
                self._train(trials, outcomes)
        except KeyboardInterrupt:
            for trial in trials:
                if trial.number not in outcomes:
                    trial.set_user_attr("fail_reason", "interrupted (SIGINT)")
                    outcomes[trial.number] = Outcome(TrialState.FAIL, reason="interrupted (SIGINT)")
            raise
        finally:
            for trial in trials:
                if trial.number in outcomes:
                    _tell(study, trial, outcomes[trial.number])
        return [outcomes[t.number].state for t in trials]

    def _train(self, trials: list[optuna.Trial], outcomes: dict[int, Outcome]) -> None:
        configs: list[train.RunConfig] = []
        sampled: list[optuna.Trial] = []
        sampling: dict[int, float] = {}
        for trial in trials:
            start = time.perf_counter()
            try:
                configs.append(sample_config(self.spec, trial))
                sampled.append(trial)
            except Exception as e:
                outcomes[trial.number] = _failed(trial, e)
            sampling[trial.number] = time.perf_counter() - start
        for members in group.pack(configs, self.fuse):
            chosen = [sampled[i] for i in members]
            try:
                done = self._group(chosen, [configs[i] for i in members], sampling)
            except Exception as e:
                done = {t.number: _failed(t, e) for t in chosen}
            outcomes.update(done)

    def _group(
        self, trials: list[optuna.Trial], configs: list[train.RunConfig], sampling: dict[int, float]
    ) -> dict[int, Outcome]:
        start = time.perf_counter()
        pruning = [Pruning(self.spec, t) for t in trials]
        try:
            with self.interruptible():
                if len(trials) == 1:
                    results, seconds = [train.run(configs[0], self.device, pruning[0])], None
                else:
                    grouped = group.train_group(configs, self.device, lambda m, e, x: pruning[m](e, x))
                    results, seconds = grouped.members, grouped.seconds
        except torch.cuda.OutOfMemoryError as e:
            return {t.number: out_of_memory(t, e) for t in trials}
        extra = {} if seconds is None else {"group_id": min(t.number for t in trials), "group_size": len(trials),
                                            "group_seconds": seconds}  # fmt: skip
        outcomes = {
            t.number: conclude(t, r, p, self.artifacts, extra) for t, r, p in zip(trials, results, pruning, strict=True)
        }
        # Time outside training, the records and weight writes included, shared like the
        # training time; each trial adds its own sampling.
        shared = (time.perf_counter() - start - (seconds or results[0].train_seconds)) / len(trials)
        for t in trials:
            t.set_user_attr("overhead_seconds", shared + sampling[t.number])
        return outcomes


def _failed(trial: optuna.Trial, error: Exception) -> Outcome:
    first_line = (str(error).splitlines() or [""])[0]
    reason = f"{type(error).__name__}: {first_line}"
    trial.set_user_attr("fail_reason", reason)
    return Outcome(TrialState.FAIL, reason=reason)


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    if outcome.state == TrialState.COMPLETE:
        study.tell(trial, outcome.values)
    else:
        study.tell(trial, state=outcome.state)
    if outcome.state == TrialState.FAIL:
        _log.warning(f"Trial {trial.number} failed with parameters: {trial.params}: {outcome.reason}")
