"""Accuracy as the forecasting competitions define it: sMAPE, MASE and OWA.

For forecasts f_1..f_h of a series' test values y_1..y_h, its training part x_1..x_T and
season m (1 where there is none):

    sMAPE = 200/h * sum_t |y_t - f_t| / (|y_t| + |f_t|)                   (M3's, in percent)
    MASE  = (1/h * sum_t |y_t - f_t|) / (1/(T-m) * sum_{t>m} |x_t - x_{t-m}|)
                                         (Hyndman & Koehler 2006; M4's, seasonal-naive scaling)
    OWA   = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2                (M4's)
    MAPE  = 100/h * sum_t |y_t - f_t| / |y_t|                       (Tourism's, with MASE)

as M4's evaluation code computes them (`smape_cal`, `mase_cal` in `Benchmarks and
Evaluation.R`). A category's sMAPE and MASE are the means over its series (each series
weighs the same, as in M3's and M4's tables), and its OWA is taken from those means, not as
a mean of per-series OWAs: M4 ranks methods that way. A term 0/0 of sMAPE (a zero forecast of
a zero value) counts as 0, a perfect forecast.
"""

from __future__ import annotations

import numpy as np

from harness.series.metrics import naive_scales


def smape(forecast: np.ndarray, target: np.ndarray) -> float:
    """M3's symmetric MAPE, in percent (0 to 200)."""
    return float(smape_rows(np.atleast_2d(forecast), np.atleast_2d(target))[0])


def smape_rows(forecast: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`smape` of each row: series of one horizon at once."""
    f, y = np.asarray(forecast, dtype=np.float64), np.asarray(target, dtype=np.float64)
    num, den = 200 * np.abs(y - f), np.abs(y) + np.abs(f)
    return np.mean(np.divide(num, den, out=np.zeros_like(num), where=den != 0), axis=1)  # NaN stays NaN


def mase(forecast: np.ndarray, target: np.ndarray, train: np.ndarray, period: int = 1) -> float:
    """Test MAE over the in-sample MAE of seasonal naive (naive for period 1); NaN where the
    training part is constant at that lag (nothing to scale by)."""
    f, y = np.asarray(forecast, dtype=np.float64), np.asarray(target, dtype=np.float64)
    scale = naive_scales(train, period)[0]
    return float(np.mean(np.abs(y - f)) / scale) if scale > 0 else float("nan")


def mape(forecast: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute percentage error, in percent: Tourism's published measure beside MASE."""
    y = np.asarray(target, dtype=np.float64)
    return float(np.mean(100 * np.abs(y - np.asarray(forecast, dtype=np.float64)) / np.abs(y)))


def owa(
    smape_: float | np.ndarray, mase_: float | np.ndarray, smape_naive2: float | np.ndarray,
    mase_naive2: float | np.ndarray,
) -> float | np.ndarray:  # fmt: skip
    """M4's overall weighted average relative to Naive2: below 1 beats Naive2 (1 is Naive2)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * (np.divide(smape_, smape_naive2) + np.divide(mase_, mase_naive2))
