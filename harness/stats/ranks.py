"""Methods judged across the series of a collection: average ranks, Friedman's test, pairwise
post-hoc tests and the comparison of each method with a reference. Pure functions on a table
of per-series scores (rows: series; columns: methods); nothing here reads a storage.

The tests are the field's (Demšar, JMLR 7, 2006; Benavoli, Corani & Mangili, JMLR 17, 2016):
Friedman's test of whether the methods' ranks differ at all (`scipy.stats`), then every pair
compared with the Wilcoxon signed-rank test on the series' paired scores, Holm-adjusted for
the number of pairs (`scikit-posthocs`), which a critical-difference diagram draws: methods
joined by a bar are not told apart at the 5% level.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
import scikit_posthocs
from scipy import stats
from statsmodels.stats.multitest import multipletests

from harness.stats.significance import ALPHA, fragile


@dataclass(frozen=True)
class Ranks:
    """What the ranks of `methods` over `series` series say (lower scores rank first)."""

    average: pd.Series  # method -> mean rank over the series (1 is best), best first
    friedman_p: float  # Friedman's test: do the methods' ranks differ at all
    pairwise_p: pd.DataFrame  # method x method: Wilcoxon signed-rank p-values, Holm-adjusted
    series: int


def complete(scores: pd.DataFrame) -> pd.DataFrame:
    """The series every method scored (a NaN, such as a MASE with nothing to scale by, drops
    its series from every method alike, so each comparison stays paired)."""
    return scores.dropna(axis=0, how="any")


def ranks(scores: pd.DataFrame) -> Ranks:
    """Average ranks, Friedman's test and the Holm-adjusted pairwise tests of `scores`."""
    table = complete(scores)
    average = table.rank(axis=1, method="average").mean().sort_values()
    friedman = stats.friedmanchisquare(*(table[c].to_numpy() for c in table.columns)) if table.shape[1] > 2 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical pairs: p = 1, as it should be
        long = table.melt(var_name="method", value_name="score", ignore_index=False).reset_index(names="series")
        pairwise = scikit_posthocs.posthoc_wilcoxon(long, val_col="score", group_col="method", p_adjust="holm")
    pairwise = pairwise.loc[average.index, average.index]
    return Ranks(average, float(friedman.pvalue) if friedman is not None else float("nan"), pairwise, len(table))


@dataclass(frozen=True)
class Versus:
    """One method against a reference over the same series."""

    method: str
    reference: str
    ratio: float  # mean score of `method` over the reference's
    wins: int  # series where `method` scores lower
    losses: int
    p: float  # Wilcoxon signed-rank, two-sided
    series: int


def versus(scores: pd.DataFrame, method: str, reference: str) -> Versus:
    """`method` against `reference`, series by series."""
    pair = complete(scores[[method, reference]])
    a, b = pair[method].to_numpy(), pair[reference].to_numpy()
    differ = a != b
    p = float(stats.wilcoxon(a[differ], b[differ]).pvalue) if differ.sum() > 0 else 1.0
    return Versus(method, reference, float(a.mean() / b.mean()), int((a < b).sum()), int((a > b).sum()), p, len(pair))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (statsmodels'), in the order given."""
    return [float(p) for p in multipletests(pvalues, method="holm")[1]] if pvalues else []


@dataclass(frozen=True)
class Verdict:
    """One method against a reference, its p-value Holm-adjusted over the comparisons made
    together, and what that says in words."""

    versus: Versus
    p: float

    @property
    def word(self) -> str:
        if not self.p < ALPHA:  # a NaN p-value (no test possible) states no difference either
            return "cannot be told apart"
        return "beats it" if self.versus.ratio < 1 else "worse"

    @property
    def fragile(self) -> bool:
        return fragile(self.p)


def verdicts(scores: pd.DataFrame, pairs: list[tuple[str, str]]) -> list[Verdict]:
    """Each (method, reference) of `pairs` over the series of `scores`, Holm-adjusted together."""
    found = [versus(scores, method, reference) for method, reference in pairs]
    return [Verdict(v, p) for v, p in zip(found, holm([v.p for v in found]), strict=True)]
