"""Workers and the trial budget: `harness launch` as a function.

A launch creates or resumes the spec's study, fails trials left RUNNING by dead workers, and
runs K workers (worker 0 in this process, the others fresh interpreters) until the study
holds the target number of finished (COMPLETE or PRUNED) trials. A worker claims one trial
at a time, its place in the budget taken under `ClaimLock`, so workers on one machine or many
fill it exactly.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.search.exits import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STORAGE,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    WorkerError,
    exiting,
)
from harness.search.faults import StorageFault, transient, wait_for_server, when_up
from harness.search.optuna_internals import fail_orphaned_trials, requeue_interrupted, storage_of
from harness.search.spec import StudySpec, spec_from_dict
from harness.search.storage import GRACE_PERIOD, RDB_IMPORTS, ClaimLock, open_storage, redact, sqlite_path
from harness.search.study import (
    CLAIMING,
    best_value,
    check_same_series,
    count_trials,
    create_study,
    make_pruner,
    make_sampler,
    summarize,
)
from harness.search.trials import BAD_INPUT, INTERRUPTED, STORAGE_FAULT, TERMINATED, Runner
from harness.training.device import resolve_device, set_threads, threads_per_worker
from harness.training.train import warm_up

MAX_CONSECUTIVE_FAILURES = 3
# A RUNNING trial with no heartbeat at all this long after it started was orphaned by a worker
# killed before its first heartbeat (sent within ~1 s); generous, since clocks of several
# machines may differ.
ORPHAN_SECONDS = 3 * GRACE_PERIOD


class InterruptGate:
    """Ctrl-C (SIGINT) and SIGTERM that only interrupt where it is safe.

    Python raises KeyboardInterrupt wherever the signal lands; inside Optuna's tell or a
    storage write that can leave a trial half-recorded (and Optuna 5 then fails with its own
    traceback). So the handler only records the request, and raises at once only while a
    trial is training (`open`): that trial is marked FAIL with its reason. Elsewhere the
    request is honoured at the next safe point (`check`). SIGTERM, as a scheduler or container
    runtime stops a process, is `exits.Terminated`, a KeyboardInterrupt handled the same way.
    """

    def __init__(self) -> None:
        self.requested: type[KeyboardInterrupt] | None = None
        self._open = False

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        if self._open:
            raise self.requested

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
            self.check()  # a request that came after the last safe point is not lost
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.requested, self._open = None, False

    @contextmanager
    def open(self) -> Iterator[None]:
        self.check()
        self._open = True
        try:
            yield
        finally:
            self._open = False
        self.check()

    def check(self) -> None:
        if self.requested is not None:
            raise self.requested


GATE = InterruptGate()  # one per process: signal handlers are per process


@dataclass(frozen=True)
class WorkerTask:
    spec: dict[str, Any]
    storage_url: str
    worker: int
    target: int
    device: str
    threads: int
    deadline: float | None  # time.time() after which no new trial starts
    artifacts: str | None = None  # the artifact store's folder: complete trials keep their weights there


def run_worker(task: WorkerTask, on_trial: Callable[[optuna.Study], None] | None = None) -> int:
    """Run trials until the study holds `target` finished ones; returns trials this worker ran."""
    restore = set_threads(task.threads)
    try:
        return _trial_loop(task, on_trial)
    finally:
        restore()  # in-process runs (one worker, tests) leave no trace


class _NoTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; the one-line message and the trial's
    `fail_reason` say enough, and a Ctrl-C should not look like a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback())


@dataclass(frozen=True)
class Claim:
    """What a worker got from the budget: a trial to run, or `full` (stop), or neither (the
    last places are running elsewhere: wait, in case one of them fails)."""

    trial: optuna.Trial | None
    full: bool = False


BUDGET_REFUSED = "budget_refused"  # user attr (True) on a trial that gave its place back


def claim_trial(study: optuna.Study, lock: ClaimLock, target: int) -> Claim:
    """Count the budget and ask for one trial, in one scope under the claim lock.

    A place is a finished (COMPLETE or PRUNED), running or waiting (queued retry) trial.
    Asking pops a waiting trial first (its place is already counted) and creates one only
    when none waits, so a trial is asked only while finished + running < target. Without a
    lock (storages other than SQLite and PostgreSQL) another worker may ask at the same
    moment: a trial with `target` places taken ahead of it gives its place back, marked FAIL
    with `budget_refused`, and is not counted as a failure."""
    with lock:
        finished, running, _ = count_trials(study)
        if finished >= target:
            return Claim(None, full=True)
        if finished + running >= target:
            return Claim(None)
        with warnings.catch_warnings():
            # Optuna warns that heartbeats are meant for `study.optimize`; `trials.Runner`
            # sends the asked trial's heartbeats itself (`optuna_internals.heartbeats`).
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            trial = study.ask()
    taken = [t.number for t in study.get_trials(deepcopy=False, states=CLAIMING)]
    if sum(n < trial.number for n in taken) >= target:
        trial.set_user_attr("fail_reason", "budget already filled by other workers")
        trial.set_user_attr(BUDGET_REFUSED, True)
        study.tell(trial, state=TrialState.FAIL)
        return Claim(None)
    return Claim(trial)


def _trial_loop(task: WorkerTask, on_trial: Callable[[optuna.Study], None] | None) -> int:
    quiet_optuna()
    spec = spec_from_dict(task.spec)
    study = optuna.load_study(
        study_name=spec.study.name,
        storage=open_storage(task.storage_url),
        sampler=make_sampler(spec, spec.study.sampler_seed),
        pruner=make_pruner(spec),
    )
    lock = ClaimLock(task.storage_url, spec.study.name)
    store = FileSystemArtifactStore(task.artifacts) if task.artifacts else None
    runner = Runner(spec, resolve_device(task.device), interruptible=GATE.open, artifacts=store)
    ran, failures, reconnected = 0, 0, False
    while task.deadline is None or time.time() < task.deadline:
        GATE.check()
        try:
            if reconnected:  # inside the try: the server may go away again while we requeue
                with lock:
                    requeue_interrupted(study, (INTERRUPTED, TERMINATED, STORAGE_FAULT))
                reconnected = False
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            fail_orphaned_trials(study, ORPHAN_SECONDS)
            claim = claim_trial(study, lock, task.target)
            if claim.full:
                break
            if claim.trial is None:
                time.sleep(0.5)  # the last places are taken; wait in case one of them fails
                continue
            state = runner.run(study, claim.trial)
        except Exception as e:
            # A database server that restarts or drops the connection: wait for it (bounded
            # back-off), then go on; the trials it interrupted run again (requeued, or failed
            # by their stale heartbeats). Anything else, or a server that stays away, ends it.
            if not (transient(e, task.storage_url) and wait_for_server(lambda: _ping(study))):
                raise
            print(f"harness worker {task.worker}: the storage dropped the connection ({e.__class__.__name__}); "
                  "reconnected, going on", file=sys.stderr)  # fmt: skip
            reconnected = True
            continue
        ran += 1
        failures = failures + 1 if state == TrialState.FAIL else 0
        if on_trial is not None:
            on_trial(study)  # the launch's progress: it waits out a server that went away itself (`when_up`)
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise WorkerError(f"{MAX_CONSECUTIVE_FAILURES} trials failed in a row; see their fail_reason")
    return ran


def _ping(study: optuna.Study) -> None:
    """One round trip to the study's database (raises while it is away)."""
    optuna.get_all_study_names(storage=storage_of(study))


