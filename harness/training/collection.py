"""Training on a forecasting collection: one configuration fitted to every series at once.

Two scopes (`CollectionRunConfig.scope`):

- `local`: one model per series, all with the trial's hyperparameters and seed, trained as one
  `members.Members` module whose members are the series. Each member sees only its own
  series' windows, in its own shuffled order, takes an Adam step only when its minibatch
  holds a window, and keeps the weights of its own best validation epoch: what it would do
  alone (`tests/training/test_collection.py` trains members alone and compares).
- `global`: one model trained on the windows of every series, shuffled together, its best
  epoch chosen by the mean validation error over the series. Its minibatch is `batch_size`
  windows per series (batch_size x S), so an epoch takes as many steps, each over as many
  windows, as a local group's: the two scopes get the same effort.

The competition's protocol (`series.collections`): each series' training part `x` is cut into
a fit part and its last h values, which validate; the test part `xx` is only scored, after a
forecast h steps ahead from the end of `x`. A window of W past values predicts the next value;
h steps are a free-running rollout (each prediction fed back as the newest value). Values are
seen relative to the window's last value and divided by the series' scale, the mean absolute
change of its fit part (the denominator of a yearly MASE): a model learns changes in units any
series shares, from statistics of its own fit part only, so neither the validation nor the
test values reach the training. A series shorter than a window is padded on the left with its
first value.

The objective is the mean validation sMAPE over the series: the M3 competition's measure, and
bounded (at most 200 per series), so no one series with a nearly constant fit part dominates
the mean as it can a MASE's. MASE is recorded beside it, per series and averaged.

Pure torch and numpy, no Optuna.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from harness.constraints import Boolean, Integer, OneOf, Real, check_fields, setting
from harness.series.collections import CollectionConfig, CompetitionSeries, load
from harness.series.competition_metrics import mase, smape, smape_rows
from harness.training.device import (
    PRECISION,
    device_name,
    dtype_for,
    held_numerics,
    process_peak_bytes,
    reset_peak_memory,
    resolve_device,
    run_memory_bytes,
)
from harness.training.loop import Epochs, OnEpoch
from harness.training.members import MemberAdam, Members
from harness.training.models import CELL

SCOPES = ("local", "global")
SCOPE = OneOf(SCOPES, "scope")
OBJECTIVE = "val_smape"


@dataclass(frozen=True)
class CollectionRunConfig:
    """Everything that determines one training run over a collection; stored with every trial."""

    collection: CollectionConfig = field(default_factory=CollectionConfig)
    scope: str = setting("local", SCOPE)
    cell: str = setting("gru", CELL)
    hidden_size: int = setting(16, Integer(1))
    window: int = setting(12, Integer(1))
    lr: float = setting(0.01, Real(0, low_open=True))
    epochs: int = setting(30, Integer(1))
    batch_size: int = setting(32, Integer(1))
    seed: int = setting(0, Integer())
    precision: str = setting("fp32", PRECISION)
    deterministic: bool = setting(True, Boolean())

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionRunConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("collection"), dict):
            values["collection"] = CollectionConfig(**values["collection"])
        return cls(**values)


@dataclass
class CollectionResult:
    """What a run over a collection gives: per-epoch curves, the mean metrics over its series,
    and each series' own (in the collection's order), which ranks across series need."""

    config: CollectionRunConfig
    device: str
    device_name: str
    n_params: int  # every model's parameters together (local: a model per series)
    losses: list[float]  # per epoch: mean training MSE over the series, in the scaled units
    val_by_epoch: list[float]  # per epoch: mean validation sMAPE
    epochs_run: int
    train_seconds: float
    seconds_per_epoch: float
    samples_per_second: float
    run_memory_bytes: int
    process_peak_bytes: int
    metrics: dict[str, float]  # val_smape, val_mase, test_smape, test_mase: means over the series
    series: dict[str, list[Any]]  # id, and each metric per series
    forecasts: np.ndarray  # [series, h] test forecasts, the series' own units
    diverged: bool = False
    stopped: bool = False
    fail_reason: str | None = None
    model: Any = None  # not kept as a trial's weights (a collection's models are not one `RecurrentRegressor`)


@dataclass(frozen=True)
class Prepared:
    """A collection's series as the run sees them: windows of the fit part, their scales."""

    series: list[CompetitionSeries]
    scale: np.ndarray  # [S] mean absolute change of each fit part (1 where it is 0)
    x: torch.Tensor  # [S, M, W] each series' windows, relative and scaled, left-aligned
    y: torch.Tensor  # [S, M] their targets, likewise
    count: torch.Tensor  # [S] windows each series has (the rest of its row is padding)


