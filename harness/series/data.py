"""Windows of past values, chronological splits, and the tensors built once on the device.

Sample i is the window y[i..i+W) with target y[i+W]. Splits are by target time, not by
sample count: targets before `train_frac * N` train, the next `val_frac * N` validate, the
rest test. Fixing the boundaries in time means every window length is validated and tested
on the same targets, so trials with different windows are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.constraints import Integer, Real, check

# The splits every trial shares (targets before 70% of the series train, the next 15%
# validate); `RunConfig` takes its defaults from here.
TRAIN_FRAC = 0.7
VAL_FRAC = 0.15


@dataclass(frozen=True)
class Splits:
    """Sample-index ranges of the three splits for one window length."""

    window: int
    n: int
    train: slice
    val: slice
    test: slice

    @property
    def test_start_time(self) -> int:
        """Time index of the first test target."""
        return int(self.test.start) + self.window


def split_indices(length: int, window: int, train_frac: float = TRAIN_FRAC, val_frac: float = VAL_FRAC) -> Splits:
    # Rules that depend on other values, so built here, then judged by the one checker.
    check("train_frac", train_frac, Real(0, 1, low_open=True))
    check("val_frac", val_frac, Real(0, 1 - train_frac))
    train_end = round(train_frac * length)
    val_end = round((train_frac + val_frac) * length)
    check("window", window, window_rule(length, train_frac))
    n = length - window
    return Splits(
        window=window,
        n=n,
        train=slice(0, train_end - window),
        val=slice(train_end - window, val_end - window),
        test=slice(val_end - window, n),
    )


def window_rule(length: int, train_frac: float = TRAIN_FRAC) -> Integer:
    """A window must leave at least one training target before the validation split."""
    return Integer(1, round(train_frac * length) - 1)


def window_arrays(y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, W) windows and (n,) next-value targets, as views where numpy allows."""
    x = np.lib.stride_tricks.sliding_window_view(y[:-1], window)
    return x, y[window:]


@dataclass(frozen=True)
class Windows:
    """All windows of one series on one device (float32, as the notebook's torch.Tensor, unless fp64)."""

    x: torch.Tensor  # (n, W)
    y: torch.Tensor  # (n,)
    series: torch.Tensor  # (N,)
    splits: Splits


def make_windows(
    y: np.ndarray,
    window: int,
    device: torch.device | str = "cpu",
    train_frac: float = TRAIN_FRAC,
    val_frac: float = VAL_FRAC,
    dtype: torch.dtype = torch.float32,
) -> Windows:
    splits = split_indices(len(y), window, train_frac, val_frac)
    x_np, y_np = window_arrays(y, window)
    series = torch.as_tensor(y, dtype=dtype).to(device)
    return Windows(
        x=torch.as_tensor(np.ascontiguousarray(x_np), dtype=dtype).to(device),
        y=series[window:],
        series=series,
        splits=splits,
    )
