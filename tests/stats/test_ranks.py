"""Ranks across series: average ranks, Friedman, Holm-adjusted pairwise tests, one method
against a reference; checked by hand on small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.stats.ranks import Verdict, complete, holm, ranks, verdicts, versus


def test_average_ranks_by_hand_and_ties_share_their_rank() -> None:
    scores = pd.DataFrame({"a": [1.0, 1.0, 3.0], "b": [2.0, 1.0, 1.0], "c": [3.0, 3.0, 2.0]})
    # a: 1, 1.5, 3 -> 5.5/3; b: 2, 1.5, 1 -> 4.5/3; c: 3, 3, 2 -> 8/3
    result = ranks(scores)
    assert list(result.average.index) == ["b", "a", "c"]
    assert result.average.to_dict() == pytest.approx({"a": 5.5 / 3, "b": 4.5 / 3, "c": 8 / 3})
    assert result.series == 3


def test_a_clearly_better_method_is_told_apart_and_equal_ones_are_not() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(5, 15, 60)
    scores = pd.DataFrame({"good": base * 0.8, "same1": base, "same2": base * (1 + rng.normal(0, 1e-3, 60))})
    result = ranks(scores)
    assert result.friedman_p < 1e-6
    assert result.pairwise_p.loc["good", "same1"] < 0.05 and result.pairwise_p.loc["good", "same2"] < 0.05
    assert result.pairwise_p.loc["same1", "same2"] > 0.05
    v = versus(scores, "good", "same1")
    assert (v.ratio, v.wins, v.losses, v.series) == (pytest.approx(0.8), 60, 0, 60) and v.p < 1e-6


def test_a_series_any_method_could_not_score_leaves_every_comparison() -> None:
    scores = pd.DataFrame({"a": [1.0, np.nan, 2.0], "b": [2.0, 1.0, 3.0]})
    assert list(complete(scores).index) == [0, 2]
    assert versus(scores, "a", "b").series == 2


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04), back in the order given
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_verdicts_are_holm_adjusted_together_and_say_their_word() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(5, 15, 40)
    scores = pd.DataFrame({"cell": base * 0.7, "worse": base * 1.5, "ref": base * (1 + rng.normal(0, 0.05, 40))})
    found = verdicts(scores, [("cell", "ref"), ("worse", "ref")])
    raw = [versus(scores, m, r).p for m, r in (("cell", "ref"), ("worse", "ref"))]
    assert [v.p for v in found] == pytest.approx(holm(raw))
    assert [v.word for v in found] == ["beats it", "worse"]
    tied = Verdict(versus(scores, "cell", "ref"), 0.06)
    assert tied.word == "cannot be told apart" and tied.fragile  # 0.06 lies within 3x of 0.05
    assert not Verdict(versus(scores, "cell", "ref"), 0.001).fragile
