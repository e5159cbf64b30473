"""Forecasting's baselines scored on a real series' own validation and test targets.

The targets are the cells': the model's series (after the transform) is split at
`round(train_frac * L)` and `round((train_frac + val_frac) * L)` as `data.split_indices` does,
and each model index j stands for the original time j + lag. The baselines are fitted on the
original values before the first validation target and forecast one step ahead
(`baselines.fit`); every score is in the original units or scale-free (`metrics.scores`, scaled
by the in-sample seasonal-naive error of the same training part).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.series import baselines, metrics
from harness.series.data import TRAIN_FRAC, VAL_FRAC
from harness.series.signals import SignalConfig, prepared

SCORE_COLUMNS = [f"{part}_{'mse_units' if m == 'mse' else m}" for part in ("val", "test") for m in metrics.METRICS]


def _bounds(signal: SignalConfig, train_frac: float, val_frac: float) -> tuple[int, int]:
    """The first validation and the first test target, as original times."""
    p = prepared(signal, train_frac)
    length = len(p.model)
    return round(train_frac * length) + p.lag, round((train_frac + val_frac) * length) + p.lag


@functools.lru_cache(maxsize=8)
def fitted_baselines(
    signal: SignalConfig, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC
) -> baselines.Baselines:
    """The baselines of a series, fitted once per process (the ETS fit takes seconds)."""
    p = prepared(signal, train_frac)
    train_end, val_end = _bounds(signal, train_frac, val_frac)
    return baselines.fit(p.values, train_end, val_end, signal.season)


def baseline_scores(signal: SignalConfig, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC) -> pd.DataFrame:
    """One row per baseline: `baseline`, `model` (what it is, e.g. "linear AR(4)") and
    SCORE_COLUMNS (`val_mae` ... `test_rmsse`); `best` marks the baseline with the lowest
    validation MASE (the test part selects nothing)."""
    p = prepared(signal, train_frac)
    train_end, val_end = _bounds(signal, train_frac, val_frac)
    fitted = fitted_baselines(signal, train_frac, val_frac)
    parts = {"val": np.arange(train_end, val_end), "test": np.arange(val_end, len(p.values))}
    rows = []
    for name, forecast in fitted.forecasts.items():
        row: dict[str, object] = {"baseline": name, "model": fitted.labels[name]}
        for part, times in parts.items():
            scores = metrics.scores(forecast[times], p.values[times], p.train_values, signal.season)
            row |= {f"{part}_{'mse_units' if k == 'mse' else k}": v for k, v in scores.items()}
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["best"] = frame["val_mase"] == frame["val_mase"].min()
    return frame


@dataclass(frozen=True)
class Origins:
    """Rolling forecast origins over the test part: each origin o knows the values up to o and
    is scored on y[o+1..o+steps], all of them test targets (steps: the series' horizon, or the
    test part's length where that is shorter)."""

    times: np.ndarray  # original time of each origin
    model_times: np.ndarray  # the same origins as indices of the model's series
    steps: int


def origins(signal: SignalConfig, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC) -> Origins:
    p = prepared(signal, train_frac)
    first = _bounds(signal, train_frac, val_frac)[1] - 1  # the last value before the first test target
    steps = min(signal.horizon, len(p.values) - 1 - first)  # a test part shorter than H caps it
    times = np.arange(first, len(p.values) - steps)
    return Origins(times, times - p.lag, steps)


def horizon_scores(
    signal: SignalConfig, forecasts: np.ndarray, at: Origins, train_frac: float = TRAIN_FRAC
) -> pd.DataFrame:
    """Error at each step ahead h = 1..H of forecasts (n_origins, H) in original units:
    `h`, `mae`, `rmse`, `mase`, `rmsse` (scaled as `metrics.scores`), over the origins."""
    p = prepared(signal, train_frac)
    truth = p.values[at.times[:, None] + np.arange(1, at.steps + 1)[None, :]]
    rows = [{"h": h + 1, **metrics.scores(forecasts[:, h], truth[:, h], p.train_values, signal.season)}
            for h in range(at.steps)]  # fmt: skip
    return pd.DataFrame(rows).drop(columns="mse")


def baseline_horizon(signal: SignalConfig, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC) -> pd.DataFrame:
    """Every baseline's error by horizon from the rolling origins (`origins`): one row per
    baseline and h, with `baseline` and `model` (what it is)."""
    p = prepared(signal, train_frac)
    at = origins(signal, train_frac, val_frac)
    fitted = fitted_baselines(signal, train_frac, val_frac)
    forecasts = baselines.paths(p.values, fitted, _bounds(signal, train_frac, val_frac)[0], signal.season,
                                at.times, at.steps)  # fmt: skip
    frames = [horizon_scores(signal, f, at, train_frac).assign(baseline=name, model=fitted.labels[name])
              for name, f in forecasts.items()]  # fmt: skip
    return pd.concat(frames, ignore_index=True)
