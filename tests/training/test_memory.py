"""Memory that means one thing: `run_memory_bytes` is what a run added (its peak minus what
the process held at its start) on every device; `process_peak_bytes` the process's peak during
the run, not the worker's lifetime peak."""

from __future__ import annotations

import sys

import pytest

from harness.training.train import RunConfig, TrainResult, run


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-run CPU peaks need Linux's clear_refs")
def test_a_small_run_after_a_large_one_records_less() -> None:
    def train(hidden: int) -> TrainResult:
        return run(RunConfig(cell="lstm", protocol="window", hidden_size=hidden, window=32, epochs=1), "cpu")

    small_first = train(8)
    large = train(1024)  # ~4M parameters, Adam's moments and batch-64 activations: ~200 MB more
    small_after = train(8)
    assert large.run_memory_bytes > small_first.run_memory_bytes + 50e6
    assert large.process_peak_bytes > small_first.process_peak_bytes + 50e6
    # what a run added does not carry the large run's memory with it, however large the process stays
    assert small_after.run_memory_bytes < large.run_memory_bytes - 50e6
    assert small_after.run_memory_bytes < 50e6
    # a lifetime peak could never go down again; the run's own peak does
    assert small_after.process_peak_bytes < large.process_peak_bytes - 50e6
