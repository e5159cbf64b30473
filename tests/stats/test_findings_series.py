"""Findings for a real series: whether any cell beats the best baseline, named, in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.stats import findings
from harness.stats.replicates import FRAME_COLUMNS

SPREAD = np.array([1.0, 1.05, 0.95, 1.02, 0.98])


def runs(mase: dict[str, float]) -> pd.DataFrame:
    rows = [{"study": "nile", "cell": cell, "run": i, "replicate_of_study": "nile", "replicate_of": 0, "rank": 0,
             "seed": seed, "window": 8, "found_window": 8, "max_horizon": 15, "test_mse": m * s,
             "rollout_mse": m * s, "horizon": 0, "test_mase": m * s, "test_rmsse": m * s}
            for i, (cell, m) in enumerate(mase.items()) for seed, s in enumerate(SPREAD)]  # fmt: skip
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def nile(search_mase: dict[str, float] | None = None) -> findings.StudyFacts:
    return findings.StudyFacts("nile", "nile", 0.0, np.nan, np.nan, {"rnn": 10, "gru": 10}, real=True,
                               baseline="linear AR(4)", baseline_mase=0.8, search_mase=search_mase or {})  # fmt: skip


def test_no_cell_beats_the_baseline_is_said_in_words() -> None:
    found = findings.baseline_finding(nile(), runs({"rnn": 1.2, "gru": 0.81}))
    assert found.question == "baseline" and "linear AR(4)" in found.text
    assert "no recurrent cell beats linear AR(4) here" in found.text
    assert "the RNN is worse" in found.text and "the GRU cannot be told apart" in found.text


def test_a_cell_that_beats_the_baseline_is_named_with_its_ratio() -> None:
    found = findings.baseline_finding(nile(), runs({"rnn": 1.2, "gru": 0.4}))
    assert "the GRU beats it (MASE 0.5x the baseline's" in found.text
    assert "In short: the GRU beats linear AR(4)." in found.text


def test_without_replicates_the_search_best_is_one_seed() -> None:
    found = findings.baseline_finding(nile({"rnn": 1.0, "gru": 0.6}), runs({}))
    assert "a GRU, has test MASE 0.6, 0.75x the baseline's (below it), on one seed" in found.text
    assert "harness confirm" in found.text


def test_cells_of_a_real_series_are_compared_in_mase() -> None:
    found = findings.findings([nile()], runs({"rnn": 1.2, "gru": 0.4}))
    assert [f.question for f in found] == ["cells", "baseline", "window"]
    assert "lowest test MASE" in found[0].text and "log test MASE" in found[0].text
    assert "Does any cell beat forecasting's baselines?" in findings.markdown(found)


def test_an_rnn_a_gru() -> None:
    assert "trial, an RNN, has" in findings.baseline_finding(nile({"rnn": 0.6}), runs({})).text
