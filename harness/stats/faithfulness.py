"""How far a replayed race (`harness race --simulate`) can be trusted: it against the live race
on the same spec, methods and budget, and the recorded table against itself.

As in Eggensperger et al. (2015) and YAHPO Gym, the question is whether the simulation ranks
methods as reality does, not whether it reproduces every number:

- **ranking** at a few points along the budget (by the IQM over repeats of log10 best so far;
  a method without a complete trial in every repeat by then ranks last) and at the end by the
  race table's own rank (time to target, then IQM final best), with Kendall's tau between
  the live and the replayed order;
- **time to target** per method, both races read against the live race's target (random
  search's median final best in the live race), so the two times measure the same thing;
- **inside the band**: whether the live IQM of final best lies in the replay's 95% bootstrap
  band (`race_stats.bootstrap_band`) of the same IQM;
- **coverage** of the table: for each recorded configuration, held out, its nearest other
  configuration's mean final loss against its own, Spearman's rank correlation (the
  nearest-neighbour surrogate is only as good as this).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from harness.stats.race_stats import (
    RepeatHistory,
    best_at,
    bootstrap_band,
    half_reached,
    iqm,
    methods,
    table,
    target_of,
    times_to_target,
)

FRACTIONS = (0.25, 0.5, 1.0)  # points along the budget where the rankings are compared


def iqm_at(histories: Sequence[RepeatHistory], seconds: float) -> dict[str, float]:
    """Each method's IQM of log10 best so far at `seconds` (NaN where a repeat has no complete trial yet)."""
    out = {}
    for method in methods(histories):
        runs = [h for h in histories if h.method == method]
        at = np.array([best_at(h.elapsed, np.array([seconds]), h.best_so_far)[0] for h in runs])
        out[method] = float(iqm(np.log10(at))) if np.all(np.isfinite(at)) else math.nan
    return out


def _order(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda m: (math.inf if math.isnan(scores[m]) else scores[m], m))


def _tau(a: list[str], b: list[str]) -> float:
    common = [m for m in a if m in b]
    if len(common) < 2:
        return math.nan
    return float(stats.kendalltau([a.index(m) for m in common], [b.index(m) for m in common]).statistic)


def ranking_agreement(
    live: Sequence[RepeatHistory], simulated: Sequence[RepeatHistory], fractions: Sequence[float] = FRACTIONS
) -> pd.DataFrame:
    """One row per point along the budget and one for the race tables' final rank: the live and
    replayed orders (best first), Kendall's tau between them and whether the winner is the same."""
    budget = min(max(h.seconds for h in live), max(h.seconds for h in simulated))
    rows = []
    for f in fractions:
        a, b = _order(iqm_at(live, f * budget)), _order(iqm_at(simulated, f * budget))
        rows.append({"at": f"{f:.0%} of {budget:.3g} s", "live": ", ".join(a), "simulated": ", ".join(b),
                     "kendall_tau": _tau(a, b), "same_winner": a[0] == b[0]})  # fmt: skip
    a = [i.method for i in sorted(table(live), key=lambda i: i.rank)]
    b = [i.method for i in sorted(table(simulated), key=lambda i: i.rank)]
    rows.append({"at": "race table rank", "live": ", ".join(a), "simulated": ", ".join(b), "kendall_tau": _tau(a, b),
                 "same_winner": a[0] == b[0]})  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class MethodAgreement:
    method: str
    live_repeats: int
    simulated_repeats: int
    live_time_to_target: float  # seconds, both against the live target; inf: not reached by half
    simulated_time_to_target: float
    live_final_iqm: float  # 10**IQM of log10 final best
    simulated_final_iqm: float
    simulated_low: float  # the replay's 95% bootstrap band of that IQM
    simulated_high: float
    inside: bool  # the live IQM lies in the band


def method_agreement(live: Sequence[RepeatHistory], simulated: Sequence[RepeatHistory]) -> list[MethodAgreement]:
    """Per method in both races: time to the live target and final IQM, live against replayed."""
    target = target_of(live)
    out = []
    for method in [m for m in methods(live) if m in methods(simulated)]:
        a = [h for h in live if h.method == method]
        b = [h for h in simulated if h.method == method]
        fa, fb = np.log10([h.final_best for h in a]), np.log10([h.final_best for h in b])
        low, high = (float(10 ** v[0]) for v in bootstrap_band(fb[:, None])) if np.all(np.isfinite(fb)) else (
            math.nan, math.nan)  # fmt: skip
        live_iqm = float(10 ** iqm(fa)) if np.all(np.isfinite(fa)) else math.nan
        out.append(MethodAgreement(
            method, len(a), len(b),
            half_reached([times_to_target(h, target)[0] for h in a]) if math.isfinite(target) else math.nan,
            half_reached([times_to_target(h, target)[0] for h in b]) if math.isfinite(target) else math.nan,
            live_iqm, float(10 ** iqm(fb)) if np.all(np.isfinite(fb)) else math.nan, low, high,
            bool(low <= live_iqm <= high),
        ))  # fmt: skip
    return out


def agreement_frame(infos: Sequence[MethodAgreement]) -> pd.DataFrame:
    return pd.DataFrame([vars(i) for i in infos]).replace([np.inf, -np.inf], np.nan)


@dataclass(frozen=True)
class Coverage:
    table: str
    configs: int  # configurations held out (each with a complete run and a neighbour)
    spearman: float
    p_value: float


def coverage(name: str, own: np.ndarray, nearest: np.ndarray) -> Coverage:
    """Spearman's rank correlation between held-out configurations' final losses and their
    nearest neighbours' (`curves.loo_pairs`); NaN with fewer than 3 pairs."""
    if len(own) < 3:
        return Coverage(name, len(own), math.nan, math.nan)
    result = stats.spearmanr(own, nearest)
    return Coverage(name, len(own), float(result.statistic), float(result.pvalue))


def summary(agree: Sequence[MethodAgreement], ranks: pd.DataFrame) -> str:
    """The agreement in one sentence."""
    inside = sum(a.inside for a in agree)
    final = ranks.iloc[-1]
    taus = ranks["kendall_tau"].dropna()
    return (f"the live IQM final best lies inside the replay's 95% band for {inside} of {len(agree)} methods; "
            f"the race tables' winners {'agree' if final['same_winner'] else 'differ'} (live {final['live']}; "
            f"replayed {final['simulated']}); Kendall's tau between the orders along the budget "
            f"{', '.join(f'{t:.2g}' for t in taus) or 'n/a'}")  # fmt: skip
