"""Verdicts with power and a replay's faithfulness: probability of improvement, average rank
across races, a replay against its live race, and the table's leave-one-out coverage, on
hand-made histories whose answers are known."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from harness.stats import faithfulness, race_stats
from harness.stats.race_stats import RepeatHistory


def test_probability_of_improvement_counts_pairs_and_half_ties() -> None:
    # (1,2) (1,inf) (2,inf) (3,inf) win, (2,2) ties, (3,2) loses: 4.5 of 6
    assert race_stats.probability_of_improvement([1.0, 2.0, 3.0], [2.0, math.inf]) == 0.75
    assert race_stats.probability_of_improvement([math.inf], [math.inf]) == 0.5  # neither reached: a tie
    assert math.isnan(race_stats.probability_of_improvement([], [1.0]))


def _runs(name: str, method: str, reach: list[float], scale: float = 1.0) -> list[RepeatHistory]:
    """Repeats that reach 0.1 at the given seconds (inf: never; they end at 0.2), after 0.5 at 1 s."""
    out = []
    for r, t in enumerate(reach):
        end = t * scale if math.isfinite(t) else 100.0 * scale
        out.append(RepeatHistory(name, method, r, np.array([1.0 * scale, end]),
                                 np.array([0.5, 0.1 if math.isfinite(t) else 0.2]), 100.0 * scale))  # fmt: skip
    return out


RANDOM = [40.0, 50.0, 60.0, math.inf, math.inf, math.inf]
TPE = [10.0, 12.0, 14.0, 16.0, 18.0, math.inf]


def test_the_race_table_puts_the_probability_of_improvement_beside_mann_whitney() -> None:
    infos = {i.method: i for i in race_stats.table(_runs("s", "random+none", RANDOM) + _runs("s", "tpe+median", TPE))}
    tpe, base = infos["tpe+median"], infos["random+none"]
    assert tpe.p_improvement == race_stats.probability_of_improvement(TPE, RANDOM)
    assert tpe.p_improvement == (5 * 6 + 0.5 * 3) / 36  # its inf ties random's 3 infs, loses to its 3 times
    capped = [np.where(np.isfinite(x), x, 101.0) for x in (TPE, RANDOM)]
    assert tpe.p_mann_whitney == pytest.approx(stats.mannwhitneyu(*capped, alternative="less").pvalue)
    assert math.isnan(base.p_improvement) and math.isnan(base.p_mann_whitney)  # the baseline against itself: blank
    text = race_stats.verdict(list(infos.values()), "s")
    assert f"sooner than one of random search {tpe.p_improvement:.2f}" in text
    assert list(race_stats.table_frame(list(infos.values())).columns[-2:]) == ["p_improvement", "p_mann_whitney"]


def test_average_rank_over_races() -> None:
    a = race_stats.table(_runs("a", "random+none", RANDOM) + _runs("a", "tpe+median", TPE))
    b = race_stats.table(_runs("b", "random+none", TPE) + _runs("b", "tpe+median", RANDOM)
                         + _runs("b", "gp+none", [5.0] * 6))  # fmt: skip
    frame = race_stats.average_ranks({"a": a, "b": b}).set_index("method")
    assert frame.loc["tpe+median", "average_rank"] == 2.0  # 1st on a, 3rd on b
    assert frame.loc["random+none", "average_rank"] == 2.0 and frame.loc["gp+none", "average_rank"] == 1.0
    assert frame.loc["gp+none", "tasks"] == 1 and frame.index[0] == "gp+none"
    assert frame.loc["tpe+median", "a"] == 1 and frame.loc["tpe+median", "b"] == 3


def test_a_replay_identical_to_its_live_race_agrees_in_every_measure() -> None:
    live = _runs("s", "random+none", RANDOM) + _runs("s", "tpe+median", TPE)
    ranks = faithfulness.ranking_agreement(live, live)
    assert ranks["same_winner"].all() and (ranks["kendall_tau"].dropna() == 1.0).all()
    assert list(ranks["at"])[-1] == "race table rank" and ranks["live"].iloc[-1] == "tpe+median, random+none"
    agree = {a.method: a for a in faithfulness.method_agreement(live, live)}
    assert all(a.inside for a in agree.values())
    assert agree["tpe+median"].live_time_to_target == agree["tpe+median"].simulated_time_to_target == 14.0
    assert "for 2 of 2 methods" in faithfulness.summary(list(agree.values()), ranks)


def test_a_slower_replay_is_read_against_the_live_target() -> None:
    live = _runs("s", "random+none", RANDOM) + _runs("s", "tpe+median", TPE)
    # the replay takes twice as long and its random search misses: its own target would differ
    slow = _runs("s", "random+none", [math.inf] * 6, 2.0) + _runs("s", "tpe+median", TPE, 2.0)
    agree = {a.method: a for a in faithfulness.method_agreement(live, slow)}
    assert agree["tpe+median"].simulated_time_to_target == 28.0 and agree["tpe+median"].inside
    assert math.isinf(agree["random+none"].simulated_time_to_target) and not agree["random+none"].inside
    flipped = [replace(h, method={"random+none": "tpe+median", "tpe+median": "random+none"}[h.method]) for h in live]
    ranks = faithfulness.ranking_agreement(live, flipped)
    assert not ranks["same_winner"].iloc[-1] and ranks["kendall_tau"].iloc[-1] == -1.0


def test_coverage_is_spearmans_rank_correlation() -> None:
    own = np.array([1e-6, 1e-5, 1e-4, 1e-3])
    assert faithfulness.coverage("t", own, own * 3).spearman == 1.0
    assert faithfulness.coverage("t", own, own[::-1]).spearman == -1.0
    few = faithfulness.coverage("t", own[:2], own[:2])
    assert few.configs == 2 and math.isnan(few.spearman)
