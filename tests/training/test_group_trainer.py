"""Fused trials, the trainer: each member of a group trains exactly as it would alone.

Compared in float64 (`precision = "fp64"`), where two correct orders of the same sums agree
to ~1e-14: a member's every per-epoch training loss and validation MSE, its final metrics
and its trained weights must equal its solo `train.run` within 1e-6 relative. In float32
the same groups agree to 1e-6 - 2e-5 relative after 5 epochs (measured; docs/guide.md).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from harness.series.signals import SignalConfig
from harness.training import group_kernels
from harness.training.group import groupable, pack, train_group
from harness.training.train import RunConfig, TrainResult, run

from conftest import CELLS

RTOL = 1e-6
BASE = RunConfig(signal=SignalConfig(name="short-period", length=300), epochs=5, batch_size=32, precision="fp64")
# Mixed hidden sizes, windows and learning rates: padding in both the hidden units and the
# time steps, last minibatches of different sizes (300 * 0.7 - W training windows), and a
# member (window 30: 6 minibatches, not 7) that takes no Adam step in the epoch's last one.
MEMBERS = [(8, 3, 0.01, 1), (16, 30, 0.003, 2), (5, 7, 0.05, 3)]


def configs(cell: str) -> list[RunConfig]:
    return [replace(BASE, cell=cell, hidden_size=h, window=w, lr=lr, seed=s) for h, w, lr, s in MEMBERS]


def assert_same_run(grouped: TrainResult, solo: TrainResult) -> None:
    assert grouped.epochs_run == solo.epochs_run
    assert grouped.losses == pytest.approx(solo.losses, rel=RTOL)
    assert grouped.val_mse_by_epoch == pytest.approx(solo.val_mse_by_epoch, rel=RTOL)
    assert grouped.metrics.keys() == solo.metrics.keys()
    for key, value in solo.metrics.items():
        assert grouped.metrics[key] == pytest.approx(value, rel=RTOL), key
    assert grouped.model is not None and solo.model is not None
    for (name, a), (_, b) in zip(grouped.model.state_dict().items(), solo.model.state_dict().items(), strict=True):
        assert a.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-12, msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_every_member_trains_exactly_as_alone(cell: str) -> None:
    members = configs(cell)
    train_rows = [round(0.7 * c.signal.length) - c.window for c in members]
    assert len({math.ceil(n / c.batch_size) for n, c in zip(train_rows, members, strict=True)}) > 1
    grouped = train_group(members, "cpu")
    assert len(grouped.members) == len(members) and grouped.seconds > 0
    for config, result in zip(members, grouped.members, strict=True):
        assert result.config == config
        assert_same_run(result, run(config, "cpu"))
    # each member's training time is its share of the group's
    assert sum(r.train_seconds for r in grouped.members) == pytest.approx(grouped.seconds, rel=0.05)


@pytest.mark.parametrize("cell", CELLS)
def test_a_pruned_and_a_diverging_member_leave_the_others_unchanged(cell: str) -> None:
    normal, pruned, wild = configs(cell)
    wild = replace(wild, lr=1e200)  # Adam moves every weight by ~lr: the loss overflows to inf
    stops: list[tuple[int, int]] = []

    def on_epoch(member: int, epoch: int, metrics: dict[str, float]) -> bool:
        stops.append((member, epoch))
        return member == 1 and epoch == 1  # prune member 1 after its second epoch

    grouped = train_group([normal, pruned, wild], "cpu", on_epoch)
    first, second, third = grouped.members
    assert_same_run(first, run(normal, "cpu"))
    assert second.stopped and second.epochs_run == 2 and not second.diverged
    assert second.losses == pytest.approx(run(pruned, "cpu").losses[:2], rel=RTOL)
    assert third.diverged and third.fail_reason is not None and third.fail_reason.startswith("diverged at epoch")
    assert not math.isfinite(third.losses[-1])
    solo_wild = run(wild, "cpu")
    assert solo_wild.diverged and third.epochs_run == solo_wild.epochs_run
    # the pruner heard from every live member each epoch, and from no member after it left
    assert (1, 2) not in stops and all(m != 2 or e < third.epochs_run - 1 for m, e in stops)


def test_members_must_share_everything_but_the_searched_shape() -> None:
    a, b, _ = configs("gru")
    with pytest.raises(ValueError, match="share"):
        train_group([a, replace(b, cell="lstm")], "cpu")
    with pytest.raises(ValueError, match="share"):
        train_group([a, replace(b, batch_size=16)], "cpu")


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


def test_pack_groups_by_shape_within_the_size_and_the_waste_bound() -> None:
    base = replace(BASE, precision="fp32")
    small = [replace(base, cell="gru", hidden_size=h, window=8) for h in (8, 9, 10, 11, 12)]
    big = replace(base, cell="gru", hidden_size=100, window=8)  # padding the others to 100 wastes ~10x
    other = replace(base, cell="lstm", hidden_size=8, window=8)
    seeded = replace(base, cell="gru", hidden_size=8, protocol="seed")
    deep = replace(base, cell="gru", hidden_size=8, num_layers=2)
    items = [*small, big, other, seeded, deep]
    groups = pack(items, size=4)
    assert sorted(i for g in groups for i in g) == list(range(len(items)))  # each config once
    assert all(len(g) <= 4 for g in groups)
    assert [5] in groups and [6] in groups and [7] in groups and [8] in groups  # alone
    assert sorted(len(g) for g in groups if set(g) <= set(range(5))) == [1, 4]
    assert not groupable(seeded) and not groupable(deep)
    assert pack(items, size=1) == [[i] for i in range(len(items))]
    # on the CPU an LSTM past hidden 24 trains faster alone (oneDNN); on a GPU every cell does (cuDNN)
    lstms = [replace(base, cell="lstm", hidden_size=64, window=8) for _ in range(3)]
    assert pack(lstms, size=4) == [[0], [1], [2]] == pack(lstms, size=4, device_type="cuda")
    assert not groupable(lstms[0]) and not groupable(small[0], "cuda") and groupable(small[0])
