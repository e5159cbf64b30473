"""Training protocols as pure functions: no Optuna, no files.

`run(config)` builds the signal, the windows and the model, trains with the config's
protocol and returns a `TrainResult` with per-epoch losses, validation MSE, final metrics
and timings. The per-epoch `on_epoch(epoch, metrics)` callback is how a caller watches
(and, by returning True, stops) a run; the study driver uses it for pruning.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from harness.constraints import Boolean, Integer, OneOf, Real, check_fields, setting
from harness.series import metrics as forecast_metrics
from harness.series.data import TRAIN_FRAC, VAL_FRAC, Windows, make_windows, split_indices
from harness.series.signals import SignalConfig, make_signal, prepared
from harness.training import evaluate
from harness.training.adam import FlatAdam
from harness.training.device import (
    FIRST_CALL_IMPORTS,
    PRECISION,
    device_name,
    dtype_for,
    held_numerics,
    process_peak_bytes,
    reset_peak_memory,
    resolve_device,
    run_memory_bytes,
)
from harness.training.loop import Epochs, OnEpoch
from harness.training.models import CELL, RecurrentRegressor, count_parameters

Optimizer = FlatAdam | torch.optim.Optimizer  # the CPU's and the GPU's (`run`)

PROTOCOLS = ("seed", "window")
PROTOCOL = OneOf(PROTOCOLS, "protocol")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run; stored with every trial.

    Each field's rule is declared beside it (`harness.constraints`); the spec, `--set` and the
    CLI flags all check through these. The defaults are the notebook's (hidden 30, lr 0.01,
    33 epochs, seed 42), so `harness reproduce` and `NotebookSettings` take them from here."""

    signal: SignalConfig = field(default_factory=SignalConfig)
    protocol: str = setting("window", PROTOCOL)
    cell: str = setting("lstm", CELL)
    hidden_size: int = setting(30, Integer(1))
    num_layers: int = setting(1, Integer(1))
    window: int = setting(5, Integer(1))  # and short enough to leave training targets: see __post_init__
    lr: float = setting(0.01, Real(0, low_open=True))
    epochs: int = setting(33, Integer(1))
    batch_size: int = setting(64, Integer(1))
    seed: int = setting(42, Integer())
    train_frac: float = setting(TRAIN_FRAC, Real(0, 1, low_open=True))
    val_frac: float = setting(VAL_FRAC, Real(0, 1))
    # fp32: no TensorFloat-32 on GPUs; tf32 allows it (device.apply_numerics); fp64: float64 (device.dtype_for)
    precision: str = setting("fp32", PRECISION)
    deterministic: bool = setting(True, Boolean())

    def __post_init__(self) -> None:
        check_fields(self)
        # The window's upper bound depends on the signal and the split: judged where splits are made.
        split_indices(self.signal.length, self.window, self.train_frac, self.val_frac)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("signal"), dict):
            values["signal"] = SignalConfig(**values["signal"])
        return cls(**values)


@dataclass
class TrainResult:
    config: RunConfig
    device: str
    device_name: str
    n_params: int
    losses: list[float]  # per epoch: summed squared error (seed) or mean MSE (window)
    val_mse_by_epoch: list[float]
    epochs_run: int
    train_seconds: float
    seconds_per_epoch: float
    samples_per_second: float
    run_memory_bytes: int  # what the run added: its peak minus what the process held at its start
    process_peak_bytes: int  # the process's peak during the run (CPU: resident set; GPU: allocator)
    metrics: dict[str, float]  # val_mse, test_mse, rollout_mse, horizon (of the best epoch's weights)
    diverged: bool = False
    stopped: bool = False  # on_epoch asked to stop
    fail_reason: str | None = None
    model: RecurrentRegressor | None = field(default=None, repr=False)


def build_model(config: RunConfig, device: torch.device) -> RecurrentRegressor:
    """The initial weights torch draws after `torch.manual_seed(config.seed)`, as the notebook
    seeds them, drawn in a fork of the caller's generator: their own draws are left as they were."""
    input_size = config.window if config.protocol == "seed" else 1
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(config.seed)  # the CPU's, where they are drawn; CUDA's untouched
        model = RecurrentRegressor(config.cell, input_size, config.hidden_size, config.num_layers)
    return model.to(device, dtype_for(config.precision))


