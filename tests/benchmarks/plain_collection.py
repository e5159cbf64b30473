"""What a user would write instead of the harness's local scope: one model per series, trained
one after another with torch's own layers and Adam, on the same windows, minibatches and
protocol (`harness.training.collection`), keeping each model's best validation epoch.

It shares the harness's data preparation and scoring (so the two compute the same thing) but
none of its training: `torch.nn.GRU`/`LSTM`/`RNN` and `torch.optim.Adam`, one series at a time.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from harness.series.collections import CompetitionSeries
from harness.training.collection import CollectionRunConfig, prepare
from harness.training.device import dtype_for
from harness.training.models import RecurrentRegressor


def _forecast(model: RecurrentRegressor, history: np.ndarray, scale: float, h: int, window: int) -> np.ndarray:
    values = list(np.concatenate([np.full(window, history[0]), history])[-window:])
    weight = next(model.parameters())
    out = []
    with torch.no_grad():
        for _ in range(h):
            last = values[-1]
            x = torch.tensor([(v - last) / scale for v in values[-window:]], dtype=weight.dtype, device=weight.device)
            x = x.view(1, -1, 1)
            pred, _ = model(x)
            out.append(last + float(pred[0, -1, 0]) * scale)
            values.append(out[-1])
    return np.array(out)


def _smape(forecast: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(200 * np.abs(truth - forecast) / (np.abs(truth) + np.abs(forecast))))


def train_one(series: CompetitionSeries, config: CollectionRunConfig, device: str = "cpu") -> np.ndarray:
    """One series' model, trained alone; its test forecast from its best validation epoch."""
    dtype = dtype_for(config.precision)
    data = prepare([series], config.window, torch.device(device), dtype)
    n = int(data.count[0])
    x, y, scale = data.x[0, :n].unsqueeze(-1), data.y[0, :n], float(data.scale[0])
    torch.manual_seed(config.seed)
    model = RecurrentRegressor(config.cell, 1, config.hidden_size, fused=False).to(device, dtype)
    optimizer = torch.optim.Adam(model.parameters(), config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    fit, val = series.validation_split()
    best, best_state = np.inf, copy.deepcopy(model.state_dict())
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            optimizer.zero_grad()
            out, _ = model(x[idx])
            loss = torch.mean((out[:, -1, 0] - y[idx]) ** 2)
            loss.backward()
            optimizer.step()
        score = _smape(_forecast(model, fit, scale, series.h, config.window), val)
        if score < best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return _forecast(model, series.x, scale, series.h, config.window)


def train_all(series: list[CompetitionSeries], config: CollectionRunConfig, device: str = "cpu") -> np.ndarray:
    """[S, h] test forecasts, the series trained one after another."""
    return np.stack([train_one(s, config, device) for s in series])
