"""The recurrence of B members at once, each with its own weights and its own window length.

Arrays are time-major: inputs `x` are (T, B, R) for T steps (the group's longest window),
B members and R rows (the minibatch); weights are (B, G*H) for the input and the biases
and (B, G*H, H) recurrent, for G gates of H units (the group's largest hidden size). The
input projection x W_ih^T + b is formed step by step inside the loop, not as one
(T, B, R, G*H) array: at these sizes such arrays cost more in memory traffic than the
recurrence itself. Member b's window starts at step
`starts[b]` (T minus its own window); members are ordered by start, so at step t the
members already running are a leading slice `[:k]` and the step computes only them.
Before its start a member's state is zero, exactly as if its sequence began there. Only
the last step's state is returned: the window protocol predicts after the last value.

Each step is a few whole-group torch operations (one batched matrix product, the gate
arithmetic), forward and backward written out by hand: autograd would record ~10 nodes per
step and spend more time on bookkeeping than on arithmetic at these sizes. The same code
runs on any device. Gate orders are PyTorch's (LSTM i, f, g, o; GRU r, z, n), so member
weights are the `nn.RNN`/`nn.LSTM`/`nn.GRU` ones, zero-padded: padded units stay exactly
zero and get exactly zero gradient.

A hand-compiled variant (numba loops over each member's own steps, as `harness.training.fused` does
for one model) was measured and dropped: its scalar tanh/exp (~10 ns each, no SIMD) made it
1.3-2x slower than these vectorised operations at hidden 16 and 16 members.
"""

from __future__ import annotations

import bisect
from typing import Any

