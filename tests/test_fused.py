"""The fused CPU recurrence must be torch's recurrence, to the last bit that double precision
can tell: same outputs, same gradients for every input and parameter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness import fused
from harness.models import RecurrentRegressor

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


def test_torch_gradcheck_on_the_fused_gru() -> None:
    torch.manual_seed(2)
    module = nn.GRU(2, 3, 1, batch_first=True).double()
    x = torch.randn(2, 4, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: fused.recurrent(module, inp, None)[0], (x,))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_model_uses_fused_path_only_where_supported_and_agrees(cell: str) -> None:
    torch.manual_seed(3)
    on = RecurrentRegressor(cell, 5, 30, fused=True)
    off = RecurrentRegressor(cell, 5, 30, fused=False)
    off.load_state_dict(on.state_dict())
    x = torch.randn(1, 100, 5)
    torch.testing.assert_close(on(x)[0], off(x)[0], rtol=1e-5, atol=1e-6)
    assert fused.supports(on.rnn, x) and fused.worthwhile(1, 30)
    assert not fused.worthwhile(64, 256)
    assert not fused.supports(RecurrentRegressor(cell, 5, 8, num_layers=2).rnn, x)
    assert not fused.supports(RecurrentRegressor("lstm", 5, 8).rnn, x)
