"""Each metric and baseline against values computed by hand on tiny series."""

from __future__ import annotations

import numpy as np
import pytest

from harness.series.baselines import BASELINES, ar_forecasts, fit
from harness.series.metrics import mae, mse, naive_scales, rmse, scores


def test_metrics_by_hand() -> None:
    train = np.array([1.0, 3.0, 2.0, 5.0])
    forecast, target = np.array([5.0, 5.0]), np.array([6.0, 4.0])
    # errors 1 and -1; in-sample naive differences 2, -1, 3
    assert mae(forecast, target) == 1 and mse(forecast, target) == 1 and rmse(forecast, target) == 1
    assert naive_scales(train) == pytest.approx((2.0, np.sqrt(14 / 3)))
    s = scores(forecast, target, train)
    assert s["mase"] == pytest.approx(0.5) and s["rmsse"] == pytest.approx(1 / np.sqrt(14 / 3))
    # season 2: seasonal differences 2 - 1 = 1 and 5 - 3 = 2
    assert naive_scales(train, 2) == pytest.approx((1.5, np.sqrt(2.5)))
    s2 = scores(np.array([4.0, 2.0]), target, train, 2)  # errors 2, 2
    assert s2 == pytest.approx({"mae": 2, "rmse": 2, "mse": 4, "mase": 2 / 1.5, "rmsse": 2 / np.sqrt(2.5)})


def test_metrics_match_statsmodels() -> None:
    eval_measures = pytest.importorskip("statsmodels.tools.eval_measures")
    rng = np.random.default_rng(0)
    f, y = rng.normal(size=50), rng.normal(size=50)
    assert mae(f, y) == pytest.approx(eval_measures.meanabs(y, f))
    assert mse(f, y) == pytest.approx(eval_measures.mse(y, f))
    assert rmse(f, y) == pytest.approx(eval_measures.rmse(y, f))


@pytest.mark.parametrize("season", [1, 4])
def test_mase_and_rmsse_match_nixtla_utilsforecast(season: int) -> None:
    """The M4/M5 formulas as Nixtla's utilsforecast (the metrics of statsforecast and
    neuralforecast) computes them, on a seasonal series with a trend."""
    import pandas as pd
    from utilsforecast import losses  # a dev dependency

    rng = np.random.default_rng(1)
    y = 10 + 0.3 * np.arange(60) + 2 * np.sin(np.arange(60) * np.pi / 2) + rng.normal(size=60)
    train, target = y[:48], y[48:]
    forecast = target + rng.normal(scale=0.8, size=12)
    frame = pd.DataFrame({"unique_id": "s", "ds": np.arange(48, 60), "y": target, "model": forecast})
    train_frame = pd.DataFrame({"unique_id": "s", "ds": np.arange(48), "y": train})
    theirs = {name: float(getattr(losses, name)(frame, ["model"], season, train_frame)["model"].iloc[0])
              for name in ("mase", "rmsse")}  # fmt: skip
    ours = scores(forecast, target, train, season)
    assert ours["mase"] == pytest.approx(theirs["mase"], rel=1e-12)
    assert ours["rmsse"] == pytest.approx(theirs["rmsse"], rel=1e-12)


def test_mase_below_one_means_better_than_in_sample_naive() -> None:
    train = np.arange(10.0)  # naive's in-sample error is 1 everywhere
    assert scores(np.array([10.5]), np.array([10.0]), train)["mase"] == pytest.approx(0.5)


def test_baselines_by_hand() -> None:
    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    b = fit(y, train_end=4, val_end=5, season=2)
    assert set(b.forecasts) <= set(BASELINES)
    assert b.forecasts["naive"][4:].tolist() == [7, 11]
    assert b.forecasts["seasonal-naive"][4:].tolist() == [4, 7]
    assert b.forecasts["drift"][4:].tolist() == [9, 13]  # slope (7 - 1) / 3 = 2 from the training part
    assert b.forecasts["mean"][4:].tolist() == [3.5, 3.5]
    assert "seasonal-naive" not in fit(y, 4, 5, season=1).forecasts


def test_linear_ar_fits_the_training_part_only() -> None:
    t = np.arange(40.0)
    y = t * (t + 1) / 2 + 1  # second differences are 1: y_t = 2 y_{t-1} - y_{t-2} + 1 exactly
    f = ar_forecasts(y, 20, 2)
    np.testing.assert_allclose(f[2:], y[2:], rtol=1e-9)
    spoiled = y.copy()
    spoiled[20:] = 0.0  # values after the training part change nothing in the fit
    g = ar_forecasts(spoiled, 20, 2)
    np.testing.assert_allclose(g[2:21], f[2:21], rtol=1e-9)


def test_ets_is_fitted_once_and_filtered_without_refit() -> None:
    pytest.importorskip("statsmodels")
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(size=120)) + 50
    a = fit(y, 80, 100).forecasts["ets"]
    spoiled = y.copy()
    spoiled[100:] += 100.0  # a test part that changed cannot change the fit, only the filtered states after it
    b = fit(spoiled, 80, 100).forecasts["ets"]
    np.testing.assert_allclose(a[:101], b[:101], rtol=1e-9)
    assert np.isfinite(a[1:]).all()


def test_multi_step_paths_by_hand() -> None:
    from harness.series.baselines import paths

    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0, 22.0, 29.0])
    fitted = fit(y, 4, 6, season=2)
    p = paths(y, fitted, 4, 2, np.array([5]), 3)  # from y[5] = 16: forecasts of y[6], y[7], y[8]
    assert p["naive"].tolist() == [[16, 16, 16]]
    assert p["seasonal-naive"].tolist() == [[11, 16, 11]]  # y[4], y[5], y[4]: the same phase a season back
    assert p["drift"].tolist() == [[18, 20, 22]]  # slope 2 from the training part
    assert p["mean"].tolist() == [[3.5, 3.5, 3.5]]
    if "ets" in p:  # its first step is the one-step forecast the filter gave at that origin
        assert p["ets"][0, 0] == pytest.approx(fitted.forecasts["ets"][6])


def test_ar_paths_iterate_on_their_own_forecasts() -> None:
    from harness.series.baselines import paths

    t = np.arange(60.0)
    y = t * (t + 1) / 2 + 1
    fitted = fit(y, 40, 50)
    p = paths(y, fitted, 40, 1, np.array([49, 52]), 5)["linear-ar"]
    np.testing.assert_allclose(p, np.stack([y[50:55], y[53:58]]), rtol=1e-8)
