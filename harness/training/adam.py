"""Adam over one flat buffer: torch.optim.Adam's single-tensor update, as one tensor.

Why: on the CPU a small model's Adam step cost about a fifth of its training time (0.38 ms a
step for an RNN of hidden 49 against ~1.3 ms of forward and backward; 2-core Intel Xeon,
torch 2.13.0): torch's CPU default (`foreach=False`) runs ~8 operations per parameter tensor,
each a few microseconds of dispatch, and a model here has six tensors. Here the parameters and
their gradients are views into one buffer each, so a step is ~8 operations whatever the model:
80-125 us. The arithmetic is torch's single-tensor Adam's, the same elementwise operations in
the same order, so the weights it trains are torch's own to the bit on the CPU and torch build
measured (`tests/training/test_adam.py` checks it on the machine it runs on).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


class FlatAdam:
    """`torch.optim.Adam(params, lr)` with its defaults (no weight decay, amsgrad or maximize).

    Taking the parameters moves their values into one buffer (each becomes a view of it, same
    values, same `nn.Parameter` objects) and gives each a gradient that is a view of another:
    backward accumulates into those in place, `zero_grad` zeroes them with one operation."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float) -> None:
        self.params = list(params)
        first = self.params[0]
        size = sum(p.numel() for p in self.params)
        self.flat = torch.empty(size, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.flat)
        self.grads: list[torch.Tensor] = []
        at = 0
        for p in self.params:
            view = self.flat[at : at + p.numel()].view_as(p)
            view.copy_(p.detach())
            p.data = view
            p.grad = self.grad[at : at + p.numel()].view_as(p)
            self.grads.append(p.grad)
            at += p.numel()
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.lr, self.steps = lr, 0

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for p, view in zip(self.params, self.grads, strict=True):
            if p.grad is None or p.grad.data_ptr() != view.data_ptr():  # someone replaced it: take its values
                view.copy_(p.grad if p.grad is not None else torch.zeros_like(view))
                p.grad = view
        beta1, beta2 = BETAS
        self.steps += 1
        # as torch's _single_tensor_adam (not capturable): bias corrections in Python floats
        step_size = self.lr / (1 - beta1**self.steps)
        bias2_sqrt = (1 - beta2**self.steps) ** 0.5
        self.exp_avg.lerp_(self.grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        denom = (self.exp_avg_sq.sqrt() / bias2_sqrt).add_(EPS)
        self.flat.addcdiv_(self.exp_avg, denom, value=-step_size)
