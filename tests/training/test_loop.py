"""One run's epochs (`loop.Epochs`), shared by a series' run and a collection's: curves,
divergence with its reason, the best epoch's weights, the callback's time left out of the
training time, and the slow-epoch guard wherever a run trains on the CPU with validation."""

from __future__ import annotations

import math
import time

import pytest
import torch

from harness.series.collections import CollectionConfig, load
from harness.training import collection
from harness.training.collection import CollectionRunConfig
from harness.training.loop import MIN_SLOW_SECONDS, Epochs

CPU = torch.device("cpu")


def test_epochs_keep_the_curves_and_the_best_epochs_weights() -> None:
    model = torch.nn.Linear(1, 1)
    epochs = Epochs(CPU, None, validated=True)
    epochs.start()
    for epoch, (loss, val) in enumerate([(3.0, 2.0), (2.0, 1.0), (1.0, 1.5)]):
        with torch.no_grad():
            model.bias.fill_(epoch)
        assert not epochs.end(epoch, {"loss": loss, "val_mse": val}, keep=model)
    assert epochs.losses == [3.0, 2.0, 1.0] and epochs.val_curve == [2.0, 1.0, 1.5]
    assert epochs.best == 1.0 and epochs.best_state is not None
    assert float(epochs.best_state["bias"]) == 1.0  # a copy of epoch 1's weights, not the live ones
    assert not (epochs.diverged or epochs.stopped) and epochs.reason is None


def test_a_non_finite_value_is_divergence_with_its_reason() -> None:
    plain = Epochs(CPU, None, validated=True)
    assert plain.end(4, {"loss": math.inf, "val_mse": 1.0})
    assert plain.diverged and plain.reason == "diverged at epoch 4: loss=inf, val_mse=1.0"
    worded = Epochs(CPU, None, validated=True)
    assert worded.end(0, {"loss": math.nan}, why="every model")  # the caller's words
    assert worded.reason == "diverged at epoch 0: every model" and worded.val_curve == []


def test_the_callback_stops_the_run_and_its_time_is_not_training_time() -> None:
    seen: list[tuple[int, dict[str, float]]] = []

    def slow_callback(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append((epoch, dict(metrics)))
        time.sleep(0.2)
        return epoch == 1

    epochs = Epochs(CPU, slow_callback, validated=False)
    epochs.start()
    assert not epochs.end(0, {"loss": 1.0}, more=lambda: {"extra": 2.0})
    assert epochs.end(1, {"loss": 0.5})
    assert epochs.stopped and not epochs.diverged and epochs.seconds() < 0.2
    assert seen == [(0, {"loss": 1.0, "extra": 2.0}), (1, {"loss": 0.5})]  # `more` only for the callback


def test_no_guard_without_validation_or_off_the_cpu() -> None:
    assert Epochs(CPU, None, validated=True).slow is not None
    assert Epochs(CPU, None, validated=False).slow is None
    assert Epochs(torch.device("cuda"), None, validated=True).slow is None  # a GPU's time is not this CPU's


def test_a_collection_whose_epochs_saturate_is_ended_by_the_same_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """As `test_train`'s planted trial, on a collection: from epoch 3 on each epoch's training
    burns 40x its healthy CPU time and, at a learning rate of ~0, its sMAPE stays where it was."""
    real = collection._Batches.epoch
    took: list[float] = []

    def saturating(self: collection._Batches) -> list[tuple[torch.Tensor, torch.Tensor]]:
        start = time.process_time()
        steps = real(self)
        if len(took) >= 3:
            while time.process_time() - start < max(40 * min(took[1:3]), 2 * MIN_SLOW_SECONDS):
                pass
        took.append(time.process_time() - start)
        return steps

    monkeypatch.setattr(collection._Batches, "epoch", saturating)
    series = CollectionConfig(collection="m3", category="other", sample=2, sample_seed=1)
    config = CollectionRunConfig(collection=series, hidden_size=4, window=4, epochs=20, lr=1e-12, batch_size=8)
    result = collection.run(config, "cpu", series=load(series))
    assert result.stopped and result.epochs_run < 10 and not result.diverged
    assert result.fail_reason is not None and "healthy epochs, while val_smape had not improved" in result.fail_reason
