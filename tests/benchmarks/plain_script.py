"""The peer the harness is measured against: the plain Optuna + PyTorch script a user would
write instead of using it. Windows cut with numpy, a shuffled DataLoader, `nn.RNN`/`nn.LSTM`/
`nn.GRU` with a linear head, Adam, per-epoch validation reported to the pruner, the best
validation MSE as the value, `study.optimize` on a SQLite storage. Same splits as the harness
(targets before 70% train, the next 15% validate), same batch size and epochs, so the two
differ only in how they train and record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def windows(y: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.lib.stride_tricks.sliding_window_view(y[:-1], w)
    return x.astype(np.float32), y[w:].astype(np.float32)


class Net(nn.Module):
    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))
        return self.head(out[:, -1]).squeeze(-1)


def objective(trial: optuna.Trial, y: np.ndarray, space: dict[str, Any], epochs: int, batch_size: int = 64) -> float:
    cell = trial.suggest_categorical("cell", space["cell"])
    hidden = trial.suggest_int("hidden_size", *space["hidden_size"], log=True)
    w = trial.suggest_int("window", *space["window"])
    lr = trial.suggest_float("lr", *space["lr"], log=True)
    torch.manual_seed(trial.number)
    x, t = windows(y, w)
    train_end, val_end = round(0.7 * len(y)) - w, round(0.85 * len(y)) - w  # by target time, as the harness
    train = DataLoader(TensorDataset(torch.from_numpy(x[:train_end]), torch.from_numpy(t[:train_end])),
                       batch_size=batch_size, shuffle=True)  # fmt: skip
    xv, tv = torch.from_numpy(x[train_end:val_end]), torch.from_numpy(t[train_end:val_end])
    model = Net(cell, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    best = float("inf")
    for epoch in range(epochs):
        model.train()
        for xb, tb in train:
            opt.zero_grad()
            loss = loss_fn(model(xb), tb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = loss_fn(model(xv), tv).item()
        best = min(best, val)
        trial.report(val, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return best


def run_study(storage: str, name: str, y: np.ndarray, space: dict[str, Any], configs: list[dict[str, Any]],
              epochs: int) -> optuna.Study:  # fmt: skip
    """The same enqueued configurations, one after another, no pruner."""
    study = optuna.create_study(study_name=name, storage=storage, pruner=optuna.pruners.NopPruner())
    for params in configs:
        study.enqueue_trial(params)
    study.optimize(lambda trial: objective(trial, y, space, epochs), n_trials=len(configs))
    return study


if __name__ == "__main__":
    # Run as its own interpreter (`test_bench_plain.py`), so it gets torch's default numerics
    # as a user's script would, not the harness's (which flushes denormals when imported).
    import json
    import sys

    args = json.loads(sys.argv[1])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_study(args["storage"], args["name"], np.load(args["y"]), args["space"], args["configs"], args["epochs"])
