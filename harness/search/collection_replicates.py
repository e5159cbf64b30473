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
    """The per-series test scores of `name`'s collection replicates, one row per run and series:
    cell, replicate_of_study, replicate_of, seed, id, and `SCORES`; empty before any."""
    columns = ["cell", "replicate_of_study", "replicate_of", "seed", "id", *SCORES]
    if name + COMPANION_SUFFIX not in optuna.get_all_study_names(storage=storage):
        return pd.DataFrame(columns=columns)
    study = optuna.load_study(study_name=name + COMPANION_SUFFIX, storage=storage)
    frames = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        per_series = pd.DataFrame({"id": a["per_series"]["id"], **{s: a["per_series"][s] for s in SCORES}})
        frames.append(per_series.assign(cell=a["config"]["cell"], replicate_of_study=a["replicate_of_study"],
                                        replicate_of=a["replicate_of"], seed=a["seed"]))  # fmt: skip
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def collection_summary(scores: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Per cell over `seeds`: runs, and the mean over the series of test sMAPE and MASE, as
    the mean over the seeds with their lowest and highest (each seed's its own mean)."""
    chosen = scores[scores["seed"].isin(seeds)]
    per_seed = chosen.groupby(["cell", "seed"], sort=False)[list(SCORES)].mean()
    rows = []
    for cell, runs in per_seed.groupby(level="cell", sort=False):
        row: dict[str, object] = {"cell": cell, "runs": len(runs)}
        for score in SCORES:
            row |= {score: runs[score].mean(), f"{score}_min": runs[score].min(), f"{score}_max": runs[score].max()}
        rows.append(row)
    return pd.DataFrame(rows)
