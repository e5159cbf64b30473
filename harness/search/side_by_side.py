"""Several studies at once: `harness launch --concurrent N`.

The main job runs nine independent searches (three specs, one study per cell each). A
study's sampler sees only its own trials, so two studies running side by side, each with its
own worker, each ask the same trials as when they run one after the other; more workers on
one study instead change what it asks (TPE sees the trials still running, and the order in
which trials finish). On a machine with more cores than one small trial can use (a trial of
a few thousand weights gains nothing from a second thread: docs/performance.md), studies
side by side are how the main job keeps every core busy without changing its searches.

Each study runs in its own process, forked from the launch's fork server
(`launch.worker_context`), with its workers and threads as `launch` gives them; this
process shows one progress bar over all of them, summed from the finished-trial counts the
studies' processes write into shared memory.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from harness.constraints import default_of
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
from harness.search.faults import StorageFault
from harness.search.launch import GATE, Member, fill, quiet_optuna, relay_interrupt, worker_context
from harness.search.spec import Param, Range
from harness.search.storage import open_storage, redact
from harness.search.study import create_study, summarize
from harness.series import collections
from harness.series.data import TRAIN_FRAC
from harness.training.train import RunConfig
from harness.training.work import estimated_work

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class _Task:
    member: Member
    storage_url: str
    options: dict[str, Any]
    slot: int  # its place in the shared array of finished trials


def _study_main(task: _Task, finished: Any) -> None:
    """One study in its own process; its exit status says how it ended (as a worker's does).
    It writes its finished trials into `finished[task.slot]`, which the progress bar sums:
    reading every study's trials from the storage twice a second cost a whole core."""

    def progress(n: int) -> None:
        finished[task.slot] = n

    with exiting(f"harness launch: {task.member.spec.study.name}", redact(task.storage_url)):
        fill(task.member, task.storage_url, progress=False, on_progress=progress, **task.options)


def study_work(member: Member) -> float:
    """Roughly how much work a study is (`work.estimated_work` of a run at the middle of its
    hidden sizes and windows, averaged over its cells, times its trials), to start the largest first."""
    spec = member.spec
    middle: dict[str, Any] = {
        name: _middle(spec.search[name]) for name in ("hidden_size", "window") if name in spec.search
    }
    if spec.collection is None:
        runs = [spec.run_config({**middle, "cell": cell}) for cell in spec.cells()]
        return spec.study.trials * sum(estimated_work(run) for run in runs) / len(runs)
    # A collection's trial: a sine's run of the same shape, times its windows over a sine's training targets
    sizes = {name: middle.get(name, spec.fixed.get(name, default_of(RunConfig, name)))
             for name in ("hidden_size", "window")}  # fmt: skip
    windows = sum(len(s.validation_split()[0]) - 1 for s in collections.load(spec.collection))
    runs = [RunConfig(cell=cell, epochs=spec.training.epochs, **sizes) for cell in spec.cells()]
    share = windows / (TRAIN_FRAC * RunConfig().signal.length)
    return spec.study.trials * share * sum(estimated_work(run) for run in runs) / len(runs)


def _middle(param: Param) -> int:
    if isinstance(param, Range):
        return round(math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2)
    return int(sorted(param.values)[len(param.values) // 2])


def launch_side_by_side(
    members: Sequence[Member], storage_url: str, concurrent: int, *, progress: bool = True, **options: Any
) -> list[dict[str, Any]]:
    """Run `members` (independent studies) up to `concurrent` at a time, the largest first;
    returns their summaries, in their order. A study that fails stops new ones from starting;
    those running finish, and the failure is raised as it would be by `launch`."""
    from tqdm import tqdm

    ctx = worker_context()
    finished = ctx.Array("i", len(members), lock=False)  # each study's finished trials, written by its process
    bar = tqdm(total=sum(m.spec.study.trials for m in members), desc=f"{len(members)} studies, {concurrent} at a "
               "time", unit="trial", disable=not progress, file=sys.stderr)  # fmt: skip

    def update() -> None:
        if sum(finished) != bar.n:
            bar.n = sum(finished)
            bar.refresh()

    # The largest first, so that no study is left running alone at the end while the other cores
    # idle: in the main job the long period's GRU search (160 s of its 260 s) started sixth of
    # nine and ran its last 74 s alone. (An earlier order by trials x largest window x largest
    # hidden size tied the sines' studies and missed that a GRU step costs more than an RNN's.)
    pending = sorted(enumerate(members), key=lambda item: -study_work(item[1]))
    quiet_optuna()  # no "A new study created" lines: the launch's own summary says what ran
    storage = open_storage(storage_url)
    for m in members:  # created in the order given, so that the storage (and the report) lists them so
        create_study(m.spec, storage, m.spec.study.trials, m.parent)
    running: dict[Any, str] = {}  # process -> its study's name
    failed: dict[str, int] = {}  # study name -> exit status
    try:
        with GATE.installed():  # held until every process is joined: a second Ctrl-C cannot cut that short
            try:
                while running or (pending and not failed):
                    while pending and not failed and len(running) < concurrent:
                        GATE.check()  # a Ctrl-C starts no further study
                        slot, member = pending.pop(0)
                        p = ctx.Process(target=_study_main, args=(_Task(member, storage_url, options, slot), finished),
                                        name=f"harness-study-{member.spec.study.name}")  # fmt: skip
                        p.start()
                        running[p] = member.spec.study.name
                    for p in list(running):
                        p.join(timeout=POLL_SECONDS / len(running))
                        if not p.is_alive():
                            name = running.pop(p)
                            if p.exitcode:
                                failed[name] = p.exitcode
                    GATE.check()
                    update()
            except KeyboardInterrupt as e:
                relay_interrupt(running, e)
                raise
    finally:
        bar.close()
    error = outcome(failed)
    if error is not None:
        raise error
    return [summarize(optuna.load_study(study_name=m.spec.study.name, storage=storage)) for m in members]


def outcome(failed: dict[str, int]) -> BaseException | None:
    """What the launch raises for the studies that exited with a status other than 0 (name ->
    status), in `launch`'s own order for its workers: a storage fault, then Ctrl-C, then bad
    input (a series changed since the launch read it: exit 2, as alone), then a failure."""
    if any(code == EXIT_STORAGE for code in failed.values()):
        return StorageFault(None, "in a study's process (its line above says why)")
    if any(code == EXIT_TERMINATED for code in failed.values()):
        return Terminated()
    if any(code == EXIT_INTERRUPTED for code in failed.values()):
        return KeyboardInterrupt()
    if failed:
        stopped = ", ".join(f"{name} (exit status {code})" for name, code in failed.items())
        return WorkerError(f"{stopped} stopped (its line above says why); what every study recorded is kept: "
                           "run the same command to go on",
                           status=EXIT_USAGE if EXIT_USAGE in failed.values() else EXIT_FAILED)  # fmt: skip
    return None
