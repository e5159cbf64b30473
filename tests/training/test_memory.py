"""`peak_memory_bytes` is one run's peak, not the worker's lifetime peak."""

from __future__ import annotations

import sys

import pytest

from harness.training.train import RunConfig, run


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-run CPU peaks need Linux's clear_refs")
def test_cpu_peak_memory_is_per_run() -> None:
    def peak(hidden: int) -> int:
        config = RunConfig(cell="lstm", protocol="window", hidden_size=hidden, window=32, epochs=1)
        return run(config, "cpu").peak_memory_bytes

    small_first = peak(8)
    large = peak(1024)  # ~4M parameters, Adam's moments and batch-64 activations: ~200 MB more
    small_after = peak(8)
    assert large > small_first + 50e6
    # a lifetime peak could never go down again; the run's own peak does
    assert small_after < large - 50e6
