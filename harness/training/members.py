"""Many recurrent regressors of one cell and size as one module: a member axis in front.

A forecasting collection fitted locally is one small model per series, all with the same
shape: as one module their steps are batched matrix products over the members (`torch.bmm`),
one dispatch for all of them, on the CPU or a GPU alike. Each member computes exactly what
torch's `nn.RNN`/`nn.GRU`/`nn.LSTM` and `nn.Linear` compute for it alone (the same equations,
gate order and biases; `tests/training/test_collection.py` checks a member against torch's
layers), starts from the weights those layers draw for the run's seed, and is updated by
`MemberAdam`, torch's Adam per member, which leaves a member with nothing to learn from in a
step untouched, as a model trained alone would take no step.

Pure torch, no Optuna.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.training import group_kernels
from harness.training.adam import BETAS, EPS
from harness.training.models import RecurrentRegressor, kind

NAMES = ("w_ih", "w_hh", "b_ih", "b_hh", "fc_w", "fc_b")


# On the CPU the members run in chunks: a chunk's gate-sized arrays (rows x gates x members)
# of about CHUNK_BYTES stay in the cache between a step's operations, where those of a
# thousand members would not (`make bench`: test_bench_collection's `group-one-chunk` arm runs
# unchunked). MIN_CHUNK is a chosen floor: much smaller chunks spend more on dispatches than
# the cache saves. Each member computes the same in any chunk up to float rounding (the
# batched product may block its work differently for another batch count). A GPU takes every
# member at once.
CHUNK_BYTES = 1 << 21
MIN_CHUNK = 128


def chunk_size(x: torch.Tensor, gates: int) -> int:
    """Members per chunk for inputs x [B, n, W] and `gates` gate units (G*H)."""
    if x.device.type != "cpu":
        return x.shape[0]
    return max(MIN_CHUNK, CHUNK_BYTES // max(1, x.shape[1] * gates * x.element_size()))


class Members(nn.Module):
    """B one-layer regressors of `cell`, hidden size H, input size 1, stacked: `w_ih` [B, 1, G*H],
    `w_hh` [B, H, G*H], `b_ih` and `b_hh` [B, 1, G*H], `fc_w` [B, H, 1], `fc_b` [B, 1, 1]."""

    w_ih: nn.Parameter
    w_hh: nn.Parameter
    b_ih: nn.Parameter
    b_hh: nn.Parameter
    fc_w: nn.Parameter
    fc_b: nn.Parameter

    def __init__(
        self, cell: str, hidden_size: int, members: int, seed: int, dtype: torch.dtype, chunk: int | None = None
    ) -> None:
        super().__init__()
        self.cell, self.kind, self.hidden_size = cell, kind(cell), hidden_size
        self.chunk = chunk  # members per chunk; None: `chunk_size`
        with torch.random.fork_rng(devices=[]):  # the caller's generator is left as it was
            torch.default_generator.manual_seed(seed)  # the CPU's, where the weights are drawn; CUDA's untouched
            one = RecurrentRegressor(cell, 1, hidden_size, fused=False).to(dtype)
        w_ih, w_hh, b_ih, b_hh = (p.detach() for p in one.rnn.all_weights[0])
        start = {
            "w_ih": w_ih.T,
            "w_hh": w_hh.T,
            "b_ih": b_ih[None],
            "b_hh": b_hh[None],
            "fc_w": one.fc.weight.detach().T,
            "fc_b": one.fc.bias.detach()[None],
        }
        for name in NAMES:  # every member starts where its model alone would start with this seed
            self.register_parameter(name, nn.Parameter(start[name].expand(members, *start[name].shape).clone()))

    @property
    def members(self) -> int:
        return int(self.w_hh.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, n, W] (n windows of W values per member) -> the prediction after each window's
        last value, [B, n]. The recurrence is `group_kernels`' (each step a few whole-group
        operations, forward and backward written out), over one chunk of members at a time."""
        prm = {"w_ih": self.w_ih[:, 0], "b_ih": self.b_ih[:, 0], "b_hh": self.b_hh[:, 0],
               "w_hh": self.w_hh.transpose(1, 2)}  # fmt: skip
        steps, size = x.permute(2, 0, 1), self.chunk or chunk_size(x, prm["w_hh"].shape[1])
        states = [
            group_kernels.last_state(self.kind, steps[:, a : a + size].contiguous(),
                                     {k: v[a : a + size] for k, v in prm.items()}, [0] * min(size, self.members - a))
            for a in range(0, self.members, size)
        ]  # fmt: skip
        h = states[0] if len(states) == 1 else torch.cat(states)
        return torch.baddbmm(self.fc_b, h, self.fc_w).squeeze(-1)

    def member(self, index: int) -> RecurrentRegressor:
        """Member `index` as a plain model (torch's own layers), e.g. to check or keep it."""
        dtype = self.w_hh.dtype
        model = RecurrentRegressor(self.cell, 1, self.hidden_size, fused=False).to(self.w_hh.device, dtype)
        w_ih, w_hh, b_ih, b_hh = model.rnn.all_weights[0]
        with torch.no_grad():
            w_ih.copy_(self.w_ih[index].T)
            w_hh.copy_(self.w_hh[index].T)
            b_ih.copy_(self.b_ih[index, 0])
            b_hh.copy_(self.b_hh[index, 0])
            model.fc.weight.copy_(self.fc_w[index].T)
            model.fc.bias.copy_(self.fc_b[index, 0])
        return model


class MemberAdam:
    """torch.optim.Adam (its defaults) over `Members`, each member with its own step count:
    `step(active)` updates only the members marked active, so a member whose series had no
    window left in this minibatch takes no step, as it would not alone."""

    def __init__(self, model: Members, lr: float) -> None:
        self.params = [getattr(model, name) for name in NAMES]
        self.lr = lr
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.steps = torch.zeros(model.members, dtype=model.w_hh.dtype, device=model.w_hh.device)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        b1, b2 = BETAS
        self.steps += active
        steps = self.steps.clamp(min=1)
        correction1 = 1 - b1**steps
        root2 = torch.sqrt(1 - b2**steps)
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            on = active.view(shape).bool()
            g = p.grad
            m.copy_(torch.where(on, m * b1 + g * (1 - b1), m))  # torch: exp_avg.lerp_(grad, 1 - beta1)
            v.copy_(torch.where(on, v * b2 + g * g * (1 - b2), v))
            denom = v.sqrt() / root2.view(shape) + EPS
            p.copy_(torch.where(on, p - (self.lr / correction1).view(shape) * m / denom, p))
