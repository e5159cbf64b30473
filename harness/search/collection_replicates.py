"""A collection's replicates read back: `harness confirm` re-trains each cell's best
configuration of a collection's search on several seeds (`confirm.confirm`), each run a trial
of the companion study `<name>/confirm` whose attrs keep every series' scores; here they become
one row per run and series, and a summary per cell, so that a verdict across the series rests
on more than one training seed.
"""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from harness.search.study import COMPANION_SUFFIX

SCORES = ("test_smape", "test_mase")  # the per-series scores the report ranks on


def replicate_scores(storage: optuna.storages.BaseStorage, name: str) -> pd.DataFrame:
    """The per-series test scores of `name`'s collection replicates, one row per complete run
    and series: cell, replicate_of_study, replicate_of, rank, seed, id, and `SCORES`."""
    columns = ["cell", "replicate_of_study", "replicate_of", "rank", "seed", "id", *SCORES]
    if name + COMPANION_SUFFIX not in optuna.get_all_study_names(storage=storage):
        return pd.DataFrame(columns=columns)
    study = optuna.load_study(study_name=name + COMPANION_SUFFIX, storage=storage)
    frames = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        per_series = pd.DataFrame({"id": a["per_series"]["id"], **{s: a["per_series"][s] for s in SCORES}})
        frames.append(per_series.assign(cell=a["config"]["cell"], replicate_of_study=a["replicate_of_study"],
                                        replicate_of=a["replicate_of"], rank=a["rank"], seed=a["seed"]))  # fmt: skip
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def best_runs(scores: pd.DataFrame, best: dict[str, tuple[str, int]]) -> dict[str, pd.DataFrame]:
    """Each cell's replicates of its best trial (`best`: cell -> study and trial number), for
    the cells that have any."""
    runs = {}
    for cell, (study, number) in best.items():
        mine = scores[(scores["replicate_of_study"] == study) & (scores["replicate_of"] == number)]
        if not mine.empty:
            runs[cell] = mine
    return runs


def seed_means(run: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """One configuration's `SCORES` per series (the index), each the mean over `seeds`."""
    return run[run["seed"].isin(seeds)].groupby("id", sort=False)[list(SCORES)].mean()


def collection_summary(scores: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Per cell, its best configuration's (rank 0) runs on `seeds`: how many, and each score's
    mean over the series of the per-series seed means (as the report ranks them), beside the
    lowest and highest of the seeds' own means."""
    rows = []
    for cell, run in scores[(scores["rank"] == 0) & scores["seed"].isin(seeds)].groupby("cell", sort=False):
        per_seed = run.groupby("seed")[list(SCORES)].mean()
        row: dict[str, object] = {"cell": cell, "runs": len(per_seed)}
        for score, mean in seed_means(run, seeds).mean().items():
            row |= {score: mean, f"{score}_min": per_seed[score].min(), f"{score}_max": per_seed[score].max()}
        rows.append(row)
    return pd.DataFrame(rows)
