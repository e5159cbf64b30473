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
from typing import Any

import numpy as np

BASELINES = ("naive", "seasonal-naive", "drift", "mean", "linear-ar", "ets")
MAX_AR_ORDER = 60
MAX_ETS_SEASON = 24  # a state-space season of 52 weeks is slow to fit and rarely stable


@dataclass(frozen=True)
class Baselines:
    """One-step forecasts of every value (NaN where a baseline has no forecast), and what each is."""

    forecasts: dict[str, np.ndarray]
    labels: dict[str, str]
    ar_order: int = 1  # the AR order chosen on validation
    ets: Any = None  # statsmodels' ETS results, parameters fixed, applied to the whole series


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
    ets = _ets_results(y, t_end, m)
    if ets is not None:
        out["ets"], labels["ets"] = np.asarray(ets[0].predict(), dtype=np.float64), ets[1]
    return Baselines(out, labels, order, ets[0] if ets is not None else None)


def _lags(y: np.ndarray, p: int) -> np.ndarray:
    return np.column_stack([y[p - i : len(y) - i] for i in range(1, p + 1)] + [np.ones(len(y) - p)])


def ar_coef(y: np.ndarray, train_end: int, order: int) -> np.ndarray:
    """Least-squares AR(order) coefficients (lag 1 first, then the intercept), fitted on
    targets order..train_end-1."""
    coef, *_ = np.linalg.lstsq(_lags(y, order)[: train_end - order], y[order:train_end], rcond=None)
    return np.asarray(coef)


def ar_forecasts(y: np.ndarray, train_end: int, order: int) -> np.ndarray:
    """One-step forecasts of least-squares AR(order) with an intercept, fitted on the training part."""
    return np.concatenate([np.full(order, np.nan), _lags(y, order) @ ar_coef(y, train_end, order)])


def paths(
    values: np.ndarray, fitted: Baselines, train_end: int, season: int, origins: np.ndarray, steps: int
) -> dict[str, np.ndarray]:
    """Multi-step forecasts (len(origins), steps) of y[o+1..o+steps] from each origin o, each
    baseline knowing only y[..o] and fitted on the training part by `fit` (the AR iterates on
    its own forecasts; ETS forecasts from its filtered state at o, no refit)."""
    y = np.asarray(values, dtype=np.float64)
    o = np.asarray(origins)
    h = np.arange(1, steps + 1)
    last = y[o][:, None]
    out = {"naive": np.repeat(last, steps, axis=1)}
    if season >= 2:
        back = h - season * np.ceil(h / season).astype(int)  # the same phase, a whole season back
        out["seasonal-naive"] = y[o[:, None] + back[None, :]]
    out["drift"] = last + h[None, :] * (y[train_end - 1] - y[0]) / (train_end - 1)
    out["mean"] = np.full((len(o), steps), y[:train_end].mean())
    order = fitted.ar_order
    coef = ar_coef(y, train_end, order)
    history = np.stack([y[k - order + 1 : k + 1][::-1] for k in o])  # latest first
    ar = np.empty((len(o), steps))
    for step in range(steps):
        ar[:, step] = history @ coef[:-1] + coef[-1]
        history = np.concatenate([ar[:, step : step + 1], history[:, :-1]], axis=1)
    out["linear-ar"] = ar
    if fitted.ets is not None:
        out["ets"] = _state_space_paths(fitted.ets, o, steps)
    return out


def _state_space_paths(results: Any, origins: np.ndarray, steps: int) -> np.ndarray:
    """h-step forecasts of a time-invariant state-space model from its predicted states: the
    state at o+1 given y[..o] is `predicted_state[:, o+1]`, then a <- T a + c and y = Z a + d
    (what `results.predict(start=o+1, end=o+steps, dynamic=True)` gives, for all origins at once)."""

    def matrix(name: str) -> np.ndarray:
        m = np.asarray(results.model[name], dtype=np.float64)
        return m[..., 0] if m.ndim == 3 else m

    z, t = matrix("design"), matrix("transition")
    d, c = np.ravel(matrix("obs_intercept"))[0], np.ravel(matrix("state_intercept"))[:, None]
    state = np.asarray(results.predicted_state, dtype=np.float64)[:, np.asarray(origins) + 1]
    out = np.empty((len(origins), steps))
    for step in range(steps):
        out[:, step] = (z @ state).ravel() + d
        state = t @ state + c
    return out


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


def _ets_results(y: np.ndarray, train_end: int, season: int) -> tuple[Any, str] | None:
    """The ETS model fitted on the training part, applied (parameters fixed) to the whole series."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    seasonal = season if 2 <= season <= MAX_ETS_SEASON and train_end >= 3 * season else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the fit is scored, not trusted
        try:
            model = ExponentialSmoothing(y[:train_end], trend=True, damped_trend=True, seasonal=seasonal)
            applied = model.fit(disp=False).apply(y)
        except (ValueError, np.linalg.LinAlgError):
            return None
    return applied, f"ETS(A,Ad,{'A' if seasonal else 'N'}) from statsmodels"
