"""The notebook's per-step loop beside the harness's single-call seed protocol.

Same configuration (hidden 30, lr 0.01, seed 42), same process. `make bench` times 33
epochs; the normal suite runs each once with 2 epochs as a correctness check. Either way
the harness's losses are compared at every epoch it ran with the loop's recorded ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.series.signals import SignalConfig, make_signal
from harness.training.reproduce import NotebookSettings, notebook_config
from harness.training.train import run

from conftest import CELLS
from notebook_port import notebook_losses, reference_losses

pytestmark = pytest.mark.slow  # the notebook's per-step loop

NOTEBOOK_RTOL = 1e-3  # the README's claim (tests/training/test_train.py)
CASES = [(cell, "short-period", 5) for cell in CELLS] + [("lstm", "long-period", 32)]


def _epochs(benchmark: Any) -> int:
    return 2 if benchmark.disabled else 33


@pytest.mark.parametrize("cell,signal,window", CASES)
def test_notebook_loop(benchmark: Any, cell: str, signal: str, window: int) -> None:
    benchmark.group = f"seed-{cell}-{signal}-W{window}"
    y = make_signal(SignalConfig(signal))
    epochs = _epochs(benchmark)
    losses = benchmark.pedantic(notebook_losses, args=(cell, y, window), kwargs={"epochs": epochs}, rounds=3)
    # the loop timed is the recorded one: its losses at every epoch it ran
    assert losses == pytest.approx(reference_losses(cell, signal, window)[:epochs], rel=NOTEBOOK_RTOL)


@pytest.mark.parametrize("cell,signal,window", CASES)
def test_harness_seed_protocol(benchmark: Any, cell: str, signal: str, window: int) -> None:
    benchmark.group = f"seed-{cell}-{signal}-W{window}"
    config = notebook_config(cell, signal, window, NotebookSettings(epochs=_epochs(benchmark)))
    result = benchmark.pedantic(run, args=(config, "cpu"), rounds=5)
    # Every epoch it ran, against the loop's recorded losses (tests/data/notebook_losses.json,
    # checked against the live loop in tests/training/test_train.py).
    reference = reference_losses(cell, signal, window)[: config.epochs]
    assert len(result.losses) == len(reference) == config.epochs
    assert result.losses == pytest.approx(reference, rel=NOTEBOOK_RTOL)
