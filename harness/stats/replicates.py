"""Statistics over `harness confirm` runs: confidence intervals, paired tests, the window sweep.

Data first (DataFrames), drawing elsewhere, like every report table. MSE spans orders of
magnitude and is skewed over seeds, so it is summarised on a log scale: the geometric mean,
an interval computed on log10 values (always positive), and comparisons as ratios with a
paired t-test on log10 MSE. Horizons are counts in [0, test length]: their intervals are
clipped to that range. A real series is read in its own terms: test MASE (scale-free, below 1
beats the in-sample naive forecast), RMSSE and MAE (its own units), summarised like an MSE,
since each is a positive error skewed over seeds; its `test_mse` is on the standardised series
and its horizon (within 0.1 of that) is about 0.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("test_mse", "rollout_mse", "horizon")
# A real series' test errors: scale-free (MASE, RMSSE) and in its own units (MAE); NaN for the sines.
UNIT_METRICS = ("test_mase", "test_rmsse", "test_mae")
LOG_METRICS = ("test_mse", "rollout_mse", *UNIT_METRICS)
CONFIDENCE = 0.95
FRAME_COLUMNS = ["study", "cell", "run", "replicate_of_study", "replicate_of", "rank", "seed", "window",
                 "found_window", "max_horizon", *METRICS, *UNIT_METRICS]  # fmt: skip


def interval(values: np.ndarray) -> tuple[float, float, str]:
    """95% confidence interval of the mean (Student's t) and the method that gave it. With 2-4
    runs t is wide, as it should be: a bootstrap of so few values only spans their range."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or np.all(values == values[0]):
        m = float(values.mean()) if len(values) else np.nan
        return m, m, "none"
    low, high = stats.t.interval(CONFIDENCE, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return float(low), float(high), "t"


def summary(values: np.ndarray, metric: str, upper: float = np.inf) -> tuple[float, float, float, str]:
    """(centre, low, high, method): the geometric mean and its interval for an MSE (computed on
    log10 values, so it never reaches zero), the mean clipped to [0, upper] for a horizon."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if metric in LOG_METRICS:
        values = values[values > 0]
        low, high, method = interval(np.log10(values))
        centre = float(10 ** np.log10(values).mean()) if len(values) else np.nan
        return centre, float(10**low), float(10**high), method
    low, high, method = interval(values)
    return float(values.mean()) if len(values) else np.nan, max(low, 0.0), min(high, upper), method


def _current_best(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs of each cell's best configuration (rank 0). If the search found a new best after
    an earlier `confirm`, both were rank 0 when run: the latest one replicated is kept, and a
    (seed, window) run twice counts once."""
    best = frame[frame["rank"] == 0]
    if best.empty:
        return best
    latest = best.loc[best.groupby(["study", "cell"])["run"].idxmax(), ["study", "cell", "replicate_of_study",
                                                                           "replicate_of"]]  # fmt: skip
    best = best.merge(latest, on=["study", "cell", "replicate_of_study", "replicate_of"])
    return best.drop_duplicates(["study", "cell", "seed", "window"], keep="last")


def best_config_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The replicates of each cell's best configuration at the window the search found: the
    runs the cell comparison uses."""
    best = _current_best(frame)
    return best[best["window"] == best["found_window"]].reset_index(drop=True)


def sweep_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Each cell's best configuration at every window it was run at, for the cells that were
    run at two or more windows (`confirm --windows`)."""
    best = _current_best(frame)
    swept = best.groupby(["study", "cell"])["window"].transform("nunique") > 1
    return best[swept].reset_index(drop=True)


def _centre(metric: str) -> str:
    return f"{metric}_gmean" if metric in LOG_METRICS else f"{metric}_mean"


def _ci_columns(metrics: tuple[str, ...]) -> list[str]:
    return ["study", "cell", "runs", "window", "ci_method"] + [
        f"{m}_{part}" for m in metrics for part in (_centre(m).removeprefix(f"{m}_"), "ci_low", "ci_high")
    ]


CI_COLUMNS = _ci_columns(METRICS)


def _metrics(frame: pd.DataFrame) -> tuple[str, ...]:
    """The metrics a table summarises: a real series' unit metrics too where any run has them,
    so the sines' tables keep their columns."""
    real = any(m in frame and frame[m].notna().any() for m in UNIT_METRICS)
    return (*METRICS, *UNIT_METRICS) if real else METRICS


def _summarise(f: pd.DataFrame, metrics: tuple[str, ...]) -> dict[str, object]:
    row: dict[str, object] = {"runs": len(f)}
    for m in metrics:
        centre, low, high, method = summary(f[m].to_numpy(), m, float(f["max_horizon"].max()))
        row |= {_centre(m): centre, f"{m}_ci_low": low, f"{m}_ci_high": high}
        if m == METRICS[0]:
            row["ci_method"] = method
    return row


def ci_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per study x cell (best configuration, its own window): runs, centre and 95% CI of each
    metric (`CI_COLUMNS`; with a real series' runs, its MASE, RMSSE and MAE after them)."""
    metrics, rows = _metrics(frame), []
    for (study, cell), f in best_config_only(frame).groupby(["study", "cell"], sort=False):
        rows.append({"study": study, "cell": cell, "window": int(f["window"].iloc[0]), **_summarise(f, metrics)})
    return pd.DataFrame(rows, columns=_ci_columns(metrics))


def sweep_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per study x cell x window (each cell's best configuration re-trained at each window)."""
    metrics, rows = _metrics(frame), []
    for (study, cell, window), f in sweep_only(frame).groupby(["study", "cell", "window"], sort=True):
        rows.append({"study": study, "cell": cell, "window": int(window), **_summarise(f, metrics)})
    return pd.DataFrame(rows, columns=_ci_columns(metrics))


def paired_log_t(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(ratio, p): geometric mean of x / y over pairs, and the two-sided paired t-test of
    log10 x against log10 y (NaN with fewer than 2 pairs or no spread)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)  # a log needs positive, finite values
    lx, ly = np.log10(x[ok]), np.log10(y[ok])
    diff = lx - ly
    ratio = float(10 ** diff.mean()) if len(diff) else np.nan
    if len(diff) < 2 or np.all(diff == diff[0]):
        return ratio, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-constant ratios: scipy warns, p is still ~0
        return ratio, float(stats.ttest_rel(lx, ly).pvalue)


POWER = 0.8  # the chance a difference of the observed size would show at ALPHA with the suggested seeds
MAX_SEEDS = 1000


def seeds_to_settle(x: np.ndarray, y: np.ndarray, paired: bool, alpha: float = 0.05) -> int | None:
    """About how many seeds (per group) a t-test on log10 values would need to show the
    observed effect at `alpha` with probability `POWER`: the effect is taken as measured
    (mean difference over its standard deviation) and the power computed from the noncentral
    t distribution, paired (df n-1, noncentrality d sqrt(n)) or two-sample (df 2n-2, d sqrt(n/2)).
    None where the effect cannot be estimated (under 2 values, no spread) or needs more than
    MAX_SEEDS."""
    lx, ly = np.log10(x[x > 0]), np.log10(y[y > 0])
    if paired:
        diff = lx - ly
        if len(diff) < 2 or np.std(diff, ddof=1) == 0:
            return None
        d = abs(float(diff.mean())) / float(np.std(diff, ddof=1))
    else:
        if min(len(lx), len(ly)) < 2:
            return None
        sd = float(np.sqrt((np.var(lx, ddof=1) + np.var(ly, ddof=1)) / 2))
        if sd == 0:
            return None
        d = abs(float(lx.mean() - ly.mean())) / sd
    for n in range(2, MAX_SEEDS + 1):
        df, nc = (n - 1, d * np.sqrt(n)) if paired else (2 * n - 2, d * np.sqrt(n / 2))
        crit = stats.t.ppf(1 - alpha / 2, df)
        if stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= POWER:
            return n
    return None


TEST_COLUMNS = ["study", "cell_a", "cell_b", "pairs", "ratio", "p_log_t", "median_diff", "lower", "p_wilcoxon"]


def paired_tests(frame: pd.DataFrame, metric: str = "test_mse") -> pd.DataFrame:
    """For each pair of cells on the same seeds: the ratio of geometric means with a paired
    t-test on log10 values, and the Wilcoxon signed-rank test (no distribution assumed)."""
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
            ratio, p_t = paired_log_t(x, y)
            lower = a if np.median(diff) < 0 else b if np.median(diff) > 0 else "neither"
            rows.append({"study": study, "cell_a": a, "cell_b": b, "pairs": len(seeds), "ratio": ratio, "p_log_t": p_t,
                         "median_diff": float(np.median(diff)) if len(seeds) else np.nan,
                         "lower": lower, "p_wilcoxon": p})  # fmt: skip
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


# What `harness confirm` prints of each study x cell: a sine in test MSE and horizon; a real
# series in its test MASE (scale-free, the error its findings speak) and test MAE (its own units).
SINE_COLUMNS = ["study", "cell", "runs", "window", "test_mse_gmean", "test_mse_ci_low", "test_mse_ci_high",
                "horizon_mean", "horizon_ci_low", "horizon_ci_high"]  # fmt: skip
SERIES_COLUMNS = ["study", "cell", "runs", "window", "test_mase_gmean", "test_mase_ci_low", "test_mase_ci_high",
                  "test_mae_gmean", "test_mae_ci_low", "test_mae_ci_high"]  # fmt: skip


def confirm_tables(frame: pd.DataFrame, real: set[str], sweep: bool) -> list[pd.DataFrame]:
    """The tables `harness confirm` prints: per study x cell the centre and 95% CI, the paired
    tests, and with `sweep` the same per window; the sines' studies first, then those of `real`
    (the real series'), whose paired tests compare test MASE (`ratio_mase`, `median_diff_mase`):
    their test MSE is on the standardised series and their horizon (within 0.1 of it) about 0."""
    is_real = frame["study"].isin(real)
    parts = [(frame[~is_real], SINE_COLUMNS, "test_mse")] if (~is_real).any() or not real else []
    if real:
        parts.append((frame[is_real], SERIES_COLUMNS, "test_mase"))
    tables = []
    for part, columns, metric in parts:
        tests = paired_tests(part, metric)
        if metric != "test_mse":
            tests = tests.rename(columns={"ratio": f"ratio_{metric[5:]}", "median_diff": f"median_diff_{metric[5:]}"})
        tables += [ci_table(part).reindex(columns=columns), tests]
        if sweep:
            tables.append(sweep_table(part).reindex(columns=columns))
    return tables
