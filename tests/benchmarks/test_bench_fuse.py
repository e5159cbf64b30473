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
from harness.search.launch import claim_size, launch
from harness.search.spec import ExecutionSettings, load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study, wall_seconds
from harness.training.group import train_group
from harness.training.train import RunConfig, TrainResult, run

from conftest import CELLS

pytestmark = pytest.mark.slow  # real launches and group epochs at every size

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
    results: list[list[TrainResult]] = []

    def solo() -> None:
        results.append([run(c, "cpu") for c in configs])
        trained.append(sum(r.train_seconds for r in results[-1]))

    def fused() -> None:
        group = train_group(configs, "cpu")
        results.append(group.members)
        trained.append(group.seconds)

    rounds = 1 if benchmark.disabled else 5
    benchmark.pedantic(solo if how == "solo" else fused, rounds=rounds, warmup_rounds=0 if benchmark.disabled else 1)
    benchmark.extra_info["median_train_seconds"] = float(np.median(trained[-rounds:]))
    # Every round trained the same runs, and each member of the group trains as it does alone
    # (float32: the same sums in another order, which an RNN of hidden 256 amplifies to ~1e-2
    # within an epoch on some CPUs; tests/training/test_group_trainer.py checks it to 1e-6 in
    # float64).
    other = train_group(configs, "cpu").members if how == "solo" else [run(c, "cpu") for c in configs]
    for timed in results:
        for config, mine, theirs in zip(configs, timed, other, strict=True):
            assert mine.config == theirs.config == config
            assert mine.losses == pytest.approx(theirs.losses, rel=3e-2)
            assert mine.metrics["val_mse"] == pytest.approx(theirs.metrics["val_mse"], rel=3e-2)


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
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in done.trials)
        per_minute.append(60 * count / wall_seconds(done))
        studies.append(done)

    studies: list[optuna.Study] = []
    benchmark.pedantic(fill, rounds=1 if disabled else 3)
    # Trials train in groups only where a worker claims several at once (`claim_size`), and
    # never in groups larger than --fuse; a grouped trial's value is its solo run's.
    want = claim_size(spec, spec.execution.fuse, "cpu")
    assert all(t.user_attrs.get("group_size", 1) <= want for done in studies for t in done.trials)
    for t in studies[-1].trials[:4]:
        solo = run(spec.run_config(t.params), "cpu")
        assert t.value == pytest.approx(solo.metrics["val_mse"], rel=1e-4 if "group_size" in t.user_attrs else 1e-6)
    benchmark.extra_info["median_trials_per_minute"] = float(np.median(per_minute))
