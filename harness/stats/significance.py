"""When a p-value states a difference, and when that statement is fragile: the threshold the
findings in words use (replicates, baselines, ranks across a collection)."""

from __future__ import annotations

import math

ALPHA = 0.05  # below this p-value a difference is stated as one
FRAGILE = 3.0  # a p-value within this factor of ALPHA (0.017 to 0.15) can fall either side of it


def fragile(p: float) -> bool:
    """Near the threshold: a verdict that a few more seeds, or float rounding in another order
    (another CPU or torch build), can flip."""
    return math.isfinite(p) and ALPHA / FRAGILE <= p < ALPHA * FRAGILE
