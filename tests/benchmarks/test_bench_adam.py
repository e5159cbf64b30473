"""FlatAdam (one flat buffer) against torch's own Adam variants, on a small model's training
step: the custom part stays only while it is faster than the well-kept ones it replaces
(`make bench`; each optimiser's median step time). The normal suite checks that all of them
train the same weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from harness.training.adam import FlatAdam
from harness.training.models import RecurrentRegressor

OPTIMISERS: dict[str, Callable[[RecurrentRegressor], Any]] = {
    "flat": lambda m: FlatAdam(m.parameters(), 0.01),
    "torch-foreach": lambda m: torch.optim.Adam(m.parameters(), 0.01, foreach=True),
    "torch-fused": lambda m: torch.optim.Adam(m.parameters(), 0.01, fused=True),
}


def _trainer(cell: str, how: str, dtype: torch.dtype = torch.float32) -> tuple[RecurrentRegressor, Callable[[], None]]:
    torch.manual_seed(0)
    model = RecurrentRegressor(cell, 1, 32).to(dtype)
    optimiser = OPTIMISERS[how](model)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 10, 1, generator=gen, dtype=dtype), torch.randn(64, generator=gen, dtype=dtype)

    def step() -> None:
        optimiser.zero_grad()
        out, _ = model(x)
        ((out[:, -1, 0] - y) ** 2).mean().backward()
        optimiser.step()

    return model, step


@pytest.mark.parametrize("how", list(OPTIMISERS))
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_training_step_with_each_adam(benchmark: Any, cell: str, how: str) -> None:
    if benchmark.disabled:  # the correctness check: five steps, the same weights as torch's default Adam
        model, step = _trainer(cell, how, torch.float64)
        reference, reference_step = _trainer(cell, "torch-foreach", torch.float64)

        def five() -> None:
            for _ in range(5):
                step()
                reference_step()

        benchmark(five)
        for a, b in zip(model.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        return
    _, step = _trainer(cell, how)
    benchmark.pedantic(step, rounds=300, warmup_rounds=30)  # the same rounds for each: comparable medians
