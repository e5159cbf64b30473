"""`harness confirm`: re-train each cell's best configurations over several seeds.

A single lucky seed decides many searches. For each study and cell, the best `top` complete
trials are re-trained with `seeds` fresh seeds, the same seed list for every cell, so cells
can be compared pair by pair. Each run is one trial of a companion study `<name>/confirm`
in the same storage, with the search trial's attrs plus `replicate_of`; a second
`confirm` finds its runs there and trains nothing again.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState, create_trial

from harness.launch import threads_per_worker
from harness.spec import StudySpec
from harness.study import derive_seed, trial_attrs
from harness.train import RunConfig, run

SUFFIX = "/confirm"


def replicate_seeds(spec: StudySpec, n: int) -> list[int]:
    """Seeds derived from the study's seeds alone: the same for every cell and every re-run."""
    return [derive_seed(spec.study.sampler_seed, spec.training.seed, 7919, i) % 2**31 for i in range(n)]


def best_per_cell(study: optuna.Study, top: int) -> dict[int, tuple[optuna.trial.FrozenTrial, int]]:
    """trial number -> (trial, rank within its cell; 0 = best) for each cell's `top` best."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "config" in t.user_attrs]
    chosen: dict[int, tuple[optuna.trial.FrozenTrial, int]] = {}
    for cell in sorted({t.user_attrs["config"]["cell"] for t in done}):
        of_cell = sorted((t for t in done if t.user_attrs["config"]["cell"] == cell), key=lambda t: t.values[0])
        chosen |= {t.number: (t, rank) for rank, t in enumerate(of_cell[:top])}
    return chosen


@dataclass(frozen=True)
class Job:
    replicate_of: int
    rank: int
    config: RunConfig
    device: str
    threads: int


def _run_job(job: Job) -> dict[str, Any]:
    torch.set_num_threads(job.threads)
    result = run(job.config, job.device)
    attrs = trial_attrs(result)
    return {"replicate_of": job.replicate_of, "rank": job.rank, **attrs, "curve": result.val_mse_by_epoch}


def confirm(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    spec: StudySpec,
    *,
    seeds: int = 5,
    top: int = 1,
    workers: int = 1,
    device: str = "auto",
) -> int:
    """Run the missing replicates of one study; returns how many were run."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    companion = optuna.create_study(study_name=study_name + SUFFIX, storage=storage, load_if_exists=True)
    companion.set_user_attr("replicates_of", study_name)
    done = {
        (t.user_attrs["replicate_of"], t.user_attrs["seed"])
        for t in companion.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    originals = best_per_cell(study, top)
    threads = threads_per_worker(workers)
    jobs = [
        Job(
            t.number, rank, dataclasses.replace(RunConfig.from_dict(t.user_attrs["config"]), seed=seed), device, threads
        )
        for t, rank in originals.values()
        for seed in replicate_seeds(spec, seeds)
        if (t.number, seed) not in done
    ]
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.imap_unordered(_run_job, jobs)
            for attrs in results:
                _record(companion, originals[attrs["replicate_of"]][0], attrs)
    else:
        for job in jobs:
            _record(companion, originals[job.replicate_of][0], _run_job(job))
    return len(jobs)


def _record(companion: optuna.Study, original: optuna.trial.FrozenTrial, attrs: dict[str, Any]) -> None:
    curve = attrs.pop("curve")
    failed = "val_mse" not in attrs
    companion.add_trial(
        create_trial(
            params=original.params,
            distributions=original.distributions,
            value=None if failed else attrs["val_mse"],
            state=TrialState.FAIL if failed else TrialState.COMPLETE,
            user_attrs=attrs,
            intermediate_values=dict(enumerate(curve)),
        )
    )
