"""The seed notebook's model classes and per-step training loop, ported as they are.

Used by the exact-reproduction test and the speed benchmark: the harness's single-call
`seed` protocol must give the same summed losses as this loop. Only changes: the device is
the CPU, `num_layers` (undefined in the notebook's LSTM cell) is 1, and a GRU class is
built the same way as the third cell.

The loop's losses for every notebook run are recorded in `data/notebook_losses.json`
(`python tests/regenerate_notebook_losses.py`); `reference_losses` reads them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

device = torch.device("cpu")
num_layers = 1


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size):  # type: ignore[no-untyped-def]
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.RNN(input_size, hidden_size, 1, bias=True, batch_first=True, nonlinearity="tanh", dropout=0)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, inputs, states):  # type: ignore[no-untyped-def]
        out, states = self.rnn(inputs, states)
        out = self.fc(out)
        return out, states

    def state(self):  # type: ignore[no-untyped-def]
        return torch.zeros(1, 1, self.hidden_size).to(device)


class LSTM(nn.Module):
    def __init__(self, input_size, hidden_size):  # type: ignore[no-untyped-def]
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=0)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, inputs, states):  # type: ignore[no-untyped-def]
        out, states = self.lstm(inputs, states)
        out = self.fc(out)
        return out, states

    def state(self):  # type: ignore[no-untyped-def]
        return torch.zeros(1, 1, self.hidden_size).to(device), torch.zeros(1, 1, self.hidden_size).to(device)


class GRU(nn.Module):
    def __init__(self, input_size, hidden_size):  # type: ignore[no-untyped-def]
        super().__init__()
        self.hidden_size = hidden_size
        self.gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=0)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, inputs, states):  # type: ignore[no-untyped-def]
        out, states = self.gru(inputs, states)
        out = self.fc(out)
        return out, states

    def state(self):  # type: ignore[no-untyped-def]
        return torch.zeros(1, 1, self.hidden_size).to(device)


CLASSES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def notebook_losses(
    cell: str,
    y_: np.ndarray,
    input_size: int,
    hidden_size: int = 30,
    lr: float = 0.01,
    epochs: int = 33,
    seed: int = 42,
) -> list[float]:
    """The notebook's training cell, returning the summed loss of every epoch."""
    size = len(y_)
    x_ = np.arange(size)
    train_x = np.empty((size - input_size, input_size))
    train_y = np.empty((size - input_size, 1))
    for x in x_[:-input_size]:
        train_x[x] = y_[x : x + input_size]
        train_y[x] = y_[x + input_size]

    torch.manual_seed(seed)
    model = CLASSES[cell](input_size, hidden_size).to(device)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        model.train()
        optimizer.zero_grad()
        state = model.state()
        loss = 0
        for train, label in zip(train_x, train_y):
            train = torch.Tensor(train).view(1, 1, input_size).to(device)
            label = torch.Tensor(label).to(device)
            out, state = model(train, state)
            loss += criterion(out.squeeze(), label.squeeze())
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
        losses.append(loss.item())  # type: ignore[union-attr]
    return losses


REFERENCE_PATH = Path(__file__).parent / "data" / "notebook_losses.json"


@cache
def reference() -> dict[str, Any]:
    """The recorded file: `metadata` (settings, torch version, date, command) and `runs`."""
    data: dict[str, Any] = json.loads(REFERENCE_PATH.read_text())
    return data


def reference_losses(cell: str, signal: str, window: int) -> list[float]:
    """The loop's recorded summed loss per epoch (33 epochs, the notebook's settings)."""
    (row,) = [r for r in reference()["runs"] if (r["cell"], r["signal"], r["window"]) == (cell, signal, window)]
    return list(row["summed_loss_by_epoch"])
