"""A fused CPU recurrence for the rnn (tanh) and gru cells, with a hand-written backward.

Why: torch's CPU `nn.RNN` and `nn.GRU` record several autograd ops per time step (about 50
and 165 us per step, forward and backward, at hidden 30 and batch 1), while `nn.LSTM` runs
through oneDNN at a few us. Here only the sequential part runs step by step, in numba-compiled
loops; everything that is not sequential (input projections, weight gradients) stays in
torch as a few large matrix products. Numba was chosen over TorchScript (deprecated, and it
still records per-step autograd ops) and a C++ extension (a compiler at install time): it is
a wheel on PyPI, and the loops read like the equations.

Conventions are PyTorch's: weights `weight_ih_l0` (G*H, I), `weight_hh_l0` (G*H, H), gates in
the order r, z, n for the GRU, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
The CUDA path never comes here: cuDNN is faster there.
"""

from __future__ import annotations

import os
from typing import Any

import numba
import numpy as np
import torch
from torch import nn

from harness.training.fast_math import sigmoid, tanh


def available() -> bool:
    """The fused path is on unless HARNESS_FUSED=0 (to compare, or to rule it out)."""
    return os.environ.get("HARNESS_FUSED", "1") != "0"


def _njit(fn: Any) -> Any:
    # error_model="numpy": no zero check on divisions, which would stop the loops vectorising
    return numba.njit(cache=True, error_model="numpy")(fn)


# ------------------------------------------------------------------ kernels (time-major arrays)
# hs (T + 1, B, H) holds h0 and then h_t: the backward's h_{t-1} for every t is hs[:-1], a view.
# `one` is 1 in the arrays' dtype: a Python 1.0 would make each float32 expression float64,
# half as many values to a SIMD register.
@_njit
def _rnn_forward(p: np.ndarray, h0: np.ndarray, w_t: np.ndarray) -> np.ndarray:
    """h_t = tanh(p_t + h_{t-1} W_hh^T); p (T, B, H) already holds x W_ih^T + b_ih + b_hh."""
    steps, batch, hidden = p.shape
    hs = np.empty((steps + 1, batch, hidden), dtype=p.dtype)
    hs[0] = h0
    for t in range(steps):
        a = np.dot(hs[t], w_t)
        h = hs[t + 1]
        for b in range(batch):
            for j in range(hidden):
                h[b, j] = tanh(p[t, b, j] + a[b, j])
    return hs