def fit_scale(fit: np.ndarray) -> float:
    """The scale a series is seen in: the mean absolute change of its fit part."""
    changes = np.abs(np.diff(fit))
    scale = float(changes.mean()) if len(changes) else 0.0
    return scale if scale > 0 and math.isfinite(scale) else 1.0


def _history(values: np.ndarray, window: int) -> np.ndarray:
    """`values` with `window` copies of its first value in front, so every value from the
    second on has a full window before it."""
    return np.concatenate([np.full(window, values[0]), values])


def prepare(series: list[CompetitionSeries], window: int, device: torch.device, dtype: torch.dtype) -> Prepared:
    """Each series' training windows: every value of its fit part after the first is a target,
    the W values before it (padded) its window; both relative to the window's last value and
    divided by the series' scale."""
    fits = [s.validation_split()[0] for s in series]
    scale = np.array([fit_scale(f) for f in fits])
    counts = [len(f) - 1 for f in fits]
    x = np.zeros((len(series), max(counts), window))
    y = np.zeros((len(series), max(counts)))
    for i, (fit, n) in enumerate(zip(fits, counts, strict=True)):
        padded = _history(fit, window)
        rows = np.lib.stride_tricks.sliding_window_view(padded, window)[1 : n + 1]  # windows ending before each target
        last = rows[:, -1:]
        x[i, :n] = (rows - last) / scale[i]
        y[i, :n] = (fit[1:] - last[:, 0]) / scale[i]

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    return Prepared(series, scale, tensor(x), tensor(y), torch.as_tensor(counts, device=device))


@torch.no_grad()
def forecast(model: Members, history: list[np.ndarray], scale: np.ndarray, h: int, window: int) -> np.ndarray:
    """h values after the end of each series' `history`, free-running: [S, h] in its units.
    A model with one member (global) forecasts every series; otherwise member i series i."""
    dtype, device = model.w_hh.dtype, model.w_hh.device
    last = np.stack([_history(v, window)[-window:] for v in history])  # [S, W]
    out = np.empty((len(history), h))
    for step in range(h):
        anchor = last[:, -1:]
        x = torch.as_tensor((last - anchor) / scale[:, None], dtype=dtype, device=device)
        x = x[None] if model.members == 1 else x[:, None]  # global: series are its windows; local: one each
        change = model(x).reshape(-1).double().cpu().numpy()
        out[:, step] = anchor[:, 0] + change * scale
        last = np.concatenate([last[:, 1:], out[:, step : step + 1]], axis=1)
    return out


def _scores(series: list[CompetitionSeries], forecasts: np.ndarray, part: str) -> dict[str, np.ndarray]:
    """sMAPE and MASE of each series' forecast of its validation (`val`) or test part; MASE
    scaled by the in-sample seasonal naive of what came before it (the fit part, or all of x)."""
    smapes, mases = [], []
    for s, f in zip(series, forecasts, strict=True):
        fit, val = s.validation_split()
        before, truth = (fit, val) if part == "val" else (s.x, s.xx)
        smapes.append(smape(f, truth))
        mases.append(mase(f, truth, before, s.period))
    return {"smape": np.array(smapes), "mase": np.array(mases)}


