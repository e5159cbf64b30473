"""Replicate tables in a series' own terms: a real series summarised in test MASE and MAE (what
its findings speak), the sines as before, and the tables `harness confirm` prints of each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.stats import replicates
from harness.stats.replicates import CI_COLUMNS, FRAME_COLUMNS

MASE = {"rnn": [1.2, 1.1, 1.4], "gru": [0.8, 0.9, 0.7]}


def runs(study: str, real: bool, windows: tuple[int, ...] = (8,)) -> pd.DataFrame:
    """Three seeds per cell at each window; the found window is the first. A real series'
    runs carry MASE, RMSSE and MAE (100x its MASE here); a sine's leave them empty."""
    rows: list[dict[str, object]] = []
    for cell, mase in MASE.items():
        for window in windows:
            for seed, m in enumerate(mase):
                unit = {"test_mase": m, "test_rmsse": m, "test_mae": 100 * m} if real else {}
                rows.append({"study": study, "cell": cell, "run": len(rows), "replicate_of_study": study,
                             "replicate_of": 0, "rank": 0, "seed": seed, "window": window,
                             "found_window": windows[0], "max_horizon": 15, "test_mse": 0.5 * m, "rollout_mse": m,
                             "horizon": 0, **unit})  # fmt: skip
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def test_a_real_series_is_summarised_in_mase_and_its_own_units() -> None:
    table = replicates.ci_table(runs("nile", real=True)).set_index("cell")
    logs = np.log10(MASE["gru"])
    assert table.loc["gru", "test_mase_gmean"] == pytest.approx(10 ** logs.mean())  # geometric, as an MSE
    assert table.loc["gru", "test_mae_gmean"] == pytest.approx(100 * 10 ** logs.mean())  # the series' units
    assert 0 < table.loc["gru", "test_mase_ci_low"] < min(MASE["gru"]) and table.loc["gru", "test_mase_ci_high"] > 0.9
    assert {"test_rmsse_gmean", "test_rmsse_ci_low", "test_rmsse_ci_high"} <= set(table.columns)


def test_the_sines_tables_keep_their_columns() -> None:
    assert list(replicates.ci_table(runs("short", real=False)).columns) == CI_COLUMNS
    assert list(replicates.sweep_table(runs("short", real=False, windows=(4, 8))).columns) == CI_COLUMNS


def test_confirm_prints_a_real_series_in_mase_and_mae_not_test_mse_and_horizon() -> None:
    frame = pd.concat([runs("short", real=False, windows=(8, 16)), runs("nile", real=True, windows=(8, 16))])
    tables = replicates.confirm_tables(frame.reset_index(drop=True), {"nile"}, sweep=True)
    sine_ci, sine_tests, sine_sweep, real_ci, real_tests, real_sweep = tables
    for table in (sine_ci, sine_sweep):
        assert list(table.columns) == replicates.SINE_COLUMNS and set(table["study"]) == {"short"}
    for table in (real_ci, real_sweep):
        assert list(table.columns) == replicates.SERIES_COLUMNS and set(table["study"]) == {"nile"}
        assert not {"test_mse_gmean", "horizon_mean"} & set(table.columns)
    assert len(real_sweep) == 4  # two cells at two windows
    # the real series' cells compared on MASE: gru over rnn, pair by pair
    row = real_tests.iloc[0]
    assert (row["cell_a"], row["cell_b"]) == ("gru", "rnn")
    assert row["ratio_mase"] == pytest.approx(10 ** np.mean(np.log10(MASE["gru"]) - np.log10(MASE["rnn"])))
    assert "ratio" in sine_tests and "ratio" not in real_tests


def test_confirm_on_sines_alone_prints_what_it_did() -> None:
    tables = replicates.confirm_tables(runs("short", real=False), set(), sweep=False)
    assert len(tables) == 2 and list(tables[0].columns) == replicates.SINE_COLUMNS
    empty = replicates.confirm_tables(pd.DataFrame(columns=FRAME_COLUMNS), set(), sweep=False)
    assert len(empty) == 2 and empty[0].empty  # nothing recorded yet: the headers alone