def _seed_epoch(model: RecurrentRegressor, data: Windows, optimizer: Optimizer) -> torch.Tensor:
    """The notebook's epoch: the whole training series as one sequence of W-feature steps,
    state carried from a zero start, summed squared error, one Adam step (full BPTT).
    One call of the recurrent layer replaces the notebook's Python loop over time steps."""
    part = data.splits.train
    model.train()
    optimizer.zero_grad()
    out, _ = model(data.x[part].unsqueeze(0))
    loss = ((out.view(-1) - data.y[part]) ** 2).sum()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _window_epoch(
    model: RecurrentRegressor, data: Windows, optimizer: Optimizer, batch_size: int, gen: torch.Generator
) -> torch.Tensor:
    """Shuffled minibatches of windows, each a sequence of W scalars from a zero state."""
    part = data.splits.train
    x, y = data.x[part].unsqueeze(-1), data.y[part]
    model.train()
    total = torch.zeros((), device=x.device, dtype=x.dtype)
    order = torch.randperm(len(x), generator=gen).to(x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        optimizer.zero_grad()
        out, _ = model(x[idx])
        loss = torch.mean((out[:, -1, 0] - y[idx]) ** 2)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
    return total / len(x)  # stays on the device: one host sync per epoch, by the caller


def train_epoch(
    model: RecurrentRegressor, data: Windows, optimizer: Optimizer, config: RunConfig, gen: torch.Generator
) -> torch.Tensor:
    """One epoch of the config's protocol; the loss stays on the device (no host sync here)."""
    if config.protocol == "seed":
        return _seed_epoch(model, data, optimizer)
    return _window_epoch(model, data, optimizer, config.batch_size, gen)


def warm_up() -> None:
    """Pay the one-time costs before any trial's clock starts, not in the first trial: torch's
    first-call imports (`FIRST_CALL_IMPORTS`, ~1.2 s), oneDNN's first LSTM (~1 s) and, on a
    fresh clone, numba compiling the fused RNN and GRU kernels (seconds; cached on disk after)."""
    if _WARM:
        return
    importlib.import_module(FIRST_CALL_IMPORTS)
    for cell in ("rnn", "gru", "lstm"):  # the fused kernels' compile; oneDNN's first LSTM (~1 s)
        run(RunConfig(cell=cell, hidden_size=4, window=2, epochs=1, batch_size=16), "cpu")
    _WARM.append(True)


_WARM: list[bool] = []  # once per process


def make_optimizer(model: RecurrentRegressor, lr: float, device: torch.device) -> Optimizer:
    """torch's Adam; on the CPU as one tensor instead of six (`adam`: the same weights, fewer
    operations), on a GPU torch's own (a cuDNN RNN wants its weights in its own layout)."""
    return FlatAdam(model.parameters(), lr) if device.type == "cpu" else torch.optim.Adam(model.parameters(), lr)


def run(
    config: RunConfig, device: str | torch.device = "auto", on_epoch: OnEpoch | None = None, objective: str = "val_mse"
) -> TrainResult:
    """Train one model as `config` says and evaluate its best-validation weights. The torch
    flags the run needs are set for its length and put back after (`held_numerics`). With
    `objective` "val_mase" (a real series), each epoch's metrics for `on_epoch` carry it too."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    with held_numerics(config.precision, config.deterministic):
        return _run(config, dev, on_epoch, objective == "val_mase" and config.signal.real)


def _run(config: RunConfig, dev: torch.device, on_epoch: OnEpoch | None, mase: bool = False) -> TrainResult:
    held = reset_peak_memory(dev)  # the run's peak includes its data and model
    y = make_signal(config.signal, train_frac=config.train_frac)  # a real series: scaled on its training part
    data = make_windows(y, config.window, dev, config.train_frac, config.val_frac, dtype_for(config.precision))
    model = build_model(config, dev)
    optimizer = make_optimizer(model, config.lr, dev)
    gen = torch.Generator().manual_seed(config.seed)
    has_val = data.splits.val.stop > data.splits.val.start

    def val_mase() -> dict[str, float]:  # what the study minimises (a flat season's MASE is NaN: not divergence)
        return {"val_mase": units_metrics(model, data, config.protocol, config, ("val",))["val_mase"]}

    epochs = Epochs(dev, on_epoch, validated=has_val)
    epochs.start()
    for epoch in range(config.epochs):
        with epochs.training():
            metrics = {"loss": float(train_epoch(model, data, optimizer, config, gen))}
        if has_val:
            metrics["val_mse"] = evaluate.mse(
                evaluate.predict(model, data, config.protocol, data.splits.val), data.y[data.splits.val]
            )
        if epochs.end(epoch, metrics, keep=model, more=val_mase if mase else None):
            break
    seconds = epochs.seconds()

    if epochs.best_state is not None:
        model.load_state_dict(epochs.best_state)
    epochs_run = len(epochs.losses)
    n_train = data.splits.train.stop - data.splits.train.start
    return TrainResult(
        config=config,
        device=str(dev),
        device_name=device_name(dev),
        n_params=count_parameters(model),
        losses=epochs.losses,
        val_mse_by_epoch=epochs.val_curve,
        epochs_run=epochs_run,
        train_seconds=seconds,
        seconds_per_epoch=seconds / max(epochs_run, 1),
        samples_per_second=n_train * epochs_run / seconds if seconds > 0 else 0.0,
        run_memory_bytes=run_memory_bytes(dev, held),
        process_peak_bytes=process_peak_bytes(dev),
        metrics=final_metrics(model, data, config.protocol, config)
        if not epochs.diverged or epochs.best_state is not None
        else {},
        diverged=epochs.diverged,
        stopped=epochs.stopped,
        fail_reason=epochs.reason,
        model=model,
    )


def final_metrics(
    model: RecurrentRegressor, data: Windows, protocol: str, config: RunConfig | None = None
) -> dict[str, float]:
    """One-step MSE on validation and test, the free-running rollout and horizon (in the units
    the model sees: standardised for a real series), and for a real series (`config` given)
    its errors in the file's own units (`units_metrics`)."""
    s = data.splits
    out: dict[str, float] = {}
    if s.val.stop > s.val.start:
        out["val_mse"] = evaluate.mse(evaluate.predict(model, data, protocol, s.val), data.y[s.val])
    if s.test.stop > s.test.start:
        truth = data.y[s.test]
        free = evaluate.rollout(model, data, protocol)
        out["test_mse"] = evaluate.mse(evaluate.predict(model, data, protocol, s.test), truth)
        out["rollout_mse"] = evaluate.mse(free, truth)
        out["horizon"] = evaluate.horizon(free, truth)
    if config is not None and config.signal.real:
        out |= units_metrics(model, data, protocol, config)
    return out


def units_metrics(
    model: RecurrentRegressor, data: Windows, protocol: str, config: RunConfig, parts: tuple[str, ...] = ("val", "test")
) -> dict[str, float]:
    """A real series' one-step errors in its original units, on validation and test (`parts`):
    `<part>_mae`, `_rmse`, `_mse_units`, `_mase`, `_rmsse` (`harness.series.metrics`), each
    prediction mapped back through the scaler and transform (`sources.Prepared.to_original`)."""
    series = prepared(config.signal, config.train_frac)
    s = data.splits
    out: dict[str, float] = {}
    for name, part in (("val", s.val), ("test", s.test)):
        if name not in parts:
            continue
        if part.stop <= part.start:
            continue
        pred = evaluate.predict(model, data, protocol, part).double().cpu().numpy()
        times = np.arange(part.start, part.stop) + s.window  # target indices in the model's series
        scores = forecast_metrics.scores(
            series.to_original(pred, times), series.targets(times), series.train_values, config.signal.season
        )
        out |= {f"{name}_{'mse_units' if k == 'mse' else k}": v for k, v in scores.items()}
    return out
