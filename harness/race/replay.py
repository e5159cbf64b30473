"""`harness race --simulate`: a race replayed from recorded curves on a simulated clock.

Each repeat of each method runs the method's own Optuna sampler and pruner (the registries in
`harness.search.samplers`, seeded exactly as the live race seeds repeat r: `race.race_spec`)
through ask and tell on an in-memory storage. Each trial is answered from the table
(`harness.race.curves`):

- the nearest recorded configuration (same categorical values, least distance in standardised
  parameter space, log where the space is log);
- one of its recorded runs (training seeds), drawn by a generator seeded per repeat, the same
  for every method (common random numbers);
- each epoch's validation MSE reported to the pruner, as a live trial reports it, and the
  trial stopped where the pruner says (or where the recorded run ended by itself);
- the simulated clock advanced by the recorded seconds of the epochs run, the run's recorded
  overhead, and the real seconds the sampler took to ask and suggest (`time.perf_counter`; CPU
  seconds, `time.process_time`, when the table is read on its CPU clock), which is the one
  cost a table cannot know: it grows with the trials a sampler has seen.

Like the live race, a seconds budget starts no trial after the deadline and keeps no trial
that would end past it; a trials budget stops at that many finished trials. One worker.

Histories, not trials, are kept: one study `<name>/simulated` per spec holds them as a compact
attr (`read.SIMULATED_ATTR`), so `harness report` reads a 300-repeat replay in a moment;
a new replay of the same spec replaces it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from harness.race.curves import CurveTable, check_covers, describe_table
from harness.race.race import Budget, Method, race_spec, repeat_seed
from harness.race.read import HISTORIES_ATTR, SIMULATED_ATTR, SIMULATED_SUFFIX, history_record
from harness.search.spec import StudySpec
from harness.search.study import derive_seed, make_pruner, make_sampler, sample_params
from harness.stats.race_stats import RepeatHistory

_DRAW_SALT = 7919  # the run drawn per trial: independent of the sampler's seeds


@dataclass(frozen=True)
class ReplayTrial:
    """One replayed trial: what the table answered and what it cost on the simulated clock."""

    number: int
    params: dict[str, Any]  # what the sampler asked for
    config: int  # the nearest recorded configuration
    run: int  # the recorded run drawn
    epochs: int  # epochs run (reported to the pruner)
    pruned: bool  # stopped by the pruner or ended early in the table
    value: float  # best validation MSE; NaN when pruned
    train_seconds: float  # the recorded seconds of the epochs run
    overhead: float  # the run's recorded seconds outside training
    ask_seconds: float  # real seconds of ask and suggest
    elapsed: float  # the simulated clock when it finished


@dataclass(frozen=True)
class ReplayRun:
    """One replayed repeat of one method."""

    name: str
    method: str
    repeat: int
    trials: tuple[ReplayTrial, ...]
    seconds: float  # simulated seconds spent on the repeat

    def history(self) -> RepeatHistory:
        return RepeatHistory(self.name, self.method, self.repeat, np.array([t.elapsed for t in self.trials]),
                             np.array([t.value for t in self.trials]), self.seconds)  # fmt: skip


def replay_repeat(
    spec: StudySpec,
    table: CurveTable,
    method: Method,
    repeat: int,
    budget: Budget,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> ReplayRun:
    """Replay repeat `repeat` of `method` (`sampler` replaces the method's, for a test)."""
    trials = budget.trials if budget.seconds is None else None
    member = race_spec(spec, method, repeat, trials or 1)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        sampler=sampler or make_sampler(member, member.study.sampler_seed),
        pruner=make_pruner(member),
    )
    pruning = member.study.pruner != "none"
    rng = np.random.default_rng(derive_seed(repeat_seed(spec, repeat), _DRAW_SALT))
    clock, done = 0.0, list[ReplayTrial]()
    timer = time.process_time if table.clock == "cpu" else time.perf_counter  # the table's clock
    while (trials is None or len(done) < trials) and (budget.seconds is None or clock < budget.seconds):
        start = timer()
        trial = study.ask()
        params = sample_params(member, trial)
        ask = timer() - start
        config = table.nearest(params)
        runs = table.runs[config]
        run = int(runs[rng.integers(len(runs))])
        curve = table.curves[run]
        length = int(np.sum(np.isfinite(curve)))
        epochs, stopped = length, False
        if pruning:
            for epoch in range(length):
                trial.report(float(curve[epoch]), epoch)
                if trial.should_prune():
                    epochs, stopped = epoch + 1, True
                    break
        pruned = stopped or not table.complete[run]
        train = float(np.sum(table.epoch_seconds[run, :epochs]))
        overhead = float(table.overhead[run])
        end = clock + ask + train + overhead
        if budget.seconds is not None and end > budget.seconds:
            clock = budget.seconds  # the live race stops this trial at the deadline: it never finishes
            break
        clock = end
        value = math.nan if pruned else float(np.min(curve[:epochs]))
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
        done.append(ReplayTrial(trial.number, params, config, run, epochs, pruned, value, train, overhead, ask, clock))
    return ReplayRun(spec.study.name, method.name, repeat, tuple(done), clock)


