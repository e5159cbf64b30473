"""Worker processes: forked from a pre-imported server, with the threads asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from harness.cli import main
from harness.search.launch import prepare_workers, worker_context

pytestmark = pytest.mark.slow  # every test starts worker processes

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
TINY = ["--set", "training.epochs=1", "--no-progress"]


def _origin(queue: object) -> None:
    queue.put((os.getppid(), "harness.training.warmed" in sys.modules))  # type: ignore[attr-defined]


def _warm(queue: object) -> None:

    from harness.training import fused

    compiled = all(k.signatures for k in (fused._rnn_forward, fused._rnn_backward, fused._gru_forward,
                                          fused._gru_backward))  # fmt: skip
    x = torch.zeros(4, 3, 1, requires_grad=True)  # a backward works in a fork (autograd has no device threads here)
    torch.nn.GRU(1, 2, batch_first=True)(x)[0].sum().backward()
    queue.put((compiled, torch.get_num_threads(), x.grad is not None))  # type: ignore[attr-defined]


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(), reason="POSIX only")
def test_workers_fork_from_a_server_that_warmed_up_once() -> None:
    """Every fork starts warm (`harness.training.warmed`): the fused kernels compiled, torch's
    default threads, and autograd free to run (the server ran no backward pass)."""
    ctx = worker_context()
    queue = ctx.Queue()
    process = ctx.Process(target=_warm, args=(queue,))
    process.start()
    compiled, threads, backward = queue.get(timeout=120)
    assert compiled and backward
    default = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert threads == int(default)  # torch's default, not the one thread the server warmed up on
    process.join(timeout=60)
    assert process.exitcode == 0


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(), reason="POSIX only")
def test_workers_fork_from_a_server_that_imported_the_harness() -> None:
    """`prepare_workers` starts one fork server that every later worker is forked from, with the
    harness already imported and warmed there (nothing a worker imports pulls in `warmed`). What
    that saves a worker's start is measured in `tests/benchmarks/test_bench_driver.py`."""
    ctx = worker_context()
    assert ctx.get_start_method() == "forkserver"
    prepare_workers(2)
    origins = []
    for _ in range(3):
        queue = ctx.Queue()
        process = ctx.Process(target=_origin, args=(queue,))
        process.start()
        origins.append(queue.get(timeout=120))
        process.join(timeout=60)
        assert process.exitcode == 0
    parents = {parent for parent, _ in origins}
    assert len(parents) == 1 and os.getpid() not in parents  # one server, not this process
    assert all(warmed for _, warmed in origins)


def test_threads_per_worker_are_recorded_and_can_be_set(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "2", *TINY]) == 0
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "4", "--threads", "1", *TINY]) == 0
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    default = max(1, os.cpu_count() or 1)  # one worker gets every core
    assert [t.user_attrs["torch_threads"] for t in trials] == [default, default, 1, 1]


def test_two_workers_fill_the_budget_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    for target in (4, 8):  # the second launch reuses the running fork server
        assert main(["launch", str(SMOKE), "--storage", url, "--trials", str(target), "--workers", "2", *TINY]) == 0
        trials = optuna.load_study(study_name="smoke", storage=url).trials
        assert [t.state.name for t in trials].count("COMPLETE") == target and len(trials) == target
    threads = {t.user_attrs["torch_threads"] for t in trials}
    assert threads == {max(1, (os.cpu_count() or 1) // 2)}


def test_a_relaunch_does_not_wait_forever_on_a_trial_killed_before_its_first_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.search.launch as launch_module
    from harness.search.storage import open_storage

    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "1", *TINY]) == 0
    study = optuna.load_study(study_name="smoke", storage=open_storage(url))
    orphan = study.ask()  # as a worker killed right after creating its trial leaves it: RUNNING, no heartbeat
    monkeypatch.setattr(launch_module, "ORPHAN_SECONDS", 0.5)
    time.sleep(0.6)
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "3", *TINY]) == 0
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert trials[orphan.number].state.name == "FAIL"
    assert [t.state.name for t in trials].count("COMPLETE") == 3 and "RUNNING" not in [t.state.name for t in trials]
