"""One run's epochs, recorded once for every trainer (`train` for one model, `collection`
for a collection's models): the loss and validation curves, divergence with its reason, the
best validation value (the caller keeps that epoch's weights), the slow-epoch guard, the
caller's `on_epoch` callback (its time is not training time) and whether to stop.

A trainer runs its epochs and hands each one's metrics to `Epochs.end`, which says whether
the run ends there; what an epoch computes and which weights are kept stay the trainer's.
Pure torch, no Optuna.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from harness.training.device import synchronize

OnEpoch = Callable[[int, dict[str, float]], bool | None]  # (epoch, metrics) -> stop?

# An epoch that costs this many times the run's healthy epochs ... (the saturated LSTM's grew
# 20x; a machine loaded by other work inflates process CPU time too, measured up to ~10x, so
# the factor sits above that)
SLOW_FACTOR = 15.0
STALL_EPOCHS = 3  # ... for this many epochs in a row, while the best val_mse has not improved for as many: ended
# ... and each of them took at least this long: a 15-ms epoch of a tiny trial that one hiccup
# of the machine made 0.3 s is no slow trial (it ended one such Nile trial before this floor)
MIN_SLOW_SECONDS = 0.2


class SlowEpochs:
    """Ends a run whose epochs have become many times slower than its first ones while its
    validation loss no longer improves. An LSTM whose activations saturate drives oneDNN's
    backward into denormal arithmetic, its epochs many times slower, learning nothing more. Epochs are
    timed in process CPU seconds, so a machine busy with other work does not look like a slow
    trial; epoch 0 (warm-up) is not a healthy reference; the last `stall` epochs must all be
    slow, so one hiccup is not a slow trial. `metric` names the validation value in the reason."""

    def __init__(self, factor: float = SLOW_FACTOR, stall: int = STALL_EPOCHS, metric: str = "val_mse") -> None:
        self.factor, self.stall, self.metric = factor, stall, metric
        self.seconds: list[float] = []
        self.best, self.since = math.inf, 0

    def __call__(self, seconds: float, val: float) -> str | None:
        """Record one epoch; the reason to end the run, or None."""
        self.seconds.append(seconds)
        self.best, self.since = (val, 0) if val < self.best else (self.best, self.since + 1)
        if len(self.seconds) < 4:
            return None
        healthy = min(self.seconds[1:3])
        recent = min(self.seconds[-self.stall :])
        if healthy > 0 and recent > max(self.factor * healthy, MIN_SLOW_SECONDS) and self.since >= self.stall:
            return (f"ended at epoch {len(self.seconds) - 1}: {seconds:.2g} CPU s, {seconds / healthy:.0f}x its "
                    f"healthy epochs, while {self.metric} had not improved for {self.since} epochs (saturated "
                    "activations; docs/performance.md)")  # fmt: skip
        return None


class Epochs:
    """The epochs of one run as they end: `start` before the first, `training()` around each
    one's training step (its process CPU time, the slow-epoch guard's clock), `end` after it
    with its metrics, `seconds()` after the last.

    `metric` is the validation value the curve, the best epoch and the guard follow (absent
    from an epoch's metrics where the run has no validation part). The guard watches a run on
    the CPU with validation: a GPU's time is not this process's CPU time."""

    def __init__(
        self, device: torch.device, on_epoch: OnEpoch | None, validated: bool, metric: str = "val_mse"
    ) -> None:
        self.device, self.on_epoch, self.metric = device, on_epoch, metric
        self.losses: list[float] = []  # per epoch, the diverging one included
        self.val_curve: list[float] = []
        self.best = math.inf
        self.best_state: dict[str, Any] | None = None  # `keep`'s weights at `best`
        self.diverged, self.stopped = False, False  # stopped: by `on_epoch` or the slow-epoch guard
        self.reason: str | None = None
        self.slow = SlowEpochs(metric=metric) if device.type == "cpu" and validated else None
        self._cpu = 0.0
        self._callback_seconds = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        synchronize(self.device)
        self._t0 = time.perf_counter()

    @contextmanager
    def training(self) -> Iterator[None]:
        start = time.process_time()
        yield
        self._cpu = time.process_time() - start

    def end(
        self,
        epoch: int,
        metrics: dict[str, float],
        keep: torch.nn.Module | None = None,
        more: Callable[[], dict[str, float]] | None = None,
        why: str | None = None,
    ) -> bool:
        """Record epoch `epoch`'s `metrics` ("loss", and `metric` where validated); True: the
        run ends here. A non-finite value is divergence (`why` says it in the caller's words,
        else the metrics do); at a better validation value `keep`'s weights are copied to
        `best_state` (a run is judged by the best value it reached, so its test metrics come
        from those weights; a trainer that keeps its members' own bests passes none); `more`
        adds what only `on_epoch` reads, computed after the divergence check."""
        value = metrics.get(self.metric)
        if value is not None:
            self.val_curve.append(value)
        self.losses.append(metrics["loss"])
        if not all(math.isfinite(v) for v in metrics.values()):
            detail = why or ", ".join(f"{k}={v}" for k, v in metrics.items())
            self.diverged, self.reason = True, f"diverged at epoch {epoch}: {detail}"
            return True
        if value is not None and value < self.best:
            self.best = value
            if keep is not None:
                self.best_state = copy.deepcopy(keep.state_dict())
        if self.slow is not None and value is not None and (reason := self.slow(self._cpu, value)) is not None:
            self.stopped, self.reason = True, reason  # recorded as pruned with this reason: the search keeps its best
            return True
        if self.on_epoch is None:
            return False
        if more is not None:
            metrics |= more()
        started = time.perf_counter()  # the caller's time (pruning checks, storage writes) is not training time
        stop = self.on_epoch(epoch, metrics)
        self._callback_seconds += time.perf_counter() - started
        self.stopped = bool(stop)
        return self.stopped

    def seconds(self) -> float:
        """Training time since `start`, without the callback's."""
        synchronize(self.device)
        return time.perf_counter() - self._t0 - self._callback_seconds