_SHARED: dict[str, Any] = {}  # a replay worker process's spec, table and budget


def _init_worker(spec: StudySpec, table: CurveTable, budget: Budget) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _SHARED.update(spec=spec, table=table, budget=budget)


def _job(job: tuple[Method, int]) -> ReplayRun:
    return replay_repeat(_SHARED["spec"], _SHARED["table"], job[0], job[1], _SHARED["budget"])


def simulate(
    spec: StudySpec,
    table: CurveTable,
    methods: Sequence[Method],
    repeats: int,
    budget: Budget,
    workers: int = 1,
    log: Any = None,
) -> list[ReplayRun]:
    """Every repeat of every method, repeat 0 of each method first; `workers` processes replay
    repeats side by side (each repeat is still one worker's race; its asks are timed in its own
    process, so give each worker a core of its own). A table that does not cover the spec is
    refused before anything runs (`curves.check_covers`)."""
    check_covers(table, spec)
    jobs = [(m, r) for r in range(repeats) for m in methods]
    start = time.perf_counter()

    def progress(done: int) -> None:
        if log is not None and done % max(1, len(jobs) // 10) == 0:
            print(f"{spec.study.name}: replayed {done} of {len(jobs)} repeats in {time.perf_counter() - start:.1f} s",
                  file=log)  # fmt: skip

    runs: list[ReplayRun] = []
    if workers == 1:
        for m, r in jobs:
            runs.append(replay_repeat(spec, table, m, r, budget))
            progress(len(runs))
        return runs
    from harness.search.launch import worker_context  # the launcher's process start method (fork server)

    with ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_init_worker,
                             initargs=(spec, table, budget)) as pool:  # fmt: skip
        for run in pool.map(_job, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
            runs.append(run)
            progress(len(runs))
    return runs


def store(
    storage: optuna.storages.BaseStorage,
    spec: StudySpec,
    table: CurveTable,
    runs: Sequence[ReplayRun],
    budget: Budget,
    repeats: int,
) -> str:
    """Write the replay's histories as one study `<name>/simulated` (replacing an earlier
    replay of the spec); returns its name."""
    name = spec.study.name + SIMULATED_SUFFIX
    if name in optuna.get_all_study_names(storage=storage):
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(study_name=name, storage=storage)
    asks = [t.ask_seconds for r in runs for t in r.trials]
    info = {"name": spec.study.name, "methods": list(dict.fromkeys(r.method for r in runs)), "repeats": repeats,
            "budget": budget.to_dict(), "spec": spec.to_dict(), **describe_table(table),
            "environment": table_environment(storage, table.name),
            "median_ask_seconds": float(np.median(asks)) if asks else None}  # fmt: skip
    study.set_user_attr(HISTORIES_ATTR, [history_record(r.history()) for r in runs])
    study.set_user_attr(SIMULATED_ATTR, info)
    return name


def table_environment(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any]:
    """Where the table was recorded (the study's `environment` attr)."""
    env = optuna.load_study(study_name=name, storage=storage).user_attrs.get("environment", {})
    return {k: env.get(k) for k in ("cpu", "gpus", "torch_version")}


def summary_line(spec: StudySpec, runs: Sequence[ReplayRun], seconds: float) -> str:
    trials = sum(len(r.trials) for r in runs)
    return (f"{spec.study.name}: replayed {len(runs)} repeats ({trials} trials) in {seconds:.1f} s; "
            "`harness report` draws them")  # fmt: skip


def describe_replays(storage: optuna.storages.BaseStorage, names: Sequence[str]) -> list[str]:
    """One line per replayed race for `harness studies`."""
    lines = []
    for name in names:
        info = optuna.load_study(study_name=name, storage=storage).user_attrs.get(SIMULATED_ATTR)
        if info is not None:
            lines.append(f"{name}: replayed race, {len(info['methods'])} methods x {info['repeats']} repeats, "
                         f"budget {info['budget']}, from {info['table']} ({info['runs']} runs)")  # fmt: skip
    return lines
