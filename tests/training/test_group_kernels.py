"""The members' recurrence (`group_kernels`, under a collection's `members.Members`): its
hand-written backward against finite differences, in float64, with members whose windows
start at different steps."""

from __future__ import annotations

import pytest
import torch

from harness.training import group_kernels

from conftest import CELLS


@pytest.mark.parametrize("cell", CELLS)
def test_hand_written_backward_matches_finite_differences(cell: str) -> None:
    gates = group_kernels.GATES[cell]
    members, rows, steps, hidden = 3, 2, 4, 3
    gen = torch.Generator().manual_seed(0)

    def weight(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.5).requires_grad_(True)

    prm = {"w_ih": weight(members, gates * hidden), "b_ih": weight(members, gates * hidden),
           "b_hh": weight(members, gates * hidden), "w_hh": weight(members, gates * hidden, hidden)}  # fmt: skip
    x = torch.randn(steps, members, rows, generator=gen, dtype=torch.float64)
    starts = [0, 1, 3]  # windows 4, 3 and 1

    def f(w_ih: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        return group_kernels.last_state(cell, x, {"w_ih": w_ih, "b_ih": b_ih, "b_hh": b_hh, "w_hh": w_hh}, starts)

    assert torch.autograd.gradcheck(f, tuple(prm.values()))
