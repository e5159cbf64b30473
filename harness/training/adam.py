"""Adam over one flat buffer: torch.optim.Adam's single-tensor update, as one tensor.

Why: on the CPU a small model's Adam step is a large share of its training time: torch's CPU
default (`foreach=False`) runs ~8 operations per parameter tensor, each a few microseconds of
dispatch, and a model here has six tensors. Here the parameters and their gradients are views
into one buffer each, so a step is ~8 operations whatever the model
(`tests/benchmarks/test_bench_adam.py` times it against torch's foreach and fused Adam). The
arithmetic is torch's single-tensor Adam's, the same elementwise operations in the same order,
so the weights it trains are torch's own to the bit on the CPU and torch build measured
(`tests/training/test_adam.py` checks it on the machine it runs on).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


class FlatAdam:
    """`torch.optim.Adam(params, lr)` with its defaults (no weight decay, amsgrad or maximize),
    for parameters of one dtype on one device, built after the model's last `.to()`.

    Taking the parameters moves their values into one buffer (each becomes a view of it, same
    values, same `nn.Parameter` objects) and gives each a gradient that is a view of another:
    backward accumulates into those in place, `zero_grad` zeroes them with one operation (a
    parameter without a gradient then counts as a zero gradient and still moves by its
    momentum, where torch's Adam would skip it: every parameter here gets one each step).
    Used on the CPU only: a cuDNN RNN wants its weights in its own contiguous layout."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float) -> None:
        taken = list(params)
        if not taken or len({(p.dtype, p.device) for p in taken}) != 1:
            raise ValueError("FlatAdam takes a non-empty list of parameters of one dtype on one device")
        size = sum(p.numel() for p in taken)
        self.flat = torch.empty(size, dtype=taken[0].dtype, device=taken[0].device)
        self.grad = torch.zeros_like(self.flat)
        self.slots: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []  # (parameter, its value, its gradient)
        at = 0
        for p in taken:
            value = self.flat[at : at + p.numel()].view_as(p)
            value.copy_(p.detach())
            p.data = value
            p.grad = self.grad[at : at + p.numel()].view_as(p)
            self.slots.append((p, value, p.grad))
            at += p.numel()
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.lr, self.steps = lr, 0

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for p, value, grad in self.slots:  # a few data_ptr reads a step: cheap next to the update
            if p.data_ptr() != value.data_ptr():  # the update would miss the model without a word
                raise RuntimeError("a parameter left FlatAdam's buffer (a .to() after the optimizer was built?)")
            if p.grad is None or p.grad.data_ptr() != grad.data_ptr():  # replaced from outside: take its values
                grad.copy_(p.grad if p.grad is not None else torch.zeros_like(grad))
                p.grad = grad
        beta1, beta2 = BETAS
        self.steps += 1
        # as torch's _single_tensor_adam (not capturable): bias corrections in Python floats
        step_size = self.lr / (1 - beta1**self.steps)
        bias2_sqrt = (1 - beta2**self.steps) ** 0.5
        self.exp_avg.lerp_(self.grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        denom = (self.exp_avg_sq.sqrt() / bias2_sqrt).add_(EPS)
        self.flat.addcdiv_(self.exp_avg, denom, value=-step_size)
