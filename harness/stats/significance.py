"""When a p-value states a difference, and when that statement is fragile: one threshold for
every verdict the harness writes (replicates, baselines, ranks across a collection)."""

from __future__ import annotations

import math

ALPHA = 0.05  # below this p-value a difference is stated as one
FRAGILE = 3.0  # a p-value within this factor of ALPHA (0.017 to 0.15) could fall either side on another machine


def fragile(p: float) -> bool:
    """Near the threshold: a verdict another CPU's float rounding, or a few more seeds, could flip
    (measured: one LSTM finding went from p = 0.036 to 0.077 on another CPU)."""
    return math.isfinite(p) and ALPHA / FRAGILE <= p < ALPHA * FRAGILE