@_njit
def _rnn_backward(dhs: np.ndarray, hs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients w.r.t. the pre-activations (T, B, H) and h0, given dL/dh_t for every t."""
    steps, batch, hidden = dhs.shape
    one = np.ones(1, dtype=dhs.dtype)[0]
    da = np.empty_like(dhs)
    dh = np.zeros((batch, hidden), dtype=dhs.dtype)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            for j in range(hidden):
                h = hs[t + 1, b, j]
                da[t, b, j] = (dh[b, j] + dhs[t, b, j]) * (one - h * h)
        dh = np.dot(da[t], w)
    return da, dh


@_njit
def _gru_forward(
    pi: np.ndarray, h0: np.ndarray, w_t: np.ndarray, b_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pi (T, B, 3H) holds x W_ih^T + b_ih; returns h_t and the gates the backward needs."""
    steps, batch, hidden = pi.shape[0], pi.shape[1], h0.shape[1]
    one = np.ones(1, dtype=pi.dtype)[0]
    hs = np.empty((steps + 1, batch, hidden), dtype=pi.dtype)
    hs[0] = h0
    rs, zs, ns, ghn = np.empty((4, steps, batch, hidden), dtype=pi.dtype)
    for t in range(steps):
        gh = np.dot(hs[t], w_t)
        for b in range(batch):
            hp, h, p, g = hs[t, b], hs[t + 1, b], pi[t, b], gh[b]
            for j in range(hidden):
                r = sigmoid(p[j] + g[j] + b_hh[j])
                z = sigmoid(p[hidden + j] + g[hidden + j] + b_hh[hidden + j])
                hn = g[2 * hidden + j] + b_hh[2 * hidden + j]
                n = tanh(p[2 * hidden + j] + r * hn)
                h[j] = (one - z) * n + z * hp[j]
                rs[t, b, j], zs[t, b, j], ns[t, b, j], ghn[t, b, j] = r, z, n, hn
    return hs, rs, zs, ns, ghn


@_njit
def _gru_backward(
    dhs: np.ndarray,
    hs: np.ndarray,
    rs: np.ndarray,
    zs: np.ndarray,
    ns: np.ndarray,
    ghn: np.ndarray,
    w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients w.r.t. the input projections (T, B, 3H), the recurrent projections
    h W_hh^T + b_hh (T, B, 3H), h0, and b_hh (their sum over steps and batch)."""
    steps, batch, hidden = dhs.shape
    one = np.ones(1, dtype=dhs.dtype)[0]
    dpi = np.empty((steps, batch, 3 * hidden), dtype=dhs.dtype)
    dgh = np.empty_like(dpi)
    db = np.zeros(3 * hidden, dtype=np.float64)  # summed over T x B terms: in double
    dh = np.zeros((batch, hidden), dtype=dhs.dtype)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            hp, di, dg = hs[t, b], dpi[t, b], dgh[t, b]
            for j in range(hidden):
                g = dh[b, j] + dhs[t, b, j]
                r, z, n = rs[t, b, j], zs[t, b, j], ns[t, b, j]
                dn = g * (one - z) * (one - n * n)
                dz = g * (hp[j] - n) * z * (one - z)
                dr = dn * ghn[t, b, j] * r * (one - r)
                di[j], di[hidden + j], di[2 * hidden + j] = dr, dz, dn
                dg[j], dg[hidden + j], dg[2 * hidden + j] = dr, dz, dn * r
                dh[b, j] = g * z  # the direct path through h_t = ... + z * h_{t-1}
            for k in range(3 * hidden):
                db[k] += dg[k]
        dh = dh + np.dot(dgh[t], w)
    return dpi, dgh, dh, db.astype(dhs.dtype)


def compile_kernels(dtype: type = np.float32) -> None:
    """Compile (or load from numba's cache) the four kernels for `dtype`, on tiny arrays of the
    layout the autograd functions below pass (C-contiguous), without running autograd."""

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    steps, batch, h = 2, 1, 2
    _rnn_backward(
        zeros(steps, batch, h), _rnn_forward(zeros(steps, batch, h), zeros(batch, h), zeros(h, h)), zeros(h, h)
    )
    hs, rs, zs, ns, ghn = _gru_forward(zeros(steps, batch, 3 * h), zeros(batch, h), zeros(h, 3 * h), zeros(3 * h))
    _gru_backward(zeros(steps, batch, h), hs, rs, zs, ns, ghn, zeros(3 * h, h))


# ------------------------------------------------------------------ autograd functions
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _weight_grad(da: np.ndarray, hs: torch.Tensor) -> torch.Tensor:
    """dL/dW_hh = sum over steps and batch of da_t^T h_{t-1}: one matrix product."""
    hprev = hs[:-1]
    return torch.from_numpy(da).reshape(-1, da.shape[-1]).t() @ hprev.reshape(-1, hprev.shape[-1])


class _RNNRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, p: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        hs = torch.from_numpy(_rnn_forward(_np(p), _np(h0), _np(w_hh.t())))
        ctx.save_for_backward(hs, w_hh)
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, dhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hs, w_hh = ctx.saved_tensors
        da, dh0 = _rnn_backward(_np(dhs), _np(hs), _np(w_hh))
        return torch.from_numpy(da), torch.from_numpy(dh0), _weight_grad(da, hs)


class _GRURecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
        hs, rs, zs, ns, ghn = _gru_forward(_np(pi), _np(h0), _np(w_hh.t()), _np(b_hh))
        out = torch.from_numpy(hs)
        ctx.save_for_backward(out, w_hh, *(torch.from_numpy(a) for a in (rs, zs, ns, ghn)))
        return out[1:]

    @staticmethod
    def backward(ctx: Any, dhs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hs, w_hh, rs, zs, ns, ghn = ctx.saved_tensors
        dpi, dgh, dh0, db = _gru_backward(_np(dhs), *(_np(a) for a in (hs, rs, zs, ns, ghn, w_hh)))
        return torch.from_numpy(dpi), torch.from_numpy(dh0), _weight_grad(dgh, hs), torch.from_numpy(db)


# Above this many state values per step (batch x hidden), torch's kernels win: its GEMMs use
# the threads it has, where these loops run on one (their products go through scipy's BLAS).
# `test_bench_train.py::test_fused_crossover` measures where the crossover lies.
MAX_STATE_VALUES = 8192


def worthwhile(batch: int, hidden: int) -> bool:
    return batch * hidden <= MAX_STATE_VALUES


def supports(module: nn.RNNBase, inputs: torch.Tensor) -> bool:
    """Single-layer, unidirectional, batch-first rnn (tanh) or gru on the CPU."""
    kind = "gru" if isinstance(module, nn.GRU) else "rnn" if isinstance(module, nn.RNN) else None
    return (
        kind is not None
        and inputs.device.type == "cpu"
        and module.num_layers == 1
        and not module.bidirectional
        and module.batch_first
        and module.bias
        and getattr(module, "nonlinearity", "tanh") == "tanh"
        and inputs.dim() == 3
    )


def recurrent(module: nn.RNNBase, inputs: torch.Tensor, h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop-in for `module(inputs, h0)` on a supported module: (out (B, T, H), h_T (1, B, H))."""
    batch, hidden = inputs.shape[0], module.hidden_size
    h = h0[0] if h0 is not None else inputs.new_zeros(batch, hidden)
    x = inputs.transpose(0, 1)  # time-major for the kernels
    w_ih, w_hh, b_ih, b_hh = module.all_weights[0]
    if isinstance(module, nn.GRU):
        hs = _GRURecurrence.apply(torch.nn.functional.linear(x, w_ih, b_ih), h, w_hh, b_hh)
    else:
        hs = _RNNRecurrence.apply(torch.nn.functional.linear(x, w_ih, b_ih + b_hh), h, w_hh)
    out = hs.transpose(0, 1)
    return out, out[:, -1].unsqueeze(0)
