"""Forecasting's baselines (Hyndman & Athanasopoulos, FPP3 ch. 5), fitted on the training part
only and forecast one step ahead at every later time, so they are scored on the same
validation and test targets as the cells.

With the training part y[0..T) and season m, the forecast of y[t] from the values before it:

    naive           y[t-1]
    seasonal-naive  y[t-m]                       (only when there is a season, m >= 2)
    drift           y[t-1] + (y[T-1] - y[0]) / (T-1)
    mean            mean(y[0..T))
    linear-ar       c + a_1 y[t-1] + ... + a_p y[t-p], least squares on the training targets,
                    p chosen by validation MSE (the test part never selects anything)
    ets             statsmodels' state-space exponential smoothing (additive damped trend, and
                    an additive season when 2 <= m <= 24), fitted on the training part once and
                    run over the rest with its parameters fixed (`results.apply`, no refit)

Everything is in the series' original units.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

BASELINES = ("naive", "seasonal-naive", "drift", "mean", "linear-ar", "ets")
MAX_AR_ORDER = 60
MAX_ETS_SEASON = 24  # a state-space season of 52 weeks is slow to fit and rarely stable


@dataclass(frozen=True)
class Baselines:
    """One-step forecasts of every value (NaN where a baseline has no forecast), and what each is."""

    forecasts: dict[str, np.ndarray]
    labels: dict[str, str]


def fit(values: np.ndarray, train_end: int, val_end: int, season: int = 1) -> Baselines:
    y = np.asarray(values, dtype=np.float64)
    n, t_end, m = len(y), int(train_end), int(season)
    previous = np.concatenate([[np.nan], y[:-1]])
    out: dict[str, np.ndarray] = {"naive": previous}
    labels = {"naive": "naive (last value)"}
    if m >= 2:
        out["seasonal-naive"] = np.concatenate([np.full(m, np.nan), y[:-m]])
        labels["seasonal-naive"] = f"seasonal naive (m = {m})"
    out["drift"] = previous + (y[t_end - 1] - y[0]) / (t_end - 1)
    labels["drift"] = "drift"
    out["mean"] = np.full(n, y[:t_end].mean())
    labels["mean"] = "training mean"
    order, out["linear-ar"] = _best_ar(y, t_end, val_end, m)
    labels["linear-ar"] = f"linear AR({order})"
    ets = _ets(y, t_end, m)
    if ets is not None:
        out["ets"], labels["ets"] = ets
    return Baselines(out, labels)


def ar_forecasts(y: np.ndarray, train_end: int, order: int) -> np.ndarray:
    """Least-squares AR(order) with an intercept, fitted on targets order..train_end-1."""
    p = order
    lags = np.column_stack([y[p - i : len(y) - i] for i in range(1, p + 1)] + [np.ones(len(y) - p)])
    coef, *_ = np.linalg.lstsq(lags[: train_end - p], y[p:train_end], rcond=None)
    return np.concatenate([np.full(p, np.nan), lags @ coef])


def _best_ar(y: np.ndarray, train_end: int, val_end: int, season: int) -> tuple[int, np.ndarray]:
    top = min(max(2 * season, 12), (train_end - 1) // 3, MAX_AR_ORDER)
    best: tuple[float, int, np.ndarray] | None = None
    for p in range(1, max(top, 1) + 1):
        f = ar_forecasts(y, train_end, p)
        err = float(np.mean((f[train_end:val_end] - y[train_end:val_end]) ** 2)) if val_end > train_end else 0.0
        if best is None or err < best[0]:
            best = (err, p, f)
    assert best is not None
    return best[1], best[2]


def _ets(y: np.ndarray, train_end: int, season: int) -> tuple[np.ndarray, str] | None:
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    seasonal = season if 2 <= season <= MAX_ETS_SEASON and train_end >= 3 * season else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the fit is scored, not trusted
        try:
            model = ExponentialSmoothing(y[:train_end], trend=True, damped_trend=True, seasonal=seasonal)
            fitted = model.fit(disp=False)
            forecasts = np.asarray(fitted.apply(y).predict(), dtype=np.float64)
        except (ValueError, np.linalg.LinAlgError):
            return None
    return forecasts, f"ETS(A,Ad,{'A' if seasonal else 'N'}) from statsmodels"
