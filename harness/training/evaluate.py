"""Metrics and reference predictors.

One-step-ahead MSE on each split, the free-running rollout across the test region, and the
references every table is read against: persistence, the train mean, and a linear
autoregression fit by least squares (which predicts a noiseless sinusoid exactly, since
y[t+1] = 2 cos(w) y[t] - y[t-1]).
"""

from __future__ import annotations

import numpy as np
import torch

from harness.series.data import Splits, Windows, window_arrays
from harness.training import rollout_kernels
from harness.training.models import RecurrentRegressor

HORIZON_TOLERANCE = 0.1
_CHUNK = 1024  # windows per forward call in window-protocol inference; bounds memory


@torch.no_grad()
def predict(model: RecurrentRegressor, data: Windows, protocol: str, part: slice) -> torch.Tensor:
    """One-step-ahead predictions for the windows in `part`.

    `seed`: the state is carried from the first window on, so predicting a late split
    means running the whole series up to it (one call of the recurrent layer).
    `window`: each window is its own sequence of W scalars with a zero state.
    """
    model.eval()
    if protocol == "seed":
        out, _ = model(data.x[: part.stop].unsqueeze(0))
        return out.view(-1)[part]
    x = data.x[part]
    preds = [model(x[i : i + _CHUNK].unsqueeze(-1))[0][:, -1, 0] for i in range(0, len(x), _CHUNK)]
    return torch.cat(preds) if preds else x.new_empty(0)


@torch.no_grad()
def predict_zero_state(model: RecurrentRegressor, data: Windows) -> torch.Tensor:
    """The notebook's plotting evaluation of a `seed` model: every window is fed as one
    step from a fresh zero state, although training carried the state along."""
    model.eval()
    out, _ = model(data.x.unsqueeze(1))
    return out.view(-1)


@torch.no_grad()
def rollout(model: RecurrentRegressor, data: Windows, protocol: str) -> torch.Tensor:
    """Free-running predictions across the test region: from the last W true values before
    the first test target, the model is fed its own predictions."""
    model.eval()
    splits = data.splits
    start, steps, w = int(splits.test.start), splits.n - int(splits.test.start), splits.window
    if protocol == "window" and rollout_kernels.applies(model, data.x.device):
        return rollout_kernels.rollout(model, data.x[start], steps)  # the same steps in one compiled loop
    buffer = torch.empty(w + steps, device=data.x.device, dtype=data.x.dtype)
    buffer[:w] = data.x[start]
    state = None
    if protocol == "seed" and start > 0:
        _, state = model(data.x[:start].unsqueeze(0))
    for k in range(steps):
        window = buffer[k : k + w]
        if protocol == "seed":
            out, state = model(window.view(1, 1, w), state)
        else:
            out, _ = model(window.view(1, w, 1))
        buffer[w + k] = out[0, -1, 0]
    return buffer[w:]


def mse(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    if len(pred) == 0:
        return float("nan")
    if isinstance(pred, torch.Tensor):
        return float(torch.mean((pred.double() - torch.as_tensor(target).double()) ** 2))
    return float(np.mean((np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)) ** 2))


def horizon(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, tol: float = HORIZON_TOLERANCE) -> int:
    """Free-running steps before the absolute error first exceeds `tol`."""
    err = np.abs(np.asarray(torch.as_tensor(pred).cpu(), dtype=np.float64) - np.asarray(torch.as_tensor(target).cpu()))
    bad = np.flatnonzero(~(err <= tol))  # NaN counts as a miss
    return int(bad[0]) if len(bad) else len(err)


def references(y: np.ndarray, splits: Splits) -> dict[str, dict[str, float]]:
    """val and test MSE of persistence, the train mean, and least-squares linear AR(W)."""
    x, target = window_arrays(np.asarray(y, dtype=np.float64), splits.window)
    design = np.hstack([x, np.ones((len(x), 1))])
    coef, *_ = np.linalg.lstsq(design[splits.train], target[splits.train], rcond=None)
    preds = {
        "persistence": x[:, -1],
        "mean": np.full(len(target), target[splits.train].mean()),
        "linear-ar": design @ coef,
    }
    return {
        name: {"val_mse": mse(p[splits.val], target[splits.val]), "test_mse": mse(p[splits.test], target[splits.test])}
        for name, p in preds.items()
    }


@torch.no_grad()
def rollout_paths(
    model: RecurrentRegressor, series: torch.Tensor, origins: np.ndarray, window: int, steps: int
) -> torch.Tensor:
    """Window protocol, from many origins at once: for each origin o (an index of `series`),
    the model starts from the true window series[o-W+1..o] and is fed its own predictions for
    `steps` steps. Returns (len(origins), steps): the forecasts of series[o+1..o+steps]."""
    model.eval()
    device = series.device
    idx = torch.as_tensor(np.asarray(origins), device=device)[:, None] + torch.arange(1 - window, 1, device=device)
    buffer = series[idx]
    out = []
    for _ in range(steps):
        following = model(buffer.unsqueeze(-1))[0][:, -1, 0]
        out.append(following)
        buffer = torch.cat([buffer[:, 1:], following[:, None]], dim=1)
    return torch.stack(out, dim=1)
