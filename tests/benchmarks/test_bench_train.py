"""What one epoch and one free-running rollout cost, per cell x protocol x hidden size, on the
current device; and the fused CPU recurrence beside torch's kernels on the same epoch."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from harness.series.data import make_windows
from harness.series.signals import make_signal
from harness.training import evaluate, fused
from harness.training.device import resolve_device, synchronize
from harness.training.train import RunConfig, build_model, make_optimizer, train_epoch

from conftest import CELLS

HIDDEN = (16, 64, 256)
DEVICE = resolve_device("auto")


def setup(cell: str, protocol: str, hidden: int, fused: bool | None = None) -> tuple[Any, ...]:
    config = RunConfig(cell=cell, protocol=protocol, hidden_size=hidden, window=16, batch_size=64, epochs=1)
    data = make_windows(make_signal(config.signal), config.window, DEVICE)
    model = build_model(config, DEVICE)
    if fused is not None:
        model.fused = fused
    optimizer = make_optimizer(model, config.lr, DEVICE)  # as train.run does
    return model, data, optimizer, config, torch.Generator().manual_seed(0)


def one_epoch(model: Any, data: Any, optimizer: Any, config: Any, gen: Any) -> float:
    loss = float(train_epoch(model, data, optimizer, config, gen))
    synchronize(DEVICE)
    return loss


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("protocol", ["seed", "window"])
@pytest.mark.parametrize("cell", CELLS)
def test_epoch(benchmark: Any, cell: str, protocol: str, hidden: int) -> None:
    benchmark.group = f"epoch-{protocol}-h{hidden}"
    benchmark.extra_info["device"] = str(DEVICE)
    benchmark.extra_info["device_name"] = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"
    loss = benchmark.pedantic(one_epoch, args=setup(cell, protocol, hidden), rounds=5, warmup_rounds=1)
    assert loss == loss and loss >= 0  # finite, not NaN


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the fused recurrence is a CPU path; CUDA keeps cuDNN")
@pytest.mark.parametrize("use_fused", [False, True], ids=["torch", "fused"])
# Only sizes where the model takes the fused path (batch x hidden <= fused.MAX_STATE_VALUES);
# past it the model runs torch's kernels either way, and test_fused_crossover shows why.
@pytest.mark.parametrize("protocol,hidden", [("seed", 30), ("window", 16), ("window", 32)])
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_fused_vs_torch_epoch(benchmark: Any, cell: str, protocol: str, hidden: int, use_fused: bool) -> None:
    benchmark.group = f"fused-{cell}-{protocol}-h{hidden}"
    args = setup(cell, protocol, hidden, use_fused)
    calls = count_fused_calls(lambda: one_epoch(*setup(cell, protocol, hidden, use_fused)))
    assert (calls > 0) == use_fused  # the row is labelled by the path that ran
    benchmark.extra_info["path"] = "fused" if calls else "torch"
    loss = benchmark.pedantic(one_epoch, args=args, rounds=5, warmup_rounds=1)
    assert loss == loss and loss >= 0


def count_fused_calls(work: Any) -> int:
    """How many times `work` entered the fused recurrence."""
    calls = 0
    original = fused.recurrent

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args)

    fused.recurrent = counting
    try:
        work()
    finally:
        fused.recurrent = original
    return calls


@pytest.mark.parametrize("protocol", ["seed", "window"])
@pytest.mark.parametrize("cell", CELLS)
def test_rollout(benchmark: Any, cell: str, protocol: str) -> None:
    benchmark.group = f"rollout-{protocol}"
    model, data, *_ = setup(cell, protocol, 64)
    free = benchmark.pedantic(evaluate.rollout, args=(model, data, protocol), rounds=5, warmup_rounds=1)
    assert free.shape == (150,)


def forward_backward(module: torch.nn.RNNBase, x: torch.Tensor, use_fused: bool) -> float:
    out, _ = fused.recurrent(module, x, None) if use_fused else module(x)
    out.sum().backward()
    return float(out[0, -1, 0].detach())


@pytest.mark.parametrize("kernel", ["torch", "fused"])
@pytest.mark.parametrize("batch,hidden", [(1, 30), (32, 32), (32, 64), (64, 64), (64, 128), (64, 256), (256, 256)])
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_fused_crossover(benchmark: Any, cell: str, batch: int, hidden: int, kernel: str) -> None:
    """Forward and backward of the recurrent layer alone, 64 steps: where the fused kernels
    stop paying (the `fused.MAX_STATE_VALUES` threshold comes from here)."""
    benchmark.group = f"crossover-{cell}-b{batch}-h{hidden}"
    torch.manual_seed(0)
    module = (torch.nn.GRU if cell == "gru" else torch.nn.RNN)(1, hidden, 1, batch_first=True)
    x = torch.randn(batch, 64, 1)
    value = benchmark.pedantic(forward_backward, args=(module, x, kernel == "fused"), rounds=7, warmup_rounds=1)
    assert value == value


# The default short-period search's LSTM trial whose activations saturate (issue 26): one of
# its random start-up draws, trained with the spec's seed.
SATURATING = {"cell": "lstm", "hidden_size": 233, "window": 24, "lr": 0.0854, "seed": 0}


@pytest.mark.skipif(DEVICE.type != "cpu", reason="denormals are a CPU cost")
@pytest.mark.parametrize("denormals", ["flushed", "kept"])
def test_saturating_lstm_epoch(benchmark: Any, denormals: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds per epoch of the saturating trial with denormals flushed to zero (the harness)
    and kept (torch's default), on one thread: the mode is per thread, and with one thread the
    calling thread is the only one (a launch side by side gives each worker one)."""
    from harness.training import device, train

    benchmark.group = "saturating-lstm"
    if denormals == "kept":
        monkeypatch.setattr(device, "flush_denormals", lambda: torch.set_flush_denormal(False))
    torch.set_num_threads(1)
    config = RunConfig(epochs=1 if benchmark.disabled else 6, **SATURATING)  # type: ignore[arg-type]
    try:
        result = benchmark.pedantic(lambda: train.run(config, "cpu"), rounds=1, warmup_rounds=0)
    finally:
        torch.set_flush_denormal(True)
    benchmark.extra_info["seconds_per_epoch"] = result.seconds_per_epoch
    assert result.epochs_run == config.epochs and result.metrics["val_mse"] > 0
