"""The fused CPU recurrence must be torch's recurrence, to the last bit that double precision
can tell: same outputs, same gradients for every input and parameter; in float32, the
precision training runs in, as close to torch's as torch's own float32 is to the truth.
And the fused path must really be the one that runs where the harness says it does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from harness.series.data import make_windows
from harness.series.signals import make_signal
from harness.training import fused
from harness.training.models import RecurrentRegressor
from harness.training.train import RunConfig, run

SHAPES = [(1, 50, 5, 30), (4, 7, 1, 8), (3, 1, 2, 4)]  # (batch, time, input, hidden)


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU])
def test_outputs_and_gradients_match_torch(
    cls: type[nn.RNNBase], shape: tuple[int, int, int, int], with_state: bool
) -> None:
    batch, steps, inputs, hidden = shape
    torch.manual_seed(1)
    module = cls(inputs, hidden, 1, batch_first=True).double()
    x = torch.randn(batch, steps, inputs, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, batch, hidden, dtype=torch.double, requires_grad=True) if with_state else None
    wrt = [x, *([h0] if h0 is not None else []), *module.parameters()]
    weights = torch.randn(batch, steps, hidden, dtype=torch.double)

    def loss(out: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return (out * weights).sum() + (h**2).sum()  # gradient flows in through every output and the state

    ref_out, ref_h = module(x, h0)
    ref_grads = torch.autograd.grad(loss(ref_out, ref_h), wrt)
    out, h = fused.recurrent(module, x, h0)
    grads = torch.autograd.grad(loss(out, h), wrt)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, ref_h, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-10)


# Float32, max |fused - torch| / max |torch| per tensor, worst over 5 seeds of each shape,
# measured on this project's CPU machine (torch 2.13.0): outputs and final state 2.4e-7,
# gradients (input, h0 and every parameter) 1.4e-6 (the 995-step seed-protocol shape; 7e-7
# at most for the others). Both are as far from a float64 reference on the same shapes:
# torch's float32 gradients up to 1.9e-6, the fused ones up to 1.6e-6. Element by element
# the relative difference reaches 1e-1 on gradient entries near zero (cancellation), so the
# tolerance is relative to each tensor's largest entry.
F32_OUT_TOL, F32_GRAD_TOL = 1e-6, 1e-5
F32_SHAPES = [(1, 995, 5, 30), (64, 8, 1, 16), (32, 64, 1, 32)]  # seed protocol; window batches


def assert_close_to_scale(got: torch.Tensor, want: torch.Tensor, tol: float, what: str) -> None:
    assert got.dtype == want.dtype == torch.float32
    got, want = got.detach(), want.detach()
    err = float((got - want).abs().max() / want.abs().max())
    assert err <= tol, f"{what}: max |fused - torch| is {err:.2e} of max |torch|, allowed {tol:.0e}"


@pytest.mark.parametrize("shape", F32_SHAPES)
@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU])
def test_float32_outputs_and_gradients_match_torch(cls: type[nn.RNNBase], shape: tuple[int, int, int, int]) -> None:
    batch, steps, inputs, hidden = shape
    torch.manual_seed(4)
    module = cls(inputs, hidden, 1, batch_first=True)  # float32, as the harness trains
    x = torch.randn(batch, steps, inputs, requires_grad=True)
    h0 = torch.randn(1, batch, hidden, requires_grad=True)
    names = ["input", "h0", *(n for n, _ in module.named_parameters())]
    wrt = [x, h0, *module.parameters()]
    weights = torch.randn(batch, steps, hidden)

    def loss(out: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return (out * weights).sum() + (h**2).sum()

    ref_out, ref_h = module(x, h0)
    ref_grads = torch.autograd.grad(loss(ref_out, ref_h), wrt)
    out, h = fused.recurrent(module, x, h0)
    grads = torch.autograd.grad(loss(out, h), wrt)
    assert_close_to_scale(out, ref_out, F32_OUT_TOL, "output")
    assert_close_to_scale(h, ref_h, F32_OUT_TOL, "final state")
    for name, got, want in zip(names, grads, ref_grads, strict=True):
        assert_close_to_scale(got, want, F32_GRAD_TOL, f"gradient of {name}")


class _Fused(nn.Module):
    """`fused.recurrent` as a module, so torch.func can substitute its parameters."""

    def __init__(self, module: nn.RNNBase) -> None:
        super().__init__()
        self.m = module

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fused.recurrent(self.m, x, h0)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU])
def test_torch_gradcheck_on_the_fused_path(cls: type[nn.RNNBase]) -> None:
    # Numerical against analytical gradients of the output and final state, with respect to
    # the input, the initial state and all four parameters (the hand-written backward's
    # weight gradients included).
    torch.manual_seed(2)
    wrapper = _Fused(cls(2, 3, 1, batch_first=True).double())
    names = [f"m.{n}" for n, _ in wrapper.m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in wrapper.m.parameters()]
    x = torch.randn(2, 4, 2, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, 2, 3, dtype=torch.double, requires_grad=True)

    def f(x: torch.Tensor, h0: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.func.functional_call(wrapper, dict(zip(names, ps, strict=True)), (x, h0))

    # the substituted parameters are the ones used (else their gradients would be 0 = 0)
    assert not torch.equal(f(x, h0, *params)[0], f(x, h0, *(p + 0.1 for p in params))[0])
    assert torch.autograd.gradcheck(f, (x, h0, *params))


@pytest.fixture
def fused_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, ...]]]:
    """Records the input shape of every call of the fused recurrence (models.py looks
    `fused.recurrent` up at call time), passing each call through."""
    calls: list[tuple[int, ...]] = []
    real = fused.recurrent

    def spy(module: nn.RNNBase, inputs: torch.Tensor, h0: Any) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(tuple(inputs.shape))
        return real(module, inputs, h0)

    monkeypatch.setattr(fused, "recurrent", spy)
    monkeypatch.delenv("HARNESS_FUSED", raising=False)
    yield calls


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_model_takes_the_fused_path_only_where_supported_and_agrees(
    cell: str, fused_calls: list[tuple[int, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(3)
    on = RecurrentRegressor(cell, 5, 30)  # the default: fused where supported
    off = RecurrentRegressor(cell, 5, 30, fused=False)
    off.load_state_dict(on.state_dict())
    x = torch.randn(1, 100, 5)
    out_on = on(x)[0]
    assert fused_calls == [(1, 100, 5)]
    out_off = off(x)[0]
    assert fused_calls == [(1, 100, 5)]  # fused=False: torch's path
    torch.testing.assert_close(out_on, out_off, rtol=1e-5, atol=1e-6)

    # batch x hidden above fused.MAX_STATE_VALUES, two layers, an lstm: torch's path
    assert not fused.worthwhile(64, 256)
    RecurrentRegressor(cell, 1, 256, fused=True)(torch.randn(64, 3, 1))
    RecurrentRegressor(cell, 5, 8, num_layers=2, fused=True)(x)
    RecurrentRegressor("lstm", 5, 8, fused=True)(x)
    assert len(fused_calls) == 1
    RecurrentRegressor(cell, 1, 128, fused=True)(torch.randn(64, 3, 1))  # 64 x 128 = 8192: still fused
    assert fused_calls[-1] == (64, 3, 1)

    monkeypatch.setenv("HARNESS_FUSED", "0")
    RecurrentRegressor(cell, 5, 30)(x)
    assert len(fused_calls) == 2  # switched off


@pytest.mark.parametrize("protocol", ["seed", "window"])
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_training_runs_through_the_fused_path(
    cell: str, protocol: str, fused_calls: list[tuple[int, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(cell=cell, protocol=protocol, hidden_size=16, epochs=2, window=6)
    with_fused = run(config, "cpu")
    # training steps, validation passes and the rollout all went through it
    assert len(fused_calls) >= config.epochs * 2
    if protocol == "seed":
        train = make_windows(make_signal(config.signal), config.window).splits.train
        assert (1, train.stop - train.start, 6) in fused_calls  # the training series as one sequence
    else:
        assert (config.batch_size, 6, 1) in fused_calls  # a training minibatch
    monkeypatch.setenv("HARNESS_FUSED", "0")
    n = len(fused_calls)
    without = run(config, "cpu")
    assert len(fused_calls) == n
    assert with_fused.losses == pytest.approx(without.losses, rel=1e-4)
