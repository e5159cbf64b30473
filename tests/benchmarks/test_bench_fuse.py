"""Fused trials (`harness launch --fuse B`): what training trials as one group saves.

- `fuse-epoch-<cell>-h<H>`: 16 configurations of one cell and hidden size (seeds 0-15,
  window 16, one epoch) trained as one group, and one after another as 16 solo runs; the
  call includes each run's set-up and final metrics, and `extra_info` holds the training
  time alone.
- `fuse-study`: the default short-period study's search space, the same 64 configurations
  (drawn once, enqueued in every run) launched solo and with --fuse 4, 16 and 64, one worker,
  no pruner (so every run trains the same epochs): trials per minute, from the database.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from harness.gpucheck import draws
from harness.search.launch import launch
from harness.search.spec import ExecutionSettings, load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study, wall_seconds
from harness.training.group import train_group
from harness.training.train import RunConfig, run

from conftest import CELLS

SHORT = Path(__file__).parent.parent.parent / "studies" / "short_period.toml"
MEMBERS = 16


@pytest.mark.parametrize("hidden", [16, 64, 256])
@pytest.mark.parametrize("how", ["solo", "fused"])
@pytest.mark.parametrize("cell", CELLS)
def test_group_epoch(benchmark: Any, cell: str, how: str, hidden: int) -> None:
    benchmark.group = f"fuse-epoch-{cell}-h{hidden}"
    size = 2 if benchmark.disabled else MEMBERS
    configs = [RunConfig(cell=cell, hidden_size=hidden, window=16, epochs=1, seed=s) for s in range(size)]
    trained: list[float] = []

    def solo() -> None:
        trained.append(sum(run(c, "cpu").train_seconds for c in configs))

    def fused() -> None:
        trained.append(train_group(configs, "cpu").seconds)

    rounds = 1 if benchmark.disabled else 5
    benchmark.pedantic(solo if how == "solo" else fused, rounds=rounds, warmup_rounds=0 if benchmark.disabled else 1)
    benchmark.extra_info["median_train_seconds"] = float(np.median(trained[-rounds:]))
    assert all(t > 0 for t in trained)


@pytest.mark.parametrize("fuse", [1, 4, 16, 64])
def test_study_trials_per_minute(benchmark: Any, fuse: int, tmp_path: Path) -> None:
    benchmark.group = "fuse-study"
    disabled = benchmark.disabled
    count = 4 if disabled else 64
    overrides = ["study.equal_cells=false", 'study.pruner="none"', *(["training.epochs=1"] if disabled else [])]
    spec = load_spec(SHORT, overrides)
    spec = replace(spec, execution=ExecutionSettings(fuse=min(fuse, count)))
    params = draws(count)  # the GPU check's draws
    counter = iter(range(1000))
    per_minute: list[float] = []

    def fill() -> None:
        url = f"sqlite:///{tmp_path / f'f{next(counter)}.db'}"
        study = create_study(spec, open_storage(url), count)
        for p in params:
            study.enqueue_trial(p)
        launch(spec, url, trials=count, progress=False)
        done = optuna.load_study(study_name=spec.study.name, storage=url)
        assert [t.params for t in done.trials] == params  # the same configurations, in order
        per_minute.append(60 * count / wall_seconds(done))

    benchmark.pedantic(fill, rounds=1 if disabled else 3)
    benchmark.extra_info["median_trials_per_minute"] = float(np.median(per_minute))