class _Batches:
    """Minibatch indices: each member's own shuffle of its windows (local), or one shuffle of
    every window of every series (global); `steps` per epoch, each `[B, batch]` with a mask."""

    def __init__(self, data: Prepared, scope: str, batch: int, seed: int, device: torch.device) -> None:
        counts = data.count.tolist()
        self.data, self.scope, self.device = data, scope, device
        self.batch = batch if scope == "local" else batch * len(counts)
        self.members = len(counts) if scope == "local" else 1
        self.gens = [torch.Generator().manual_seed(seed) for _ in range(self.members)]
        if scope == "global":  # every window of every series, as (series, position) in one flat list
            width = data.x.shape[1]
            self.flat = torch.cat([torch.full((n,), i) * width + torch.arange(n) for i, n in enumerate(counts)])
        self.counts = counts if scope == "local" else [len(self.flat)]

    def epoch(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each step's (rows [B, batch] into the flattened windows, mask [B, batch])."""
        orders = [torch.randperm(n, generator=g) for n, g in zip(self.counts, self.gens, strict=True)]
        steps = -(-max(self.counts) // self.batch)
        table = torch.full((self.members, steps * self.batch), -1, dtype=torch.long)  # -1: no window left
        padded = torch.nn.utils.rnn.pad_sequence(orders, batch_first=True, padding_value=-1)
        table[:, : padded.shape[1]] = padded
        mask = table >= 0
        if self.scope == "local":
            rows = table + torch.arange(self.members)[:, None] * self.data.x.shape[1]
        else:
            rows = self.flat[table.clamp(min=0)]
        rows = torch.where(mask, rows, 0).to(self.device)
        mask = mask.to(torch.float32).to(self.device)
        return [(rows[:, k * self.batch : (k + 1) * self.batch], mask[:, k * self.batch : (k + 1) * self.batch])
                for k in range(steps)]  # fmt: skip


def run(
    config: CollectionRunConfig,
    device: str | torch.device = "auto",
    on_epoch: OnEpoch | None = None,
    series: list[CompetitionSeries] | None = None,
) -> CollectionResult:
    """Train `config` on its collection (or on `series`, already loaded) and score its best
    weights: validation each epoch (reported to `on_epoch`, which may stop the run), test once."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    with held_numerics(config.precision, config.deterministic):
        return _run(config, dev, on_epoch, series if series is not None else load(config.collection))


def _run(
    config: CollectionRunConfig, dev: torch.device, on_epoch: OnEpoch | None, series: list[CompetitionSeries]
) -> CollectionResult:
    held = reset_peak_memory(dev)
    dtype = dtype_for(config.precision)
    data = prepare(series, config.window, dev, dtype)
    members = len(series) if config.scope == "local" else 1
    model = Members(config.cell, config.hidden_size, members, config.seed, dtype).to(dev)
    optimizer = MemberAdam(model, config.lr)
    batches = _Batches(data, config.scope, config.batch_size, config.seed, dev)
    flat_x = data.x.reshape(-1, config.window)
    flat_y = data.y.reshape(-1)
    fits, val_parts = zip(*(s.validation_split() for s in series), strict=True)
    fits, val_truth = list(fits), np.stack(val_parts)  # every series of a category has one horizon
    h = series[0].h

    best_val = np.full(len(series), np.inf)  # each series' best validation sMAPE (global: the mean's)
    best_state = copy.deepcopy(model.state_dict())
    windows = int(data.count.sum())
    epochs = Epochs(dev, on_epoch, validated=True, metric=OBJECTIVE)
    epochs.start()
    alive = torch.ones(members, dtype=torch.bool, device=dev)  # a member whose loss or forecast diverged stops
    for epoch in range(config.epochs):
        sums = torch.zeros(members, dtype=dtype, device=dev)
        with epochs.training():
            for rows, mask in batches.epoch():
                mask = mask.to(dtype)
                optimizer.zero_grad()
                pred = model(flat_x[rows])
                per_member = ((pred - flat_y[rows]) ** 2 * mask).sum(1) / mask.sum(1).clamp(min=1)
                per_member.sum().backward()  # members share no weight: each gets its own loss's gradient
                optimizer.step(((mask.sum(1) > 0) & alive).to(dtype))
                sums += per_member.detach() * mask.sum(1)
        val = smape_rows(forecast(model, fits, data.scale, h, config.window), val_truth)
        member_val = torch.as_tensor(val if config.scope == "local" else [np.mean(val)], device=dev)
        alive &= torch.isfinite(sums) & torch.isfinite(member_val)
        _keep_best(model, best_state, best_val, val, config.scope)  # a NaN is never a member's best
        counts = data.count.to(dtype) if config.scope == "local" else data.count.sum().to(dtype).reshape(1)
        if not alive.any():  # no model left to validate: the epoch's loss alone, and the run ends
            metrics, why = {"loss": math.nan}, f"loss={float(sums.sum())}, every model"
        else:  # the objective: the mean over the series whose models still train
            loss = float(sums[alive].sum() / counts[alive].sum())
            metrics = {
                "loss": loss,
                OBJECTIVE: float(np.mean(val[alive.cpu().numpy()] if config.scope == "local" else val)),
            }
            why = None
        if epochs.end(epoch, metrics, why=why):
            break
    seconds = epochs.seconds()

    model.load_state_dict(best_state)
    epochs_run = len(epochs.losses)
    val_scores = _scores(series, forecast(model, fits, data.scale, h, config.window), "val")
    test_forecasts = forecast(model, [s.x for s in series], data.scale, h, config.window)
    test_scores = _scores(series, test_forecasts, "test")
    per_series = {"id": [s.id for s in series]} | {
        f"{part}_{name}": values.tolist()
        for part, scores in (("val", val_scores), ("test", test_scores))
        for name, values in scores.items()
    }
    # A MASE is NaN where a series' part before it is constant at its season (nothing to scale by): left out
    metrics = {name: float(np.nanmean(values)) for name, values in per_series.items() if name != "id"}
    if config.scope == "local" and not alive.all():  # the others trained on; these keep their best epoch
        per_series["diverged"] = (~alive).cpu().tolist()
    return CollectionResult(
        config=config,
        device=str(dev),
        device_name=device_name(dev),
        n_params=sum(p.numel() for p in model.parameters()),
        losses=epochs.losses,
        val_by_epoch=epochs.val_curve,
        epochs_run=epochs_run,
        train_seconds=seconds,
        seconds_per_epoch=seconds / max(epochs_run, 1),
        samples_per_second=windows * epochs_run / seconds if seconds > 0 else 0.0,
        run_memory_bytes=run_memory_bytes(dev, held),
        process_peak_bytes=process_peak_bytes(dev),
        metrics=metrics if not epochs.diverged or epochs.val_curve else {},
        series=per_series,
        forecasts=test_forecasts,
        diverged=epochs.diverged,
        stopped=epochs.stopped,
        fail_reason=epochs.reason,
        model=model,
    )


@torch.no_grad()
def _keep_best(
    model: Members, best: dict[str, torch.Tensor], best_val: np.ndarray, val: np.ndarray, scope: str
) -> None:
    """Local: each member keeps the weights of its own best validation epoch; global: the model
    keeps those of the epoch with the best mean."""
    if scope == "global":
        if float(np.mean(val)) < best_val[0]:
            best_val[:] = float(np.mean(val))
            for name, value in model.state_dict().items():
                best[name].copy_(value)
        return
    better = val < best_val
    if not better.any():
        return
    best_val[better] = val[better]
    index = torch.as_tensor(np.flatnonzero(better), device=model.w_hh.device)
    for name, value in model.state_dict().items():
        best[name][index] = value[index]
