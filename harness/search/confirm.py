"""`harness confirm`: re-train each cell's best configurations over several seeds, and
along a sweep of windows.

A single lucky seed decides many searches. For each study and cell, the best `top` complete
trials are re-trained with `seeds` fresh seeds, the same seed list for every cell, so cells
can be compared pair by pair. With `windows`, each cell's best configuration is also
re-trained at each of those windows on the same seeds (replicates along a varied
parameter: does a longer window help?). Each run is one trial of a companion study
`<name>/confirm` in the same storage, with the search trial's attrs plus `replicate_of`
(study and trial number) and `rank`; a second `confirm` finds its runs there and trains
nothing again. A collection's search (`training.collection`) is re-trained the same way, every
series scored on each seed (`collection_replicates` reads them back); it has no window sweep.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.artifacts import FileSystemArtifactStore
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from tqdm import tqdm

from harness.search import weights
from harness.search.launch import worker_context
from harness.search.optuna_internals import record_trial
from harness.search.spec import StudySpec
from harness.search.study import COMPANION_ATTR, COMPANION_SUFFIX, derive_seed, trial_attrs
from harness.series.data import split_indices
from harness.stats.replicates import FRAME_COLUMNS, METRICS, UNIT_METRICS
from harness.training import collection, train
from harness.training.collection import OBJECTIVE, CollectionRunConfig
from harness.training.device import set_threads, threads_per_worker
from harness.training.models import CELLS
from harness.training.train import RunConfig
from harness.training.work import estimated_work


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
class Search:
    """One search to confirm: its name, its studies (one, or one per cell) and its spec."""

    name: str
    studies: Sequence[optuna.Study]
    spec: StudySpec


@dataclass(frozen=True)
class Job:
    search: str  # the search whose companion study records the run
    replicate_of: TrialKey
    rank: int
    config: RunConfig | CollectionRunConfig
    found_window: int  # the window the search found; `config.window` differs in a sweep
    device: str
    threads: int


def _run_job(job: Job) -> dict[str, Any]:
    """Train one job (`train.run`, or `collection.run` for a collection's); returns its run's record."""
    restore = set_threads(job.threads)
    try:
        ran: train.TrainResult | collection.CollectionResult
        if isinstance(job.config, CollectionRunConfig):
            ran = collection.run(job.config, job.device)
            curve, blob = ran.val_by_epoch, None  # a collection's models are not kept as weights
        else:
            ran = solo = train.run(job.config, job.device)
            curve = solo.val_mse_by_epoch
            # a run that diverged late still has its best epoch's weights, which its metrics came from
            blob = weights.checkpoint(solo.model, job.config) if "val_mse" in solo.metrics and solo.model else None
    finally:
        restore()  # a confirm with one worker runs here, in the caller's process
    study, number = job.replicate_of
    return {"replicate_of_study": study, "replicate_of": number, "rank": job.rank, "found_window": job.found_window,
            **trial_attrs(ran), "run_id": uuid.uuid4().hex, "curve": curve, "checkpoint": blob}  # fmt: skip


def _run_numbered(item: tuple[int, Job]) -> tuple[int, dict[str, Any]]:
    return item[0], _run_job(item[1])


def _key(attrs: dict[str, Any], default_study: str) -> tuple[str, int, int, int]:
    return (attrs.get("replicate_of_study", default_study), attrs["replicate_of"], attrs["seed"],
            attrs["config"]["window"])  # fmt: skip


def sweep_windows(spec: StudySpec, windows: Sequence[int]) -> list[int]:
    """The windows of a sweep that this search's space holds: a sweep compares windows the
    search could have chosen (the Nile's, up to 20, does not go on to the sines' 64)."""
    return [w for w in windows if w <= spec.largest_window()]


def companion(storage: optuna.storages.BaseStorage, name: str, metric: str = "val_mse") -> optuna.Study:
    """The study `<name>/confirm` that records the replicates of search `name`, created once."""
    study = optuna.create_study(study_name=name + COMPANION_SUFFIX, storage=storage, load_if_exists=True)
    study.set_user_attr(COMPANION_ATTR, name)
    with warnings.catch_warnings():  # Optuna calls it experimental; the search studies use it too
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([metric])  # the dashboard names the value, not "Objective 0"
    return study


def confirm(
    storage: optuna.storages.BaseStorage,
    searches: Sequence[Search],
    *,
    seeds: int = 5,
    top: int = 1,
    windows: Sequence[int] = (),
    workers: int = 1,
    device: str = "auto",
    artifacts: FileSystemArtifactStore | None = None,
    progress: bool = False,
) -> dict[str, int]:
    """Run the missing replicates (and window-sweep runs) of `searches`; returns how many ran
    for each search.

    Replicates: each cell's `top` best configurations as found, on `seeds` seeds. Sweep:
    each cell's best configuration (rank 0) at every window in `windows` that its search's
    space holds (`sweep_windows`), on the same seeds; a collection's search has no sweep.
    The runs of all searches share the `workers`, the largest first (a collection's, then
    `work.estimated_work`), so that no worker is left with a long run while the others idle.
    """
    threads = threads_per_worker(workers)
    companions: dict[str, optuna.Study] = {}
    originals: dict[TrialKey, tuple[optuna.trial.FrozenTrial, int]] = {}
    jobs: list[Job] = []
    for search in searches:
        of_collection = search.spec.collection is not None
        recorded = companions[search.name] = companion(storage, search.name, OBJECTIVE if of_collection else "val_mse")
        # a failed run counts as done too: training it again would fail again (the same seed)
        done = {
            _key(t.user_attrs, search.name)
            for t in recorded.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
            if "replicate_of" in t.user_attrs
        }
        best = best_per_cell(search.studies, 1 if of_collection else top)  # a collection's report reads its best
        originals |= best
        sweep = [] if of_collection else sweep_windows(search.spec, windows)
        for key, (trial, rank) in best.items():
            stored = trial.user_attrs["config"]
            config = CollectionRunConfig.from_dict(stored) if of_collection else RunConfig.from_dict(stored)
            for window in dict.fromkeys([config.window, *(sweep if rank == 0 else ())]):
                for seed in replicate_seeds(search.spec, seeds):
                    if (*key, seed, window) not in done:
                        run_config = dataclasses.replace(config, seed=seed, window=window)
                        jobs.append(Job(search.name, key, rank, run_config, config.window, device, threads))
    jobs.sort(key=lambda job: (isinstance(job.config, RunConfig), -estimated_work(job.config)))

    # A bar over the runs, as `launch` shows one over trials (Optuna's tqdm)
    bar = tqdm(total=len(jobs), desc="replicates", unit="run", disable=not progress, file=sys.stderr)

    def record(job: Job, attrs: dict[str, Any]) -> None:
        _record(companions[job.search], originals[job.replicate_of][0], attrs, storage, artifacts)
        bar.update(1)

    try:
        if workers > 1 and len(jobs) > 1:
            # forked from the launch's fork server (torch and the harness imported once), not fresh interpreters
            with worker_context().Pool(workers) as pool:
                for i, attrs in pool.imap_unordered(_run_numbered, enumerate(jobs)):
                    record(jobs[i], attrs)
        else:
            for job in jobs:
                record(job, _run_job(job))
    finally:
        bar.close()
    return {search.name: sum(job.search == search.name for job in jobs) for search in searches}


def _record(
    companion: optuna.Study,
    original: optuna.trial.FrozenTrial,
    attrs: dict[str, Any],
    storage: optuna.storages.BaseStorage,
    artifacts: FileSystemArtifactStore | None,
) -> None:
    curve = attrs.pop("curve")
    blob = attrs.pop("checkpoint")
    metric = companion.metric_names[0] if companion.metric_names else "val_mse"  # val_smape for a collection
    failed = metric not in attrs
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
    # Added RUNNING, then told: Optuna takes artifact uploads only while a trial runs. Its attrs
    # and curve go in one transaction (`record_trial`): a template carrying them costs Optuna two
    # queries a row, ~0.3 s a run, which in the main job's 285 runs took a core from the workers.
    template = create_trial(params=params, distributions=distributions, state=TrialState.RUNNING)
    # It trained before it was added: start it that long ago, so its duration is the run's.
    took = attrs.get("train_seconds", 0.0) + attrs.get("overhead_seconds", 0.0)
    template.datetime_start = datetime.datetime.now() - datetime.timedelta(seconds=took)
    study_id = storage.get_study_id_from_name(companion.study_name)
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    trial = optuna.Trial(companion, trial_id)
    record_trial(trial, attrs, dict(enumerate(curve)))
    if blob is not None and artifacts is not None:
        weights.upload(artifacts, trial, blob)
    # Finished through the storage: `tell` reads the whole trial back first (~60 ms a run here),
    # and the companion study has no sampler or pruner to tell
    if failed:
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    else:
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [attrs[metric]])


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
    # In one order whatever order the runs were recorded in (a confirm records them as they
    # finish, the largest first): the findings list cells in the frame's order.
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    order = {name: i for i, name in enumerate(study_names)}
    keys = ["study", "cell", "replicate_of_study", "replicate_of", "window", "seed"]
    frame = frame.sort_values(keys, key=lambda c: c.map(order) if c.name == "study" else c, kind="stable")
    return frame.reset_index(drop=True)
