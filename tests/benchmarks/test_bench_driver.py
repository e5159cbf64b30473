"""What the study driver costs: one full trial on an in-memory and on a SQLite storage (with
the time spent outside training), a worker's start-up, and 1 vs 2 workers on a fixed
40-trial study timed from its database."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.search.launch import launch, prepare_workers, worker_context
from harness.search.spec import load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study, wall_seconds
from harness.search.trials import Runner
from harness.training.device import resolve_device
from harness.training.train import run

pytestmark = pytest.mark.slow  # real launches and worker processes

SMOKE = Path(__file__).parent.parent.parent / "studies" / "smoke.toml"
# A ~1 s trial on this project's 2-core CPU machine (2 torch threads, as one worker runs): the size
# the overhead goal is stated for.
ONE_SECOND = ["training.epochs=100", 'search.cell=["lstm"]', "search.hidden_size=32", "search.window=16"]


def one_trial(study: optuna.Study, runner: Runner) -> dict[str, float]:
    start = time.perf_counter()
    runner.run(study, study.ask())
    wall = time.perf_counter() - start
    trial = study.trials[-1]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    train = trial.user_attrs["train_seconds"]
    return {
        "wall": wall,
        "train": train,
        "outside_training": wall - train,
        "stored": trial.user_attrs["overhead_seconds"],
    }


# journal: Optuna's own file-backed JournalStorage, measured beside SQLite to see whether it is
# worth offering (it was not: no faster here).
@pytest.mark.parametrize("backend", ["memory", "sqlite", "journal"])
def test_full_trial(benchmark: Any, backend: str, tmp_path: Path) -> None:
    benchmark.group = "trial"
    disabled = benchmark.disabled
    spec = load_spec(SMOKE, ["study.pruner=none", *ONE_SECOND[int(disabled) :]])
    storages = {
        "memory": lambda: optuna.storages.InMemoryStorage(),
        "sqlite": lambda: open_storage(f"sqlite:///{tmp_path / 'b.db'}"),
        "journal": lambda: optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))
        ),
    }
    storage: Any = storages[backend]()
    study = create_study(spec, storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runner = Runner(spec, resolve_device("auto"))
    runs: list[dict[str, float]] = []
    warmup = 0 if disabled else 1
    rounds = 1 if disabled else 7
    benchmark.pedantic(lambda: runs.append(one_trial(study, runner)), rounds=rounds, warmup_rounds=warmup)
    runs = sorted(runs[warmup:], key=lambda r: r["outside_training"])  # the warm-up call is not a round
    median = runs[len(runs) // 2]
    benchmark.extra_info |= {f"median_{k}_seconds": v for k, v in median.items()}
    benchmark.extra_info["median_overhead_fraction"] = median["outside_training"] / median["wall"]
    assert 0 <= median["stored"] <= median["outside_training"] + 1e-3 < median["wall"]
    # the driver trains what a plain run of the trial's configuration trains
    for trial in study.trials:
        assert trial.value == pytest.approx(run(spec.run_config(trial.params), "cpu").metrics["val_mse"], rel=1e-6)


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_scaling(benchmark: Any, workers: int, tmp_path: Path) -> None:
    """40 trials of ~0.5 s, 1 vs 2 workers (each with cores / workers torch threads)."""
    benchmark.group = "workers-40-trials"
    trials, epochs = (4, 5) if benchmark.disabled else (40, 60)  # the normal suite checks it runs, no more
    spec = load_spec(SMOKE, ["study.pruner=none", f"training.epochs={epochs}", 'search.cell=["lstm", "gru"]'])
    counter = iter(range(1000))
    seconds: list[float] = []

    def fill() -> dict[str, Any]:
        url = f"sqlite:///{tmp_path / f'w{next(counter)}.db'}"
        summary = launch(spec, url, trials=trials, workers=workers, progress=False)
        seconds.append(wall_seconds(optuna.load_study(study_name="smoke", storage=url)))
        return summary

    summary = benchmark.pedantic(fill, rounds=1 if benchmark.disabled else 3)
    assert summary["counts"]["COMPLETE"] == trials and summary["counts"]["FAIL"] == 0
    benchmark.extra_info["median_database_seconds"] = sorted(seconds)[len(seconds) // 2]


def _ready(queue: Any) -> None:
    warm = "harness.training.warmed" in sys.modules  # the fork server's preload, before this import
    import harness.search.launch  # noqa: F401  what a worker imports before its first trial

    queue.put((time.perf_counter(), os.getppid(), warm))


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_worker_start(benchmark: Any, method: str) -> None:
    """From starting a worker process to its having imported the harness: a fresh interpreter
    (spawn) against a fork of the pre-imported server `harness launch` uses."""
    import multiprocessing as mp

    benchmark.group = "worker-start"
    ctx = worker_context() if method == "forkserver" else mp.get_context("spawn")
    if method == "forkserver":
        prepare_workers(2)

    def start() -> float:
        queue = ctx.Queue()
        began = time.perf_counter()
        process = ctx.Process(target=_ready, args=(queue,))
        process.start()
        ready, parent, warm = queue.get(timeout=120)
        process.join(timeout=60)
        started.append((process.exitcode, parent, warm))
        return ready - began

    started: list[tuple[int | None, int, bool]] = []
    benchmark.pedantic(start, rounds=1 if benchmark.disabled else 5, warmup_rounds=0 if benchmark.disabled else 1)
    # What was timed is what it says: a fork of the warm server (not of this process), or a
    # fresh interpreter this process started; each worker came up and exited cleanly.
    assert all(code == 0 for code, _, _ in started)
    if method == "forkserver":
        assert all(parent != os.getpid() and warm for _, parent, warm in started), started
    else:
        assert all(parent == os.getpid() and not warm for _, parent, warm in started), started
