"""What one epoch and one free-running rollout cost, per cell x protocol x hidden size, on the
current device; and the fused CPU recurrence beside torch's kernels on the same epoch."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
import torch

from harness.series.data import make_windows
from harness.series.signals import make_signal
from harness.training import evaluate, fused
from harness.training.device import resolve_device, synchronize
from harness.training.train import RunConfig, build_model, make_optimizer, run, train_epoch

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
    return model, data, optimizer, config, torch.Generator().manual_seed(config.seed)  # as train.run does


def one_epoch(model: Any, data: Any, optimizer: Any, config: Any, gen: Any) -> float:
    loss = float(train_epoch(model, data, optimizer, config, gen))
    synchronize(DEVICE)
    return loss


def timed_epochs(benchmark: Any, args: tuple[Any, ...]) -> tuple[float, int]:
    """The benchmark's epochs, one after another on one model (the warm-up's included): the
    last epoch's loss and how many ran."""
    losses: list[float] = []
    benchmark.pedantic(lambda *a: losses.append(one_epoch(*a)), args=args, rounds=5, warmup_rounds=1)
    return losses[-1], len(losses)


@pytest.mark.slow
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("protocol", ["seed", "window"])
@pytest.mark.parametrize("cell", CELLS)
def test_epoch(benchmark: Any, cell: str, protocol: str, hidden: int) -> None:
    benchmark.group = f"epoch-{protocol}-h{hidden}"
    benchmark.extra_info["device"] = str(DEVICE)
    benchmark.extra_info["device_name"] = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"
    args = setup(cell, protocol, hidden)
    loss, epochs = timed_epochs(benchmark, args)
    # the epochs timed are train.run's: its loss at the same epoch
    assert loss == pytest.approx(run(replace(args[3], epochs=epochs), DEVICE).losses[-1], rel=1e-6)


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the fused recurrence is a CPU path; CUDA keeps cuDNN")
@pytest.mark.parametrize("use_fused", [False, True], ids=["torch", "fused"])
# Only sizes where the model takes the fused path (batch x hidden <= fused.MAX_STATE_VALUES);
# past it the model runs torch's kernels either way, and test_fused_crossover shows why.
@pytest.mark.slow
@pytest.mark.parametrize("protocol,hidden", [("seed", 30), ("window", 16), ("window", 32)])
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_fused_vs_torch_epoch(benchmark: Any, cell: str, protocol: str, hidden: int, use_fused: bool) -> None:
    benchmark.group = f"fused-{cell}-{protocol}-h{hidden}"
    args = setup(cell, protocol, hidden, use_fused)
    calls = count_fused_calls(lambda: one_epoch(*setup(cell, protocol, hidden, use_fused)))
    assert (calls > 0) == use_fused  # the row is labelled by the path that ran
    benchmark.extra_info["path"] = "fused" if calls else "torch"
    loss, epochs = timed_epochs(benchmark, args)
    # the other path's loss after as many epochs: the fused recurrence computes torch's epoch
    other = setup(cell, protocol, hidden, not use_fused)
    assert loss == pytest.approx([one_epoch(*other) for _ in range(epochs)][-1], rel=1e-4)


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
    # the first free step is the one-step forecast of the first test target ...
    one_step = evaluate.predict(model, data, protocol, data.splits.test)
    assert float(free[0]) == pytest.approx(float(one_step[0]), rel=1e-5, abs=1e-6)
    if protocol == "window":  # ... and each next one the model's forward on its own predictions
        torch.testing.assert_close(free, stepwise_rollout(model, data.x[data.splits.test.start], len(free)),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


def stepwise_rollout(model: Any, start: torch.Tensor, steps: int) -> torch.Tensor:
    """The window protocol's rollout as the model's forward gives it, one call a step."""
    w = len(start)
    buffer = torch.cat([start, start.new_empty(steps)])
    with torch.no_grad():
        for k in range(steps):
            buffer[w + k] = model(buffer[k : k + w].view(1, w, 1))[0][0, -1, 0]
    return buffer[w:]


def forward_backward(module: torch.nn.RNNBase, x: torch.Tensor, use_fused: bool) -> torch.Tensor:
    out, _ = fused.recurrent(module, x, None) if use_fused else module(x)
    out.sum().backward()
    return out.detach()


@pytest.mark.slow
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
    calls = []
    out = benchmark.pedantic(lambda *a: calls.append(forward_backward(*a)) or calls[-1],
                             args=(module, x, kernel == "fused"), rounds=7, warmup_rounds=1)  # fmt: skip
    # The other kernel on a copy: the same outputs, and the same gradients summed over as many calls
    twin = copy.deepcopy(module)
    twin.zero_grad()
    twin_outs = [forward_backward(twin, x, kernel != "fused") for _ in calls]
    torch.testing.assert_close(out, twin_outs[-1], rtol=1e-4, atol=1e-5)
    for (name, a), (_, b) in zip(module.named_parameters(), twin.named_parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert float((a.grad - b.grad).norm()) <= 1e-5 * float(b.grad.norm()), name  # float32 sums in two orders


# The default short-period search's LSTM trial whose activations saturate (issue 26): one of
# its random start-up draws, trained with the spec's seed.
SATURATING = {"cell": "lstm", "hidden_size": 233, "window": 24, "lr": 0.0854, "seed": 0}


@pytest.mark.skipif(DEVICE.type != "cpu", reason="denormals are a CPU cost")
@pytest.mark.parametrize("denormals", ["flushed", "kept"])
def test_saturating_lstm_epoch(benchmark: Any, denormals: str) -> None:
    """Seconds per epoch of the saturating trial with denormals flushed to zero (the command
    line's processes) and kept (torch's default), on one thread: the mode is per thread, and
    with one thread the calling thread is the only one (a launch side by side gives each
    worker one)."""
    from harness.training import train

    benchmark.group = "saturating-lstm"
    torch.set_num_threads(1)
    config = RunConfig(epochs=1 if benchmark.disabled else 6, **SATURATING)  # type: ignore[arg-type]

    def trained(flushed: bool) -> Any:
        torch.set_flush_denormal(flushed)  # the process's mode, which a run leaves alone
        try:
            return train.run(config, "cpu")
        finally:
            torch.set_flush_denormal(True)  # the test process's (conftest)

    result = benchmark.pedantic(lambda: trained(denormals == "flushed"), rounds=1, warmup_rounds=0)
    benchmark.extra_info["seconds_per_epoch"] = result.seconds_per_epoch
    assert result.epochs_run == config.epochs
    # Flushing changes the time, not the numbers (tests/training/test_numerics.py): the other
    # mode's run gives the same losses, curve and metrics to every digit.
    other = trained(denormals != "flushed")
    assert (result.losses, result.val_mse_by_epoch, result.metrics) == (other.losses, other.val_mse_by_epoch,
                                                                         other.metrics)  # fmt: skip
