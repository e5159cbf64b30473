"""Benchmarks measure what users run: torch with the intra-op threads `harness launch`
gives one worker (the test suite's conftest pins one thread for the unit tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from harness.training.device import threads_per_worker


@pytest.fixture(autouse=True)
def launch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_worker(1))
    try:
        yield
    finally:
        torch.set_num_threads(before)
