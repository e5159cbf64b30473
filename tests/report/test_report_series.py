"""A real series end to end from the CLI: launch, confirm and report a tiny study on a user's
CSV with a date column; the report shows every cell and baseline in MASE and RMSSE, and the
findings name the best baseline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.report import tables
from harness.report.figure_data import STANDARDISED
from harness.search.storage import open_storage

from conftest import SALES_SERIES, write_sales

SPEC = (
    """
[study]
name = "sales"
trials = 2
pruner = "none"
equal_cells = true
"""
    + SALES_SERIES
    + """transform = "log"

[training]
epochs = 2

[search]
cell = ["rnn", "gru"]
hidden_size = 4
window = { low = 2, high = 6 }
lr = 0.01
"""
)


@pytest.mark.slow
def test_a_users_csv_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sales(tmp_path)
    (tmp_path / "sales.toml").write_text(SPEC)
    storage = ["--storage", f"sqlite:///{tmp_path / 'h.db'}"]
    assert main(["launch", str(tmp_path / "sales.toml"), *storage, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["confirm", "--seeds", "2", "--windows", "2,4", *storage]) == 0
    # printed in the series' own terms, as its findings speak: test MASE and MAE, cells compared
    # on MASE; not the standardised test MSE and a horizon of 0
    printed = capsys.readouterr().out
    assert "test_mase_gmean" in printed and "test_mae_gmean" in printed and "ratio_mase" in printed
    assert "test_mse_gmean" not in printed and "horizon_mean" not in printed
    out = tmp_path / "report"
    assert main(["report", *storage, "--out", str(out)]) == 0
    comparison = pd.read_csv(out / "comparison.csv")
    cells = set(comparison["cell"])
    assert {"rnn", "gru"} <= cells
    assert {f"baseline: {b}" for b in ("naive", "seasonal-naive", "drift", "mean", "linear-ar", "ets")} <= cells
    assert comparison[["test_mase", "test_rmsse"]].notna().all().all()
    assert comparison["best"].eq(True).sum() == 1
    best = comparison.loc[comparison["best"].eq(True), "model"].iloc[0]
    text = (out / "findings.md").read_text()
    assert "Does any cell beat forecasting's baselines?" in text
    assert f"the best baseline on validation is {best}" in text
    assert "seasonal naive (m = 12)" in set(comparison["model"].dropna())
    horizon = pd.read_csv(out / "sales-error-by-horizon.csv")
    assert (out / "sales-error-by-horizon.png").exists()
    assert "sales-error-by-horizon.png" in (out / "report.md").read_text()
    assert {"rnn", "gru", "naive", "seasonal-naive", "ets"} <= set(horizon["name"])
    steps = horizon.groupby("name")["h"].max()
    assert steps.nunique() == 1 and steps.iloc[0] == 96 - 1 - (round(0.85 * 96) - 1)  # the test part caps M4's 18
    # the window sweep and replicates read a real series in free-running MSE: no horizon (within
    # 0.1 of a standardised noisy series: always about 0), which the sines keep
    for name in ("window_sweep", "replicates"):
        table = pd.read_csv(out / f"{name}.csv")
        assert len(table) and table["rollout_mse_gmean"].gt(0).all(), name
        assert table.filter(like="horizon_").isna().all().all(), name
        assert table[["test_mase_gmean", "test_mae_gmean"]].gt(0).all().all(), name
    assert (out / "window-sweep.png").exists()
    # the figures' records: the test region against the file's dates, in its units; the
    # search's MSE named as what it is, on the standardised series
    search = tables.load_studies(open_storage(storage[1]))[0]
    preds = tables.predictions_info(search, tmp_path / "artifacts")
    assert (preds.values, preds.time) == ("sales (the file's units)", "date (monthly values)")
    months = pd.date_range("2010-01-01", periods=96, freq="MS")
    assert (preds.frame["date"].to_numpy() == months[preds.frame["t"].to_numpy()].to_numpy()).all()
    assert preds.frame["date"].max() == months[-1]  # the test region runs to the file's last month
    assert tables.pareto_info(search).units == STANDARDISED
