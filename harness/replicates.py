"""Statistics over `harness confirm` replicates: confidence intervals and paired tests.

Data first (DataFrames), drawing elsewhere, like every report table.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from scipy import stats

from harness.confirm import SUFFIX

METRICS = ("test_mse", "rollout_mse", "horizon")
CONFIDENCE = 0.95
MIN_T_RUNS = 5  # fewer runs than this: a bootstrap interval instead of Student's t


def replicate_frame(storage: optuna.storages.BaseStorage, study_names: list[str]) -> pd.DataFrame:
    """One row per finished replicate: study, cell, the search trial it replicates, that trial's
    rank among its cell's best (0 = best), seed and metrics."""
    names = set(optuna.get_all_study_names(storage=storage))
    rows = []
    for name in study_names:
        if name + SUFFIX not in names:
            continue
        companion = optuna.load_study(study_name=name + SUFFIX, storage=storage)
        for t in companion.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            a = t.user_attrs
            rows.append({"study": name, "cell": a["config"]["cell"], "replicate_of": a["replicate_of"],
                         "rank": a["rank"], "seed": a["seed"], **{m: a.get(m, np.nan) for m in METRICS}})  # fmt: skip
    return pd.DataFrame(rows, columns=["study", "cell", "replicate_of", "rank", "seed", *METRICS])


def interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, str]:
    """95% confidence interval of the mean and the method that gave it."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or np.all(values == values[0]):
        m = float(values.mean()) if len(values) else np.nan
        return m, m, "none"
    if len(values) >= MIN_T_RUNS:
        low, high = stats.t.interval(CONFIDENCE, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        return float(low), float(high), "t"
    boot = stats.bootstrap((values,), np.mean, confidence_level=CONFIDENCE, rng=np.random.default_rng(seed))
    return float(boot.confidence_interval.low), float(boot.confidence_interval.high), "bootstrap"


def best_config_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The replicates of each cell's best configuration (rank 0), the one the tables compare."""
    return frame[frame["rank"] == 0].reset_index(drop=True)


def ci_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per study x cell: runs, mean and 95% CI of each metric over the replicates."""
    rows = []
    for (study, cell), f in best_config_only(frame).groupby(["study", "cell"], sort=False):
        row: dict[str, object] = {"study": study, "cell": cell, "runs": len(f)}
        for m in METRICS:
            low, high, method = interval(f[m].to_numpy())
            row |= {f"{m}_mean": float(f[m].mean()), f"{m}_ci_low": low, f"{m}_ci_high": high}
            if m == METRICS[0]:
                row["ci_method"] = method
        rows.append(row)
    return pd.DataFrame(rows)


def paired_tests(frame: pd.DataFrame, metric: str = "test_mse") -> pd.DataFrame:
    """Wilcoxon signed-rank test for each pair of cells on the same seeds."""
    rows = []
    best = best_config_only(frame)
    for study, f in best.groupby("study", sort=False):
        by_cell = {cell: g.set_index("seed")[metric] for cell, g in f.groupby("cell")}
        for a, b in itertools.combinations(sorted(by_cell), 2):
            seeds = sorted(set(by_cell[a].index) & set(by_cell[b].index))
            x, y = by_cell[a].loc[seeds].to_numpy(float), by_cell[b].loc[seeds].to_numpy(float)
            diff = x - y
            if len(seeds) == 0 or np.all(diff == 0):
                p = np.nan
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # small-sample notes
                    p = float(stats.wilcoxon(x, y).pvalue)
            lower = a if np.median(diff) < 0 else b if np.median(diff) > 0 else "neither"
            rows.append({"study": study, "cell_a": a, "cell_b": b, "pairs": len(seeds),
                         "median_diff": float(np.median(diff)) if len(seeds) else np.nan,
                         "lower": lower, "p_value": p})  # fmt: skip
    return pd.DataFrame(rows, columns=["study", "cell_a", "cell_b", "pairs", "median_diff", "lower", "p_value"])
