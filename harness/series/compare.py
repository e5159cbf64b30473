"""Forecasting's baselines scored on a real series' own validation and test targets.

The targets are the cells': the model's series (after the transform) is split at
`round(train_frac * L)` and `round((train_frac + val_frac) * L)` as `data.split_indices` does,
and each model index j stands for the original time j + lag. The baselines are fitted on the
original values before the first validation target and forecast one step ahead
(`baselines.fit`); every score is in the original units or scale-free (`metrics.scores`, scaled
by the in-sample seasonal-naive error of the same training part).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.series import baselines, metrics
from harness.series.data import TRAIN_FRAC, VAL_FRAC
from harness.series.signals import SignalConfig, prepared

SCORE_COLUMNS = [f"{part}_{'mse_units' if m == 'mse' else m}" for part in ("val", "test") for m in metrics.METRICS]


def baseline_scores(signal: SignalConfig, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC) -> pd.DataFrame:
    """One row per baseline: `baseline`, `model` (what it is, e.g. "linear AR(4)") and
    SCORE_COLUMNS (`val_mae` ... `test_rmsse`); `best` marks the baseline with the lowest
    validation MASE (the test part selects nothing)."""
    p = prepared(signal, train_frac)
    length = len(p.model)
    train_end, val_end = round(train_frac * length) + p.lag, round((train_frac + val_frac) * length) + p.lag
    fitted = baselines.fit(p.values, train_end, val_end, signal.season)
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