import torch

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _tanh(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(x) into `out`, on the CPU as 2 sigmoid(2x) - 1: the same function (1e-16 apart in
    float64, ~1e-7 absolute in float32), and 4x cheaper there, where torch's tanh is not
    vectorised as its sigmoid is."""
    if x.device.type != "cpu":
        return torch.tanh(x, out=out)
    torch.mul(x, 2, out=out)
    return torch.sigmoid(out, out=out).mul_(2).sub_(1)


def _running(starts: list[int], steps: int) -> list[int]:
    """How many members run at each step (members sorted by start)."""
    if starts != sorted(starts):
        raise ValueError("members must be ordered by start (longest window first)")
    return [bisect.bisect_right(starts, t) for t in range(steps)]


def _zeros_where_idle(buf: torch.Tensor, running: list[int]) -> torch.Tensor:
    """Zero the entries of members that have not started at each step (the rest is written)."""
    for t, k in enumerate(running):
        if k < buf.shape[1]:
            buf[t, k:].zero_()
    return buf


class _Grads:
    """Weight gradients per member, accumulated step by step in the backward loop (one small
    batched product each per step: a sum over a (T, B, R, G*H) array at the end would cost
    more in memory traffic than the loop). The input side (W_ih, its bias) and the recurrent
    side (W_hh, and the GRU's separate b_hh) take the gate gradients that reach them."""

    def __init__(self, like: torch.Tensor, gates: int) -> None:
        members, hidden = like.shape[0], like.shape[-1]
        self.w_ih = like.new_zeros(members, gates, 1)
        self.b_ih = like.new_zeros(members, gates)
        self.w_hh = like.new_zeros(members, gates, hidden)
        self.b_hh = like.new_zeros(members, gates)

    def add(self, d_in: torch.Tensor, d_rec: torch.Tensor, x: torch.Tensor, hs: torch.Tensor, t: int) -> None:
        """Step t's share, from the running members' (k, R, G*H) gradients of the input
        projection (d_in) and of h_{t-1} W_hh^T + b_hh (d_rec)."""
        k = d_in.shape[0]
        self.w_ih[:k].baddbmm_(d_in.transpose(1, 2), x[t, :k].unsqueeze(-1))
        self.b_ih[:k] += d_in.sum(dim=1)
        if d_rec is not d_in:
            self.b_hh[:k] += d_rec.sum(dim=1)
        if t > 0:
            self.w_hh[:k].baddbmm_(d_rec.transpose(1, 2), hs[t - 1, :k])


def _projection(x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor, t: int, k: int) -> torch.Tensor:
    """x_t W_ih^T + b for the first k members: (k, R, G*H). The input has one feature."""
    return torch.addcmul(bias[:k].unsqueeze(1), x[t, :k].unsqueeze(-1), w_ih[:k].unsqueeze(1))


class _RNN(torch.autograd.Function):
    """h_t = tanh(x_t W_ih^T + b + h_{t-1} W_hh^T), b = b_ih + b_hh."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor, w_hh: torch.Tensor, running: list[int]
    ) -> torch.Tensor:
        hs = _zeros_where_idle(x.new_empty(x.shape + (w_hh.shape[-1],)), running)
        w_t = w_hh.transpose(1, 2)
        for t, k in enumerate(running):
            if k:
                a = _projection(x, w_ih, bias, t, k)
                _tanh(a if t == 0 else a.baddbmm_(hs[t - 1, :k], w_t[:k]), out=hs[t, :k])
        ctx.save_for_backward(x, hs, w_hh)
        ctx.running = running
        return hs[-1]

    @staticmethod
    def backward(ctx: Any, dlast: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, hs, w_hh = ctx.saved_tensors
        grads = _Grads(dlast, w_hh.shape[1])
        dh = dlast.clone()
        for t in range(len(ctx.running) - 1, -1, -1):
            k = ctx.running[t]
            if k:
                h = hs[t, :k]
                da = dh[:k] * (1 - h * h)
                grads.add(da, da, x, hs, t)
                dh[:k] = torch.bmm(da, w_hh[:k])
        return None, grads.w_ih.squeeze(-1), grads.b_ih, grads.w_hh, None


class _LSTM(torch.autograd.Function):
    """Gates x_t W_ih^T + b + h_{t-1} W_hh^T (b = b_ih + b_hh); c_t = f c_{t-1} + i g; h_t = o tanh(c_t)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor, w_hh: torch.Tensor, running: list[int]
    ) -> torch.Tensor:
        hidden = w_hh.shape[-1]
        shape = x.shape + (hidden,)
        hs = _zeros_where_idle(x.new_empty(shape), running)
        cs = _zeros_where_idle(x.new_empty(shape), running)
        tcs, acts = x.new_empty(shape), x.new_empty(x.shape + (4 * hidden,))  # read only where running
        slopes = torch.empty_like(acts)  # each gate's derivative at its pre-activation, for the backward
        one = x.new_ones(())
        w_t = w_hh.transpose(1, 2)
        for t, k in enumerate(running):
            if not k:
                continue
            g = _projection(x, w_ih, bias, t, k)
            if t > 0:
                g.baddbmm_(hs[t - 1, :k], w_t[:k])
            a = acts[t, :k]
            torch.sigmoid(g, out=a)
            _tanh(g[..., 2 * hidden : 3 * hidden], out=a[..., 2 * hidden : 3 * hidden])
            i, f, gg, o = a.chunk(4, dim=-1)
            d = torch.mul(a, 1 - a, out=slopes[t, :k])  # sigmoid' = s (1 - s)
            torch.addcmul(one, gg, gg, value=-1, out=d[..., 2 * hidden : 3 * hidden])  # tanh' = 1 - g^2
            c = cs[t, :k]
            if t == 0:
                torch.mul(i, gg, out=c)
            else:
                torch.mul(f, cs[t - 1, :k], out=c).addcmul_(i, gg)
            _tanh(c, out=tcs[t, :k])
            torch.mul(o, tcs[t, :k], out=hs[t, :k])
        ctx.save_for_backward(x, hs, cs, tcs, acts, slopes, w_hh)
        ctx.running = running
        return hs[-1]

    @staticmethod
    def backward(ctx: Any, dlast: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, hs, cs, tcs, acts, slopes, w_hh = ctx.saved_tensors
        grads = _Grads(dlast, w_hh.shape[1])
        dh, dc = dlast.clone(), torch.zeros_like(dlast)
        dp = torch.empty_like(acts[0])
        for t in range(len(ctx.running) - 1, -1, -1):
            k = ctx.running[t]
            if not k:
                continue
            i, f, g, o = acts[t, :k].chunk(4, dim=-1)
            tc, dht = tcs[t, :k], dh[:k]
            dct = torch.addcmul(dc[:k], dht * o, 1 - tc * tc)
            di, df, dg, do = dp[:k].chunk(4, dim=-1)  # dL/d(gate), then times its slope
            torch.mul(dct, g, out=di)
            if t == 0:
                df.zero_()  # c_{-1} = 0
            else:
                torch.mul(dct, cs[t - 1, :k], out=df)
            torch.mul(dct, i, out=dg)
            torch.mul(dht, tc, out=do)
            dp[:k].mul_(slopes[t, :k])
            grads.add(dp[:k], dp[:k], x, hs, t)
            dc[:k] = dct * f
            dh[:k] = torch.bmm(dp[:k], w_hh[:k])
        return None, grads.w_ih.squeeze(-1), grads.b_ih, grads.w_hh, None


class _GRU(torch.autograd.Function):
    """PyTorch's GRU: pi = x_t W_ih^T + b_ih; gh = h_{t-1} W_hh^T + b_hh;
    n = tanh(pi_n + r gh_n); h_t = (1 - z) n + z h_{t-1}."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor,
        running: list[int],
    ) -> torch.Tensor:  # fmt: skip
        steps, members, rows = x.shape
        hidden = w_hh.shape[-1]
        gates = 3 * hidden
        hs = _zeros_where_idle(x.new_empty(steps, members, rows, hidden), running)
        rz = x.new_empty(steps, members, rows, 2 * hidden)  # read only where running
        ns, ghn = torch.empty_like(hs), torch.empty_like(hs)
        w_t = w_hh.transpose(1, 2)
        for t, k in enumerate(running):
            if not k:
                continue
            b = b_hh[:k].unsqueeze(1)
            gh = b.expand(k, rows, gates) if t == 0 else torch.baddbmm(b, hs[t - 1, :k], w_t[:k])
            pi = _projection(x, w_ih, b_ih, t, k)
            torch.sigmoid(pi[..., : 2 * hidden] + gh[..., : 2 * hidden], out=rz[t, :k])
            r, z = rz[t, :k].chunk(2, dim=-1)
            ghn[t, :k] = gh[..., 2 * hidden :]
            n = _tanh(torch.addcmul(pi[..., 2 * hidden :], r, ghn[t, :k]), out=ns[t, :k])
            if t == 0:
                torch.mul(1 - z, n, out=hs[t, :k])
            else:
                torch.addcmul(n, z, hs[t - 1, :k] - n, out=hs[t, :k])
        ctx.save_for_backward(x, hs, rz, ns, ghn, w_hh)
        ctx.running = running
        return hs[-1]

    @staticmethod
    def backward(ctx: Any, dlast: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, hs, rz, ns, ghn, w_hh = ctx.saved_tensors
        hidden = hs.shape[-1]
        grads = _Grads(dlast, 3 * hidden)
        dh = dlast.clone()
        dpi, dgh = dlast.new_empty(dlast.shape[:-1] + (3 * hidden,)), dlast.new_empty(dlast.shape[:-1] + (3 * hidden,))
        for t in range(len(ctx.running) - 1, -1, -1):
            k = ctx.running[t]
            if not k:
                continue
            r, z = rz[t, :k].chunk(2, dim=-1)
            n, g = ns[t, :k], dh[:k]
            prev = hs[t - 1, :k] if t > 0 else torch.zeros_like(n)
            dr, dz, dn = dpi[:k].chunk(3, dim=-1)
            torch.mul(g * (1 - z), 1 - n * n, out=dn)
            torch.mul(g * (prev - n), z * (1 - z), out=dz)
            torch.mul(dn * ghn[t, :k], r * (1 - r), out=dr)
            dgh[:k, :, : 2 * hidden] = dpi[:k, :, : 2 * hidden]
            torch.mul(dn, r, out=dgh[:k, :, 2 * hidden :])
            grads.add(dpi[:k], dgh[:k], x, hs, t)
            dh[:k] = torch.baddbmm(g * z, dgh[:k], w_hh[:k])  # the direct path z h_{t-1}, and through gh
        return None, grads.w_ih.squeeze(-1), grads.b_ih, grads.w_hh, grads.b_hh, None


def last_state(cell: str, x: torch.Tensor, prm: dict[str, torch.Tensor], starts: list[int]) -> torch.Tensor:
    """The members' states after the last step, (B, R, H), differentiable in the weights
    `prm` (w_ih, b_ih, b_hh (B, G*H), w_hh (B, G*H, H)), for inputs x (T, B, R)."""
    running = _running(starts, x.shape[0])
    if cell == "gru":
        return _GRU.apply(x, prm["w_ih"], prm["b_ih"], prm["w_hh"], prm["b_hh"], running)
    function = _LSTM if cell == "lstm" else _RNN
    return function.apply(x, prm["w_ih"], prm["b_ih"] + prm["b_hh"], prm["w_hh"], running)