def _worker_main(task: WorkerTask) -> None:
    # Bad input met mid-search (a series file edited) exits 2, as in this process; and so on (`exits`).
    with exiting(f"harness worker {task.worker}", redact(task.storage_url)), GATE.installed():
        run_worker(task)


def launch(
    spec: StudySpec,
    storage_url: str,
    *,
    trials: int | None = None,
    workers: int = 1,
    device: str = "auto",
    timeout: float | None = None,
    progress: bool = True,
    parent: StudySpec | None = None,
    artifacts: str | None = None,
    threads: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Create or resume the spec's study and fill its budget; returns its summary. `parent`
    is the `equal_cells` spec this one was split from (`plan`), recorded on the study;
    `on_progress` is told the study's finished trials (up to the target) as they change."""
    from tqdm import tqdm

    resolve_device(device)  # a missing device is a usage error, before anything is written
    quiet_optuna()
    prepare_workers(workers)
    warm_up()  # worker 0 runs here: its first trial should not pay torch's first-call imports
    target = trials or spec.study.trials
    study = create_study(spec, open_storage(storage_url), target, parent)
    if artifacts is not None:
        Path(artifacts).mkdir(parents=True, exist_ok=True)  # checked by the caller; made once the storage opened
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    with ClaimLock(storage_url, spec.study.name):  # two launches at once queue each trial once
        # they run again, as a killed trial's do (a bad input's once the file is restored)
        requeue_interrupted(study, (INTERRUPTED, TERMINATED, BAD_INPUT, STORAGE_FAULT))
    threads = threads or threads_per_worker(workers)
    deadline = time.time() + timeout if timeout else None
    tasks = [
        WorkerTask(spec.to_dict(), storage_url, i, target, device, threads, deadline, artifacts) for i in range(workers)
    ]
    bar = tqdm(total=target, desc=spec.study.name, unit="trial", disable=not progress, file=sys.stderr)

    def update(s: optuna.Study) -> None:
        finished, best = when_up(lambda: (count_trials(s)[0], best_value(s)), storage_url)
        bar.n = min(finished, target)
        if on_progress is not None:
            on_progress(bar.n)
        bar.set_postfix_str(f"best {spec.objective} {best:.3g}" if best is not None else "", refresh=False)
        bar.refresh()

    update(study)
    try:
        with GATE.installed():
            _run_workers(tasks, update, study)
    finally:
        bar.close()
    return when_up(lambda: summarize(study), storage_url)


@dataclass(frozen=True)
class Member:
    """One study a launch fills: a spec's own, or one cell's of an `equal_cells` spec
    (`parent`, recorded on the study), with its share of the launch's timeout."""

    spec: StudySpec
    parent: StudySpec | None = None
    timeout: float | None = None


def plan(spec: StudySpec, storage_url: str, *, trials: int | None = None, timeout: float | None = None) -> list[Member]:
    """The studies a launch of `spec` fills: the spec's own, or with `equal_cells` one per cell
    (an equal share of the trials and of `timeout` each). Checked before anything runs."""
    _check_no_mix(spec, storage_url)
    asked = trials or spec.study.trials
    if not spec.study.equal_cells:
        return [Member(replace(spec, study=replace(spec.study, trials=asked)), None, timeout)]
    members = spec.per_cell(asked)
    total = sum(m.study.trials for m in members.values())  # what runs, and what the parent records
    if total != asked:
        each = next(iter(members.values())).study.trials
        print(f"harness launch: {spec.study.name}: {asked} trials over {len(members)} cells rounds up to {total} "
              f"({each} per cell), so every cell gets the same search effort (equal_cells)",
              file=sys.stderr)  # fmt: skip
    parent = replace(spec, study=replace(spec.study, trials=total))
    share = timeout / len(members) if timeout else None
    return [Member(m, parent, share) for m in members.values()]


def check_members(members: list[Member], storage_url: str) -> None:
    """What `create_study` would refuse, refused before any study starts: a relaunch whose
    series changed since (a study run side by side would otherwise meet it in its own process)."""
    path = sqlite_path(storage_url)
    if path is not None and not path.exists():
        return
    storage = open_storage(storage_url)
    names = set(optuna.get_all_study_names(storage=storage))
    for m in members:
        if m.spec.study.name in names:
            check_same_series(optuna.load_study(study_name=m.spec.study.name, storage=storage), m.spec)


def fill(member: Member, storage_url: str, **options: Any) -> dict[str, Any]:
    """`launch` for one study of `plan`; a `WorkerError` names the study."""
    try:
        return launch(member.spec, storage_url, trials=member.spec.study.trials, timeout=member.timeout,
                      parent=member.parent, **options)  # fmt: skip
    except WorkerError as e:
        raise WorkerError(f"{member.spec.study.name}: {e}", e.status) from e


def _check_no_mix(spec: StudySpec, storage_url: str) -> None:
    """One name is either one study over all cells or a set of per-cell studies, never both:
    their trials, replicates (`<name>/confirm`) and report would mix."""
    path = sqlite_path(storage_url)
    if path is not None and not path.exists():
        return  # a new database holds nothing to mix with
    names = set(optuna.get_all_study_names(storage=open_storage(storage_url)))
    name = spec.study.name
    per_cell = sorted(n for n in names if n.startswith(f"{name}/") and n.split("/")[-1] in spec.cells())
    if spec.study.equal_cells and name in names:
        raise ConfigError("study.name", f"{name!r} already holds one study over all cells in this storage; "
                                        "give the equal_cells search another name (--set study.name=...)")  # fmt: skip
    if not spec.study.equal_cells and per_cell:
        raise ConfigError("study.name", f"{name!r} already holds per-cell studies ({', '.join(per_cell)}); "
                                        "set study.equal_cells=true or give another name")  # fmt: skip


def worker_context() -> Any:
    """How worker processes start: forked from a fork server that imported the harness (torch,
    Optuna, numba) once and warmed it up on one thread (`harness.training.warmed`), so each
    worker is a cheap fork of a warm, single-threaded process with no database connection
    (~10 ms instead of ~5 s of imports and warm-up). Forking this process instead is not safe:
    its torch thread pool and storage connections are live. Where there is no fork server
    (not POSIX), fresh interpreters."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["harness.search.launch", *RDB_IMPORTS, "harness.training.warmed"])  # forks start warm
    return ctx


def prepare_workers(workers: int) -> None:
    """Start the fork server now, so its imports overlap the launch's own set-up and first
    trials; it lives as long as this process and serves every later launch."""
    if workers > 1 and worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def relay_interrupt(procs: Iterable[Any], error: BaseException | None = None) -> None:
    """Pass a Ctrl-C (or, where `error` is `Terminated`, a SIGTERM) on to `procs` and wait for
    them. Processes in the terminal's process group got the same SIGINT; one sent to us alone
    (a scheduler's) reaches them only so, and each marks its running trials FAIL with the
    reason before it exits."""
    procs = list(procs)
    signum = signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signum)
    for p in procs:
        p.join()


def _run_workers(tasks: list[WorkerTask], update: Callable[[optuna.Study], None], study: optuna.Study) -> None:
    """Worker 0 runs in this process, which has everything imported already; the others are
    forked from the fork server (`worker_context`), started first so that any start-up left
    overlaps worker 0's first trials."""
    ctx = worker_context()
    procs = [ctx.Process(target=_worker_main, args=(t,), name=f"harness-worker-{t.worker}") for t in tasks[1:]]
    for p in procs:
        p.start()
    try:
        run_worker(tasks[0], on_trial=update)
        while any(p.is_alive() for p in procs):
            GATE.check()
            update(study)
            for p in procs:
                p.join(timeout=0.5 / len(procs))
        update(study)
    except (KeyboardInterrupt, StorageFault, ConfigError) as e:
        relay_interrupt(procs, e)  # our storage failing too: every running trial is marked FAIL first
        raise
    bad = [p for p in procs if p.exitcode != 0]
    if any(p.exitcode == EXIT_STORAGE for p in bad):
        raise StorageFault(None, "in a worker process (its line above says why)")
    if any(p.exitcode == EXIT_TERMINATED for p in bad):
        raise Terminated
    if any(p.exitcode == EXIT_INTERRUPTED for p in bad):
        raise KeyboardInterrupt
    if bad:
        codes = [p.exitcode for p in bad]
        raise WorkerError(f"{len(bad)} of {len(tasks)} workers failed (exit codes {codes})",
                          EXIT_USAGE if EXIT_USAGE in codes else EXIT_FAILED)  # fmt: skip
