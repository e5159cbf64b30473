"""A local trial over a collection as one group against the plain script that trains the same
models one after another (`plain_collection.py`): M3's 1,428 monthly series, a GRU of hidden
16, window 12, 2 epochs. `make bench` times the group on all 1,428 and the plain script on a
seeded sample of `PLAIN_SAMPLE` series (its time per series, scaled to 1,428, is recorded in
`extra_info`), and the group again with its members in one chunk (`members.MIN_CHUNK` raised
to the member count: the chunks pay only while this arm is slower); the normal suite runs
each once on a few series as a correctness check, the group in chunks of one member: in
float64 every series' test forecast is the same every way."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from benchmarks import plain_collection
from harness.series.collections import CollectionConfig, load
from harness.training import collection, members
from harness.training.collection import CollectionRunConfig

MONTHLY = CollectionConfig(collection="m3", category="monthly")
PLAIN_SAMPLE = 30  # series the plain script trains when timed; its time is scaled to the category's count
ROUNDS = 3  # each arm's median of three: one run of each on a shared machine misleads
CONFIG = CollectionRunConfig(collection=MONTHLY, scope="local", cell="gru", hidden_size=16, window=12, lr=0.01,
                             epochs=2, batch_size=32)  # fmt: skip


FEW = CollectionConfig(collection="m3", category="monthly", sample=3, sample_seed=3)


def _ways(series: list[Any], config: CollectionRunConfig) -> dict[str, Callable[[], np.ndarray]]:
    return {"group": lambda: collection.run(config, "cpu", series=series).forecasts,
            "plain": lambda: plain_collection.train_all(series, config)}  # fmt: skip


@pytest.fixture(scope="module")
def few_forecasts() -> dict[str, np.ndarray]:
    """Both ways' test forecasts of a few series in float64, each computed once."""
    return {how: way() for how, way in _ways(load(FEW), dataclasses.replace(CONFIG, precision="fp64")).items()}


@pytest.mark.parametrize("how", ["group", "group-one-chunk", "plain"])
def test_a_local_trial_over_m3_monthly_against_the_plain_script(
    benchmark: Any, how: str, few_forecasts: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = load(MONTHLY)
    if how == "group-one-chunk":
        monkeypatch.setattr(members, "MIN_CHUNK", len(everything))
    if benchmark.disabled:  # the correctness check: a few series, float64, the same forecasts every way
        if how == "group":
            monkeypatch.setattr(members, "CHUNK_BYTES", 1)
            monkeypatch.setattr(members, "MIN_CHUNK", 1)
        ran = benchmark(_ways(load(FEW), dataclasses.replace(CONFIG, precision="fp64"))[how.split("-")[0]])
        other = few_forecasts["plain" if how.startswith("group") else "group"]
        np.testing.assert_allclose(ran, other, rtol=1e-6)
        return
    if how.startswith("group"):
        result = benchmark.pedantic(
            lambda: collection.run(CONFIG, "cpu", series=everything), rounds=ROUNDS, iterations=1
        )
        benchmark.extra_info |= {"series": len(everything), "test_smape": result.metrics["test_smape"]}
        return
    rng = np.random.default_rng(0)
    sample = [everything[i] for i in np.sort(rng.choice(len(everything), PLAIN_SAMPLE, replace=False))]
    benchmark.pedantic(lambda: plain_collection.train_all(sample, CONFIG), rounds=ROUNDS, iterations=1)
    benchmark.extra_info |= {"series": PLAIN_SAMPLE, "scaled_to": len(everything)}
