"""`harness confirm`: re-train each cell's best configurations over several seeds, and
along a sweep of windows.

A single lucky seed decides many searches. For each study and cell, the best `top` complete
trials are re-trained with `seeds` fresh seeds, the same seed list for every cell, so cells
can be compared pair by pair. With `windows`, each cell's best configuration is also
re-trained at each of those windows on the same seeds (replicates along a varied
parameter: does a longer window help?). Each run is one trial of a companion study
`<name>/confirm` in the same storage, with the search trial's attrs plus `replicate_of`
(study and trial number) and `rank`; a second `confirm` finds its runs there and trains
nothing again.
"""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing as mp
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from harness.search import weights
from harness.search.spec import StudySpec
from harness.search.study import COMPANION_ATTR, COMPANION_SUFFIX, derive_seed, trial_attrs
from harness.series.data import split_indices
from harness.stats.replicates import FRAME_COLUMNS, METRICS, UNIT_METRICS
from harness.training.device import resolve_device, threads_per_worker
from harness.training.group import pack, train_members
from harness.training.models import CELLS
from harness.training.train import RunConfig


def replicate_seeds(spec: StudySpec, n: int) -> list[int]:
    """Seeds derived from the study's seeds alone: the same for every cell and every re-run."""
    return [derive_seed(spec.study.sampler_seed, spec.training.seed, 7919, i) % 2**31 for i in range(n)]


TrialKey = tuple[str, int]  # (study name, trial number)


def best_per_cell(studies: Sequence[optuna.Study], top: int) -> dict[TrialKey, tuple[optuna.trial.FrozenTrial, int]]:
    """(study, trial number) -> (trial, rank within its cell; 0 = best) for each cell's `top`
    best complete trials, over the studies of one search (one, or one per cell)."""
    done = [
        (s.study_name, t)
        for s in studies
        for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "config" in t.user_attrs
    ]
    chosen: dict[TrialKey, tuple[optuna.trial.FrozenTrial, int]] = {}
    for cell in sorted({t.user_attrs["config"]["cell"] for _, t in done}):
        of_cell = [(n, t) for n, t in done if t.user_attrs["config"]["cell"] == cell]
        of_cell.sort(key=lambda x: x[1].values[0])
        chosen |= {(n, t.number): (t, rank) for rank, (n, t) in enumerate(of_cell[:top])}
    return chosen


@dataclass(frozen=True)
class Job:
    replicate_of: TrialKey
    rank: int
    config: RunConfig
    found_window: int  # the window the search found; `config.window` differs in a sweep
    device: str
    threads: int


def _run_batch(jobs: list[Job]) -> list[dict[str, Any]]:
    """Train a batch of jobs, one alone or several as one group (`harness.training.group`); returns
    each run's record. Members of a group record its id, size and wall time, as in a launch."""
    torch.set_num_threads(jobs[0].threads)
    trained = train_members([job.config for job in jobs], jobs[0].device)
    extra = trained.attrs(uuid.uuid4().hex)  # confirm runs get their trial numbers later
    results = trained.members
    records = []
    for job, result in zip(jobs, results, strict=True):
        # a run that diverged late still has its best epoch's weights, which its metrics came from
        blob = weights.checkpoint(result.model, job.config) if "val_mse" in result.metrics and result.model else None
        study, number = job.replicate_of
        records.append({"replicate_of_study": study, "replicate_of": number, "rank": job.rank,
                        "found_window": job.found_window, **trial_attrs(result), **extra, "run_id": uuid.uuid4().hex,
                        "curve": result.val_mse_by_epoch, "checkpoint": blob})  # fmt: skip
    return records


def _key(attrs: dict[str, Any], default_study: str) -> tuple[str, int, int, int]:
    return (attrs.get("replicate_of_study", default_study), attrs["replicate_of"], attrs["seed"],
            attrs["config"]["window"])  # fmt: skip


