"""Fused trials: B members of one cell trained as one batched model, each as alone (exactly in float64).

A trial's model is tiny (a few hundred to ~300k parameters), so training one at a time is
bound by per-operation overhead, not arithmetic. A group holds B members' weights stacked
and zero-padded to the largest hidden size, and runs each minibatch step for all of them in
one recurrence (`group_kernels`). Each member still trains exactly as `train.run` would train
it alone:

- its initial weights are the ones `train.build_model` draws for its seed;
- its minibatches are the ones its own seeded generator orders, with the rows of a short
  last batch padded and weighted zero in its loss;
- its Adam update is torch's Adam (same operations) with its own learning rate and step
  count; a member with no rows left in this step takes no step at all (a zero-gradient Adam
  step would still move its weights through the moments);
- its best-epoch weights and final metrics are selected and computed by the solo code,
  on a solo model holding its unpadded weights (`train.final_metrics`).

Padded hidden units have zero weights, so they stay exactly zero and receive exactly zero
gradient; Adam never moves them. A member that diverges or is stopped (pruned) leaves the
group at the end of that epoch, and the others go on unchanged. Pure torch, no Optuna.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from harness.series.data import Windows, make_windows
from harness.series.signals import make_signal
from harness.training import evaluate, group_kernels, train
from harness.training.adam import BETAS, EPS
from harness.training.device import (
    device_name,
    dtype_for,
    held_numerics,
    process_peak_bytes,
    reset_peak_memory,
    resolve_device,
    run_memory_bytes,
    synchronize,
)
from harness.training.models import RecurrentRegressor, count_parameters, kind
from harness.training.train import RunConfig, TrainResult, build_model, final_metrics

# Padded work (every member at the group's largest hidden size) may be at most this many
# times the members' own work; members that fit no group with others train alone.
MAX_WASTE = 1.5
# Below this hidden size a step's cost is per-operation overhead, not arithmetic: padding
# 8 units to 16 costs nothing measurable, padding 16 to 256 costs 250x the arithmetic.
ARITHMETIC_FROM = 32

OnMemberEpoch = Callable[[int, int, dict[str, float]], bool | None]  # (member, epoch, metrics) -> stop?
PARAMS = ("w_ih", "w_hh", "b_ih", "b_hh", "fc_w", "fc_b")


# On the CPU a group beats its members trained one by one only up to these hidden sizes
# (`tests/benchmarks/test_bench_fuse.py` measures it): past them a solo run's own fused
# recurrence (`fused`, `fast_math`; oneDNN's kernel for an LSTM) wins, while the group's gate
# arithmetic is a dozen memory-bound operations per step.
CPU_MAX_HIDDEN = {"rnn": 32, "gru": 32, "lstm": 24}


def _trainable_together(config: RunConfig) -> bool:
    """What the group trainer handles: the window protocol with one layer."""
    return config.protocol == "window" and config.num_layers == 1


def groupable(config: RunConfig, device_type: str = "cpu") -> bool:
    """The window protocol with one layer, on the CPU, at a hidden size where grouping pays
    (`CPU_MAX_HIDDEN`); other configs train alone. Not on a GPU (`make gpu-check` measures it):
    cuDNN runs a solo cell's whole sequence in one kernel while the group kernels launch
    several per step."""
    return (
        _trainable_together(config) and device_type == "cpu" and config.hidden_size <= CPU_MAX_HIDDEN[kind(config.cell)]
    )


def _shape_free(config: RunConfig) -> RunConfig:
    """What members of one group must share: everything but hidden size, window, lr and seed."""
    return replace(config, hidden_size=1, window=1, lr=1.0, seed=0)


def _cost(hidden: int, window: int, padded_hidden: int | None = None) -> float:
    """Work per row of one member in one minibatch: its steps times the recurrent product
    at the hidden size the group pads it to."""
    h = max(padded_hidden or hidden, ARITHMETIC_FROM)
    return window * h * h


# An epoch's time relative to the RNN's at one size, trained alone on one thread: enough to
# order work longest first, not to predict a time.
CELL_WEIGHT = {"rnn": 1.0, "lstm": 2.0, "gru": 2.5}


def estimated_work(configs: Sequence[RunConfig]) -> float:
    """What training `configs` as one of `pack`'s groups (or one alone) costs, in arbitrary
    units: each member's epochs x window x squared (padded) hidden size x its cell's weight.
    For running the longest work first, so that the last to finish is short."""
    h = max(c.hidden_size for c in configs)
    return sum(c.epochs * _cost(c.hidden_size, c.window, h) * CELL_WEIGHT[kind(c.cell)] for c in configs)


def pack(
    configs: Sequence[RunConfig], size: int, device_type: str = "cpu", max_waste: float = MAX_WASTE
) -> list[list[int]]:
    """Indices of `configs` in groups of at most `size` members that may train together on a
    device of `device_type`, each within `max_waste` padded work; members alone train solo."""
    buckets: dict[RunConfig, list[int]] = {}
    groups: list[list[int]] = []
    for i, config in enumerate(configs):
        if groupable(config, device_type) and size > 1:
            buckets.setdefault(_shape_free(config), []).append(i)
        else:
            groups.append([i])
    for members in buckets.values():
        members.sort(key=lambda i: configs[i].hidden_size)
        current: list[int] = []
        for i in members:
            trial = current + [i]
            h = max(configs[j].hidden_size for j in trial)
            useful = sum(_cost(configs[j].hidden_size, configs[j].window) for j in trial)
            padded = sum(_cost(configs[j].hidden_size, configs[j].window, h) for j in trial)
            if current and (len(trial) > size or padded > max_waste * useful):
                groups.append(current)
                trial = [i]
            current = trial
        groups.append(current)
    return sorted(groups)


@dataclass(frozen=True)
class GroupResult:
    members: list[TrainResult]  # in the order of the configs given
    seconds: float | None  # the group's training wall time (each member's train_seconds is its share); None: alone

    def attrs(self, group_id: int | str, members: Sequence[int] = ()) -> dict[str, object]:
        """What each member records about its group (nothing for a run trained alone): its id,
        size and wall time, and the members' trial numbers, which re-form it (`harness
        weights` gives each member's own trained weights, its metrics exactly)."""
        if self.seconds is None:
            return {}
        found = {"group_id": group_id, "group_size": len(self.members), "group_seconds": self.seconds}
        return found | ({"group_members": list(members)} if members else {})


@dataclass
class _Member:
    index: int  # position in the caller's list
    config: RunConfig
    data: Windows
    gen: torch.Generator
    losses: list[float] = field(default_factory=list)
    val_curve: list[float] = field(default_factory=list)
    best_val: float = math.inf
    seconds: float = 0.0
    diverged: bool = False
    stopped: bool = False
    reason: str | None = None

    @property
    def n_train(self) -> int:
        return self.data.splits.train.stop - self.data.splits.train.start


class _Stack:
    """The live members' weights, zero-padded, in one (B, P) tensor, with their Adam state.

    One flat tensor (the parameters are views of it) makes the optimizer a handful of
    operations per step for every member and every parameter at once (as HFTA's fused
    optimizers), instead of a few per parameter tensor."""

    def __init__(self, models: list[RecurrentRegressor], lrs: list[float], hidden: int, gates: int) -> None:
        g = gates
        self.hidden, self.gates = hidden, gates
        # name -> (shape in the stack, the solo tensor's view of the padded block of hidden size h)
        self.layout: dict[str, tuple[tuple[int, ...], Callable[[int], tuple[int, ...]]]] = {
            "w_ih": ((g, hidden), lambda h: (g, h)),
            "w_hh": ((g, hidden, hidden), lambda h: (g, h, h)),
            "b_ih": ((g, hidden), lambda h: (g, h)),
            "b_hh": ((g, hidden), lambda h: (g, h)),
            "fc_w": ((hidden,), lambda h: (h,)),
            "fc_b": ((1,), lambda h: (1,)),
        }
        self.flat = models[0].fc.weight.new_zeros(len(models), sum(math.prod(s) for s, _ in self.layout.values()))
        for row, model in enumerate(models):
            for name, tensor in _solo_tensors(model).items():
                block = self._block(self.flat[row], name, model.rnn.hidden_size)
                block.copy_(tensor.detach().reshape(block.shape))
        self.flat.requires_grad_(True)
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.steps = torch.zeros(len(models), dtype=torch.float64)
        self.lr = torch.tensor(lrs, dtype=torch.float64)
        self.best = self.flat.detach().clone()

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, at = {}, 0
        for name, (shape, _) in self.layout.items():
            size = math.prod(shape)
            out[name] = flat[..., at : at + size].unflatten(-1, shape)
            at += size
        return out

    def _block(self, row: torch.Tensor, name: str, h: int) -> torch.Tensor:
        """The part of one member's row that its solo tensor of hidden size h fills."""
        return self._views(row)[name][tuple(slice(0, n) for n in self.layout[name][1](h))]

    def params(self) -> dict[str, torch.Tensor]:
        """Views of the live weights for the forward pass: w_ih, b_ih, b_hh, fc_w (B, G*H or H),
        w_hh (B, G*H, H), fc_b (B, 1)."""
        v = self._views(self.flat)
        b, gh = self.flat.shape[0], self.gates * self.hidden
        return {**v, "w_ih": v["w_ih"].reshape(b, gh), "b_ih": v["b_ih"].reshape(b, gh),
                "b_hh": v["b_hh"].reshape(b, gh), "w_hh": v["w_hh"].reshape(b, gh, self.hidden)}  # fmt: skip

    def keep(self, rows: list[int]) -> None:
        """Drop the members not in `rows` (positions in the stack)."""
        index = torch.tensor(rows, device=self.flat.device)
        self.flat = self.flat.detach().index_select(0, index).requires_grad_(True)
        self.exp_avg, self.exp_avg_sq, self.best = (
            t.index_select(0, index) for t in (self.exp_avg, self.exp_avg_sq, self.best)
        )
        self.steps, self.lr = self.steps[rows], self.lr[rows]

    @torch.no_grad()
    def adam_step(self, active: list[bool]) -> None:
        """torch.optim.Adam's single-tensor update (as `adam.FlatAdam`'s for one model), member
        by member in one vectorised pass: the same operations in the same order, each member's
        own lr and step count; members not `active` keep their weights and moments untouched."""
        beta1, beta2 = BETAS
        everyone = all(active)
        self.steps += torch.tensor(active, dtype=torch.float64)
        bias1 = 1 - beta1**self.steps
        bias2_sqrt = (1 - beta2**self.steps) ** 0.5
        step_size = (self.lr / bias1).to(self.flat).unsqueeze(1)
        p, grad = self.flat, self.flat.grad
        assert grad is not None
        m = self.exp_avg.lerp(grad, 1 - beta1)
        v = self.exp_avg_sq.mul(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v.sqrt() / bias2_sqrt.to(p).unsqueeze(1)).add_(EPS)
        update = step_size * m / denom
        if everyone:
            self.exp_avg, self.exp_avg_sq = m, v
            p.sub_(update)
        else:
            live = torch.tensor(active, device=p.device).unsqueeze(1)
            self.exp_avg = torch.where(live, m, self.exp_avg)
            self.exp_avg_sq = torch.where(live, v, self.exp_avg_sq)
            p.sub_(torch.where(live, update, 0))
        p.grad = None

    @torch.no_grad()
    def remember(self, improved: torch.Tensor) -> None:
        self.best = torch.where(improved.unsqueeze(1), self.flat, self.best)

    @torch.no_grad()
    def unpadded(self, row: int, model: RecurrentRegressor, best: bool) -> RecurrentRegressor:
        """Write stack row `row`'s (best) weights into `model`, a solo model of its shape."""
        source = (self.best if best else self.flat)[row]
        for name, tensor in _solo_tensors(model).items():
            tensor.copy_(self._block(source, name, model.rnn.hidden_size).reshape(tensor.shape))
        return model


def _solo_tensors(model: RecurrentRegressor) -> dict[str, torch.Tensor]:
    """A solo model's parameters under the stack's names (PyTorch's single-layer names)."""
    names = {"w_ih": "rnn.weight_ih_l0", "w_hh": "rnn.weight_hh_l0", "b_ih": "rnn.bias_ih_l0",
             "b_hh": "rnn.bias_hh_l0", "fc_w": "fc.weight", "fc_b": "fc.bias"}  # fmt: skip
    params = dict(model.named_parameters())
    return {short: params[full] for short, full in names.items()}


def _predict(stack: _Stack, cell: str, x: torch.Tensor, starts: list[int]) -> torch.Tensor:
    """Each member's predictions for its rows of x (B, R, T): the prediction after the last value."""
    prm = stack.params()
    h = group_kernels.last_state(cell, x.permute(2, 0, 1).contiguous(), prm, starts)
    return (h * prm["fc_w"].unsqueeze(1)).sum(-1) + prm["fc_b"]


def _padded(members: list[_Member], part: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's windows of one split, left-padded to `steps` (B, N, T), and targets (B, N)."""
    rows = max(getattr(m.data.splits, part).stop - getattr(m.data.splits, part).start for m in members)
    first = members[0].data.x
    x = first.new_zeros(len(members), rows, steps)
    y = first.new_zeros(len(members), rows)
    for k, m in enumerate(members):
        sl = getattr(m.data.splits, part)
        xs = m.data.x[sl]
        x[k, : len(xs), steps - xs.shape[1] :] = xs
        y[k, : len(xs)] = m.data.y[sl]
    return x, y


def train_members(
    configs: Sequence[RunConfig],
    device: str | torch.device = "auto",
    on_epoch: OnMemberEpoch | None = None,
    objective: str = "val_mse",
) -> GroupResult:
    """One of `pack`'s groups: a single config trains alone (`train.run`, each epoch's metrics
    carrying `objective`), several as a group."""
    if len(configs) > 1:
        return train_group(configs, device, on_epoch)
    alone = None if on_epoch is None else (lambda epoch, metrics: on_epoch(0, epoch, metrics))
    # train.run looked up on the module: tests patch it
    return GroupResult([train.run(configs[0], device, alone, objective)], None)


def train_group(
    configs: Sequence[RunConfig],
    device: str | torch.device = "auto",
    on_epoch: OnMemberEpoch | None = None,
) -> GroupResult:
    """Train `configs` (one cell, `groupable`, sharing all but hidden size, window, lr and seed)
    as one group; returns each member's result as `train.run` would."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    base = configs[0]
    if not all(_trainable_together(c) and _shape_free(c) == _shape_free(base) for c in configs):
        raise ValueError("a group's members must share all settings but hidden_size, window, lr and seed")
    with held_numerics(base.precision, base.deterministic):
        return _train(configs, base, dev, on_epoch)


def _train(
    configs: Sequence[RunConfig], base: RunConfig, dev: torch.device, on_epoch: OnMemberEpoch | None
) -> GroupResult:
    held = reset_peak_memory(dev)
    series = make_signal(base.signal, train_frac=base.train_frac)
    dtype = dtype_for(base.precision)
    members = [
        _Member(i, c, make_windows(series, c.window, dev, c.train_frac, c.val_frac, dtype),
                torch.Generator().manual_seed(c.seed))
        for i, c in enumerate(configs)
    ]  # fmt: skip
    models = [build_model(c, dev) for c in configs]  # each member's solo initial weights
    gates = group_kernels.GATES[kind(base.cell)]
    hidden = max(c.hidden_size for c in configs)
    steps = max(c.window for c in configs)
    # Members in the stack by window, longest first: at each step the members whose window
    # has started are then a leading slice of the stack.
    live = sorted(range(len(members)), key=lambda i: -configs[i].window)
    stack = _Stack([models[i] for i in live], [configs[i].lr for i in live], hidden, gates)
    x_train, y_train = _padded(members, "train", steps)
    x_val, y_val = _padded(members, "val", steps)
    has_val = x_val.shape[1] > 0
    callback_seconds = 0.0
    synchronize(dev)
    t_start = time.perf_counter()
    for epoch in range(base.epochs):
        t_epoch, cb_epoch = time.perf_counter(), callback_seconds
        group = [members[i] for i in live]
        starts = [steps - m.config.window for m in group]
        losses = _train_epoch(stack, group, base, x_train[live], y_train[live], starts)
        val = None
        if has_val:
            with torch.no_grad():
                val = _predict(stack, kind(base.cell), x_val[live], starts)
        improved = torch.zeros(len(live), dtype=torch.bool, device=dev)
        leaving: set[int] = set()
        for k, m in enumerate(group):
            metrics = {"loss": float(losses[k])}
            if val is not None:
                metrics["val_mse"] = evaluate.mse(val[k], y_val[live[k]])
                m.val_curve.append(metrics["val_mse"])
            m.losses.append(metrics["loss"])
            if not all(math.isfinite(v) for v in metrics.values()):
                detail = ", ".join(f"{key}={v}" for key, v in metrics.items())
                m.diverged, m.reason = True, f"diverged at epoch {epoch}: {detail}"
                leaving.add(k)
                continue
            if val is not None and metrics["val_mse"] < m.best_val:
                m.best_val = metrics["val_mse"]
                improved[k] = True
            if on_epoch is not None:
                t_cb = time.perf_counter()
                stop = on_epoch(m.index, epoch, metrics)
                callback_seconds += time.perf_counter() - t_cb
                if stop:
                    m.stopped = True
                    leaving.add(k)
        stack.remember(improved)
        synchronize(dev)
        # The epoch's training time is shared equally by the members that trained in it.
        share = (time.perf_counter() - t_epoch - (callback_seconds - cb_epoch)) / len(group)
        for m in group:
            m.seconds += share
        for k in sorted(leaving, reverse=True):
            _finish(members[live[k]], stack, k, models, has_val)
        if leaving:
            rows = [k for k in range(len(live)) if k not in leaving]
            live = [live[k] for k in rows]
            if not live:
                break
            stack.keep(rows)
    for k, i in enumerate(live):
        _finish(members[i], stack, k, models, has_val)
    wall = time.perf_counter() - t_start - callback_seconds
    return GroupResult([_result(m, models[m.index], dev, held) for m in members], wall)


def _finish(member: _Member, stack: _Stack, row: int, models: list[RecurrentRegressor], has_val: bool) -> None:
    """Move a member's (best) weights from the stack into its solo model, before it leaves. A
    member that diverged before any good epoch keeps its initial weights (a solo run would
    hold NaNs); neither is kept as a trial's weights."""
    best = has_val and math.isfinite(member.best_val)
    if best or not member.diverged:
        stack.unpadded(row, models[member.index], best=best)


def _result(m: _Member, model: RecurrentRegressor, dev: torch.device, held: int) -> TrainResult:
    c = m.config
    epochs_run = len(m.losses)
    kept = not m.diverged or math.isfinite(m.best_val)
    return TrainResult(
        config=c,
        device=str(dev),
        device_name=device_name(dev),
        n_params=count_parameters(model),
        losses=m.losses,
        val_mse_by_epoch=m.val_curve,
        epochs_run=epochs_run,
        train_seconds=m.seconds,
        seconds_per_epoch=m.seconds / max(epochs_run, 1),
        samples_per_second=m.n_train * epochs_run / m.seconds if m.seconds > 0 else 0.0,
        run_memory_bytes=run_memory_bytes(dev, held),  # the group's: members share one process
        process_peak_bytes=process_peak_bytes(dev),
        metrics=final_metrics(model, m.data, c.protocol, c) if kept else {},
        diverged=m.diverged,
        stopped=m.stopped,
        fail_reason=m.reason,
        model=model,
    )


def _train_epoch(
    stack: _Stack,
    group: list[_Member],
    base: RunConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    starts: list[int],
) -> torch.Tensor:
    """One epoch of every live member; returns each one's mean training MSE (as `train._window_epoch`)."""
    dev = x.device
    bs = base.batch_size
    orders = [torch.randperm(m.n_train, generator=m.gen) for m in group]  # each member's solo order
    batches = max(math.ceil(m.n_train / bs) for m in group)
    index = torch.zeros(len(group), batches * bs, dtype=torch.long)
    valid = torch.zeros(len(group), batches * bs, dtype=torch.bool)
    for k, order in enumerate(orders):
        index[k, : len(order)], valid[k, : len(order)] = order, True
    index, valid = index.to(dev), valid.to(dev)
    rows = torch.arange(len(group), device=dev).unsqueeze(1)
    total = x.new_zeros(len(group))
    for b in range(batches):
        idx, mask = index[:, b * bs : (b + 1) * bs], valid[:, b * bs : (b + 1) * bs]
        count = mask.sum(1)
        pred = _predict(stack, kind(base.cell), x[rows, idx], starts)
        err = torch.where(mask, (pred - y[rows, idx]) ** 2, 0)
        loss = err.sum(1) / count.clamp(min=1)
        loss.sum().backward()  # members' parameters are disjoint: each gets its own gradient
        stack.adam_step([m.n_train > b * bs for m in group])  # on the host: no device sync
        total += loss.detach() * count
    return total / torch.tensor([m.n_train for m in group], device=dev)
