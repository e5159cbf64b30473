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


def available() -> bool:
    """The fused path is on unless HARNESS_FUSED=0 (to compare, or to rule it out)."""
    return os.environ.get("HARNESS_FUSED", "1") != "0"


def _njit(fn: Any) -> Any:
    return numba.njit(cache=True)(fn)


# ------------------------------------------------------------------ kernels (time-major arrays)
@_njit
def _rnn_forward(p: np.ndarray, h0: np.ndarray, w_t: np.ndarray) -> np.ndarray:
    """h_t = tanh(p_t + h_{t-1} W_hh^T); p (T, B, H) already holds x W_ih^T + b_ih + b_hh."""
    steps, batch, hidden = p.shape
    hs = np.empty_like(p)
    h = h0.copy()
    for t in range(steps):
        a = np.dot(h, w_t)
        for b in range(batch):
            for j in range(hidden):
                h[b, j] = np.tanh(p[t, b, j] + a[b, j])
        hs[t] = h
    return hs


@_njit
def _rnn_backward(dhs: np.ndarray, hs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients w.r.t. the pre-activations (T, B, H) and h0, given dL/dh_t for every t."""
    steps, batch, hidden = hs.shape
    da = np.empty_like(hs)
    dh = np.zeros((batch, hidden), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            for j in range(hidden):
                g = dh[b, j] + dhs[t, b, j]
                da[t, b, j] = g * (1.0 - hs[t, b, j] * hs[t, b, j])
        dh = np.dot(da[t], w)
    return da, dh


@_njit
def _gru_forward(
    pi: np.ndarray, h0: np.ndarray, w_t: np.ndarray, b_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pi (T, B, 3H) holds x W_ih^T + b_ih; returns h_t and the gates the backward needs."""
    steps, batch, hidden = pi.shape[0], pi.shape[1], h0.shape[1]
    hs = np.empty((steps, batch, hidden), dtype=pi.dtype)
    rs, zs, ns, ghn = np.empty_like(hs), np.empty_like(hs), np.empty_like(hs), np.empty_like(hs)
    h = h0.copy()
    for t in range(steps):
        gh = np.dot(h, w_t)
        for b in range(batch):
            for j in range(hidden):
                r = 1.0 / (1.0 + np.exp(-(pi[t, b, j] + gh[b, j] + b_hh[j])))
                z = 1.0 / (1.0 + np.exp(-(pi[t, b, hidden + j] + gh[b, hidden + j] + b_hh[hidden + j])))
                hn = gh[b, 2 * hidden + j] + b_hh[2 * hidden + j]
                n = np.tanh(pi[t, b, 2 * hidden + j] + r * hn)
                h[b, j] = (1.0 - z) * n + z * h[b, j]
                rs[t, b, j], zs[t, b, j], ns[t, b, j], ghn[t, b, j] = r, z, n, hn
        hs[t] = h
    return hs, rs, zs, ns, ghn


@_njit
def _gru_backward(
    dhs: np.ndarray,
    hs: np.ndarray,
    h0: np.ndarray,
    rs: np.ndarray,
    zs: np.ndarray,
    ns: np.ndarray,
    ghn: np.ndarray,
    w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients w.r.t. the input projections (T, B, 3H), the recurrent projections
    h W_hh^T + b_hh (T, B, 3H), and h0."""
    steps, batch, hidden = hs.shape
    dpi = np.empty((steps, batch, 3 * hidden), dtype=hs.dtype)
    dgh = np.empty_like(dpi)
    dh = np.zeros((batch, hidden), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        hprev = hs[t - 1] if t > 0 else h0
        for b in range(batch):
            for j in range(hidden):
                g = dh[b, j] + dhs[t, b, j]
                r, z, n = rs[t, b, j], zs[t, b, j], ns[t, b, j]
                dn = g * (1.0 - z) * (1.0 - n * n)
                dz = g * (hprev[b, j] - n) * z * (1.0 - z)
                dr = dn * ghn[t, b, j] * r * (1.0 - r)
                dpi[t, b, j], dpi[t, b, hidden + j], dpi[t, b, 2 * hidden + j] = dr, dz, dn
                dgh[t, b, j], dgh[t, b, hidden + j], dgh[t, b, 2 * hidden + j] = dr, dz, dn * r
                dh[b, j] = g * z  # the direct path through h_t = ... + z * h_{t-1}
        dh = dh + np.dot(dgh[t], w)
    return dpi, dgh, dh


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
    _gru_backward(zeros(steps, batch, h), hs, zeros(batch, h), rs, zs, ns, ghn, zeros(3 * h, h))


# ------------------------------------------------------------------ autograd functions
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _RNNRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, p: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        hs = torch.from_numpy(_rnn_forward(_np(p), _np(h0), _np(w_hh.t())))
        ctx.save_for_backward(hs, h0, w_hh)
        return hs

    @staticmethod
    def backward(ctx: Any, dhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hs, h0, w_hh = ctx.saved_tensors
        da, dh0 = _rnn_backward(_np(dhs), _np(hs), _np(w_hh))
        da_t = torch.from_numpy(da)
        hprev = torch.cat([h0.unsqueeze(0), hs[:-1]])
        dw = da_t.reshape(-1, da_t.shape[-1]).t() @ hprev.reshape(-1, hprev.shape[-1])
        return da_t, torch.from_numpy(dh0), dw


class _GRURecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
        hs, rs, zs, ns, ghn = _gru_forward(_np(pi), _np(h0), _np(w_hh.t()), _np(b_hh))
        out = torch.from_numpy(hs)
        ctx.save_for_backward(out, h0, w_hh, *(torch.from_numpy(a) for a in (rs, zs, ns, ghn)))
        return out

    @staticmethod
    def backward(ctx: Any, dhs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hs, h0, w_hh, rs, zs, ns, ghn = ctx.saved_tensors
        dpi, dgh, dh0 = _gru_backward(_np(dhs), *(_np(a) for a in (hs, h0, rs, zs, ns, ghn, w_hh)))
        dgh_t = torch.from_numpy(dgh)
        hprev = torch.cat([h0.unsqueeze(0), hs[:-1]])
        dw = dgh_t.reshape(-1, dgh_t.shape[-1]).t() @ hprev.reshape(-1, hprev.shape[-1])
        return torch.from_numpy(dpi), torch.from_numpy(dh0), dw, dgh_t.sum(dim=(0, 1))


# Above this many state values per step (batch x hidden), torch's vectorised kernels win:
# they evaluate exp and tanh with SIMD, these loops one value at a time. Measured on this
# project's CPU machine (test_bench_train.py::test_fused_crossover, GRU, fused vs torch):
# 17.8x at 1 x 30, 1.8x at 32 x 64, 1.09x at 64 x 64, 0.81x at 64 x 256.
MAX_STATE_VALUES = 2048


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