def confirm(
    storage: optuna.storages.BaseStorage,
    name: str,
    studies: Sequence[optuna.Study],
    spec: StudySpec,
    *,
    seeds: int = 5,
    top: int = 1,
    windows: Sequence[int] = (),
    workers: int = 1,
    device: str = "auto",
    artifacts: FileSystemArtifactStore | None = None,
    fuse: int = 1,
) -> int:
    """Run the missing replicates (and window-sweep runs) of one search; returns how many ran.

    Replicates: each cell's `top` best configurations as found, on `seeds` seeds. Sweep:
    each cell's best configuration (rank 0) at every window in `windows`, on the same seeds.
    With `fuse` > 1, up to that many runs that fit together (one cell's seeds and windows,
    `group.pack`) train as one group; each run's numbers are the ones it gives alone.
    """
    companion = optuna.create_study(study_name=name + COMPANION_SUFFIX, storage=storage, load_if_exists=True)
    companion.set_user_attr(COMPANION_ATTR, name)
    with warnings.catch_warnings():  # Optuna calls it experimental; the search studies use it too
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        companion.set_metric_names(["val_mse"])  # the dashboard says val_mse, not "Objective 0"
    # a failed run counts as done too: training it again would fail again (the same seed)
    done = {
        _key(t.user_attrs, name)
        for t in companion.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if "replicate_of" in t.user_attrs
    }
    originals = best_per_cell(studies, top)
    threads = threads_per_worker(workers)
    jobs: list[Job] = []
    for key, (trial, rank) in originals.items():
        config = RunConfig.from_dict(trial.user_attrs["config"])
        for window in dict.fromkeys([config.window, *(windows if rank == 0 else ())]):
            for seed in replicate_seeds(spec, seeds):
                if (*key, seed, window) not in done:
                    run_config = dataclasses.replace(config, seed=seed, window=window)
                    jobs.append(Job(key, rank, run_config, config.window, device, threads))
    kind = resolve_device(device).type
    batches = [[jobs[i] for i in members] for members in pack([job.config for job in jobs], fuse, kind)]
    if workers > 1 and len(batches) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for records in pool.imap_unordered(_run_batch, batches):
                for attrs in records:
                    original = originals[(attrs["replicate_of_study"], attrs["replicate_of"])][0]
                    _record(companion, original, attrs, storage, artifacts)
    else:
        for batch in batches:
            for job, attrs in zip(batch, _run_batch(batch), strict=True):
                _record(companion, originals[job.replicate_of][0], attrs, storage, artifacts)
    return len(jobs)


def _record(
    companion: optuna.Study,
    original: optuna.trial.FrozenTrial,
    attrs: dict[str, Any],
    storage: optuna.storages.BaseStorage,
    artifacts: FileSystemArtifactStore | None,
) -> None:
    curve = attrs.pop("curve")
    blob = attrs.pop("checkpoint")
    failed = "val_mse" not in attrs
    params, distributions = dict(original.params), dict(original.distributions)
    window = attrs["config"]["window"]
    if "window" in params and params["window"] != window:  # a sweep run: its window, in a range holding it
        d = distributions["window"]
        if isinstance(d, IntDistribution):
            params["window"] = window
            distributions["window"] = IntDistribution(min(d.low, window), max(d.high, window), log=d.log)
        else:  # a list of windows: the run's window is in its config, not a param
            del params["window"], distributions["window"]
    # The cell as a param on every run (a per-cell search does not sample it): the dashboard
    # shows it, and its parameter importance then credits the cell, not the lr that differs
    # between cells' best configurations.
    params["cell"], distributions["cell"] = attrs["config"]["cell"], CategoricalDistribution(list(CELLS))
    # Added RUNNING, then told: Optuna takes artifact uploads only while a trial runs.
    template = create_trial(
        params=params,
        distributions=distributions,
        state=TrialState.RUNNING,
        user_attrs=attrs,
        intermediate_values=dict(enumerate(curve)),
    )
    # It trained before it was added: start it that long ago, so its duration is the run's.
    took = attrs.get("train_seconds", 0.0) + attrs.get("overhead_seconds", 0.0)
    template.datetime_start = datetime.datetime.now() - datetime.timedelta(seconds=took)
    companion.add_trial(template)
    # add_trial returns nothing, and another confirm may add trials at the same time
    trials = reversed(companion.get_trials(deepcopy=False))
    added = next(t for t in trials if t.user_attrs.get("run_id") == attrs["run_id"])
    if blob is not None and artifacts is not None:
        weights.upload(artifacts, added, blob, storage=storage)
    if failed:
        companion.tell(added.number, state=TrialState.FAIL)
    else:
        companion.tell(added.number, attrs["val_mse"])


def replicate_frame(storage: optuna.storages.BaseStorage, study_names: list[str]) -> pd.DataFrame:
    """One row per finished run: study, cell, the search trial it replicates (study, number),
    that trial's rank among its cell's best (0 = best), seed, window (and the window the search
    found), the longest horizon possible, and the metrics."""
    names = set(optuna.get_all_study_names(storage=storage))
    rows = []
    for name in study_names:
        if name + COMPANION_SUFFIX not in names:
            continue
        companion = optuna.load_study(study_name=name + COMPANION_SUFFIX, storage=storage)
        for t in companion.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            a, config = t.user_attrs, t.user_attrs["config"]
            window = config.get("window", 1)
            length = config.get("signal", {}).get("length", 1000)
            test = split_indices(length, window, config.get("train_frac", 0.7), config.get("val_frac", 0.15)).test
            rows.append({"study": name, "cell": config["cell"], "run": t.number,
                         "replicate_of_study": a.get("replicate_of_study", name),
                         "replicate_of": a["replicate_of"], "rank": a["rank"], "seed": a["seed"], "window": window,
                         "found_window": a.get("found_window", window), "max_horizon": test.stop - test.start,
                         **{m: a.get(m, np.nan) for m in (*METRICS, *UNIT_METRICS)}})  # fmt: skip
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)
