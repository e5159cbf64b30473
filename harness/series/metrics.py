"""Forecast errors in the series' own units, and the scale-free MASE and RMSSE.

For forecasts f_t of targets y_t (t in the scored part, n of them) and the training part
y_1..y_T with season m (m = 1 where there is none, which makes seasonal naive plain naive):

    MAE   = mean |y_t - f_t|                 MSE = mean (y_t - f_t)^2      RMSE = sqrt(MSE)
    MASE  = MAE  / [ 1/(T-m) * sum_{t=m+1..T} |y_t - y_{t-m}| ]
    RMSSE = RMSE / sqrt( 1/(T-m) * sum_{t=m+1..T} (y_t - y_{t-m})^2 )

as in the M4 (MASE) and M5 (RMSSE) competitions: the denominators are the in-sample errors of
the seasonal-naive forecast on the training part only, so a value below 1 beats what seasonal
naive did in sample, and the numbers compare across series of any scale.
"""

from __future__ import annotations

import numpy as np

METRICS = ("mae", "rmse", "mse", "mase", "rmsse")


def _errors(forecast: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.asarray(target, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)


def mae(forecast: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(_errors(forecast, target))))


def mse(forecast: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(_errors(forecast, target) ** 2))


def rmse(forecast: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(mse(forecast, target)))


def naive_scales(train: np.ndarray, season: int = 1) -> tuple[float, float]:
    """(MAE, RMSE) of the in-sample seasonal-naive forecast y_{t-m} on the training part."""
    train = np.asarray(train, dtype=np.float64)
    m = max(int(season), 1)
    if len(train) <= m:
        raise ValueError(f"a training part of {len(train)} values is too short for season {m}")
    d = train[m:] - train[:-m]
    return float(np.mean(np.abs(d))), float(np.sqrt(np.mean(d**2)))


def scores(forecast: np.ndarray, target: np.ndarray, train: np.ndarray, season: int = 1) -> dict[str, float]:
    """Every metric in METRICS for one forecast of one part."""
    scale_mae, scale_rmse = naive_scales(train, season)
    out = {"mae": mae(forecast, target), "rmse": rmse(forecast, target), "mse": mse(forecast, target)}
    out["mase"] = out["mae"] / scale_mae if scale_mae > 0 else float("nan")
    out["rmsse"] = out["rmse"] / scale_rmse if scale_rmse > 0 else float("nan")
    return out
