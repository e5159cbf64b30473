"""README claims that had no test of their own: where a study is stored, `--timeout`,
`HARNESS_FUSED=0`, one-worker reproducibility, masked passwords, and a CUDA out-of-memory
trial recorded FAIL while the study goes on. Real storages, real CLI, tiny budgets."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

import harness.training.fused
from harness.cli import main
from harness.search.launch import launch
from harness.search.spec import load_spec
from harness.search.storage import DEFAULT_STORAGE, redact
from harness.training import train

ROOT = Path(__file__).parent.parent
SMOKE = str(ROOT / "studies" / "smoke.toml")
POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
# Trials of a fraction of a second: one epoch, small models.
TINY = ["training.epochs=1", "search.hidden_size={low=4, high=8}", "search.window={low=2, high=8}"]
TINY_FLAGS = [arg for item in TINY for arg in ("--set", item)]


def study_names(db: Path) -> list[str]:
    return optuna.get_all_study_names(storage=f"sqlite:///{db}") if db.exists() else []


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- 1. where studies go
@pytest.mark.slow
def test_harness_storage_overrides_the_default_and_the_flag_wins_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def launch_in(folder: str, *extra: str) -> Path:
        cwd = tmp_path / folder
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        argv = ["launch", SMOKE, "--trials", "1", "--no-progress", "--device", "cpu", *TINY_FLAGS, *extra]
        assert main(argv) == 0
        return cwd

    # Nothing set: sqlite:///results/harness.db, relative to the current directory.
    monkeypatch.delenv("HARNESS_STORAGE", raising=False)
    assert DEFAULT_STORAGE == "sqlite:///results/harness.db"
    cwd = launch_in("default")
    assert f"storage: {DEFAULT_STORAGE}" in capsys.readouterr().out
    assert study_names(cwd / "results" / "harness.db") == ["smoke"]

    # HARNESS_STORAGE (a relative path, so also relative to the current directory) overrides it.
    monkeypatch.setenv("HARNESS_STORAGE", "sqlite:///from-env.db")
    cwd = launch_in("env")
    assert "storage: sqlite:///from-env.db" in capsys.readouterr().out
    assert study_names(cwd / "from-env.db") == ["smoke"]
    assert not (cwd / "results").exists()

    # --storage wins over HARNESS_STORAGE: the env's database is not even created.
    cwd = launch_in("flag", "--storage", "sqlite:///from-flag.db")
    assert "storage: sqlite:///from-flag.db" in capsys.readouterr().out
    assert study_names(cwd / "from-flag.db") == ["smoke"]
    assert not (cwd / "from-env.db").exists() and not (cwd / "results").exists()

    # The readers resolve the storage the same way.
    assert main(["studies"]) == 2  # HARNESS_STORAGE, in the "flag" folder: no such database
    assert "from-env.db" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path / "env")
    assert main(["studies", "--json"]) == 0
    assert [json.loads(line)["study"] for line in capsys.readouterr().out.splitlines()] == ["smoke"]


# ---------------------------------------------------------------- 2. --timeout
@pytest.mark.slow
def test_timeout_starts_no_trial_after_its_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    timeout, budget = 2.0, 100_000
    real_run = train.run
    t0 = time.monotonic()  # reset when the timed launch starts

    def watchdog(*args: Any, **kwargs: Any) -> train.TrainResult:
        # Only so that a launch ignoring --timeout fails this test instead of hanging it:
        # three failed trials in a row stop the worker and the launch exits 1.
        if time.monotonic() - t0 > timeout + 60:
            raise RuntimeError("the launch is still starting trials long after its --timeout")
        return real_run(*args, **kwargs)

    monkeypatch.setattr("harness.search.study.train.run", watchdog)
    url = f"sqlite:///{tmp_path / 't.db'}"
    argv = ["launch", SMOKE, "--storage", url, "--no-progress", "--device", "cpu", "--set", 'search.cell=["lstm"]',
            "--set", "search.hidden_size=4", "--set", "search.window=4", "--set", "training.epochs=1"]  # fmt: skip
    # One trial first, so the timed launch (which resumes the study) pays no first-use costs
    # (lazy imports, kernel set-up) and fits many of its ~0.05 s trials in the timeout.
    assert main([*argv, "--trials", "1"]) == 0
    capsys.readouterr()
    before = datetime.now()  # Optuna stores naive local times
    t0 = time.monotonic()
    assert main([*argv, "--trials", str(budget), "--timeout", str(timeout)]) == 0, capsys.readouterr().err
    wall = time.monotonic() - t0
    trials = optuna.load_study(study_name="smoke", storage=url).trials[1:]  # the timed launch's
    assert f"smoke: {len(trials) + 1} finished" in capsys.readouterr().out
    timings = [(str(t.datetime_start), str(t.datetime_complete), t.user_attrs.get("train_seconds")) for t in trials]
    # Dozens of trials on a quiet machine; at least one however loaded it is.
    assert 1 <= len(trials) < budget, (str(before), wall, timings)
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert all(t.datetime_start and t.datetime_complete for t in trials), timings
    # Order, not seconds. The deadline (`timeout` past the launch's start) is set before the
    # first trial starts, and the one worker checks it before claiming each trial, one at a
    # time: so a trial starting later than first start + timeout can only be the last one
    # (claimed just before the deadline passed; the check after it stops the worker).
    start = trials[0].datetime_start
    assert start is not None
    late = [t.number for t in trials if t.datetime_start and t.datetime_start > start + timedelta(seconds=timeout)]
    assert late in ([], [trials[-1].number]), timings
    # ... and the launch used its time: it returned only once the deadline had passed.
    assert wall >= timeout


# ---------------------------------------------------------------- 3. HARNESS_FUSED=0
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_harness_fused_0_switches_the_fused_path_off(cell: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # harness.fused reads HARNESS_FUSED when a model is built (`available()`), not at import,
    # so setting it in this process is what setting it before `harness launch` does.
    calls = []
    real = harness.training.fused.recurrent

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(harness.training.fused, "recurrent", counting)
    # A configuration the fused path takes: single layer, CPU, batch x hidden <= 8192.
    config = train.RunConfig(cell=cell, hidden_size=8, window=5, epochs=1, batch_size=16)
    assert harness.training.fused.worthwhile(config.batch_size, config.hidden_size)

    monkeypatch.delenv("HARNESS_FUSED", raising=False)
    on = train.run(config, "cpu")
    assert on.model is not None and on.model.fused is True
    assert len(calls) > 0, "without HARNESS_FUSED the fused path should run"

    for value in ("1", "0"):
        calls.clear()
        monkeypatch.setenv("HARNESS_FUSED", value)
        result = train.run(config, "cpu")
        assert result.model is not None
        if value == "1":
            assert result.model.fused is True and len(calls) > 0
        else:
            assert result.model.fused is False and calls == []
            # Same parameters either way: torch's path trains the same model to nearly the same loss.
            assert result.losses == pytest.approx(on.losses, rel=1e-3)


# ---------------------------------------------------------------- 4. reproducibility
@pytest.mark.slow
def test_a_one_worker_study_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 12 trials: TPE's 10 random start-up trials and two of its model-based ones. One launch in
    # this process, one in a fresh interpreter, as a user re-running the study would.
    args = ["launch", SMOKE, "--trials", "12", "--workers", "1", "--no-progress", "--device", "cpu", *TINY_FLAGS]
    assert main([*args, "--storage", f"sqlite:///{tmp_path / 'a'}"]) == 0
    capsys.readouterr()
    proc = run_cli(*args, "--storage", f"sqlite:///{tmp_path / 'b'}")
    assert proc.returncode == 0, proc.stderr
    a, b = (optuna.load_study(study_name="smoke", storage=f"sqlite:///{tmp_path / db}").trials for db in "ab")
    assert len(a) == len(b) == 12
    assert all(t.state == TrialState.COMPLETE for t in a + b)
    assert len({tuple(sorted(t.params.items())) for t in a}) == 12  # the trials differ from each other
    for ta, tb in zip(a, b, strict=True):
        assert ta.number == tb.number
        assert ta.params == tb.params, ta.number
        assert ta.values == tb.values, ta.number  # exactly, not approximately
        assert ta.intermediate_values == tb.intermediate_values, ta.number
        for key in ("test_mse", "rollout_mse", "horizon"):
            assert ta.user_attrs[key] == tb.user_attrs[key], (ta.number, key)


# ---------------------------------------------------------------- 5. masked passwords
requires_postgres = pytest.mark.skipif(
    POSTGRES_URL is None, reason="set HARNESS_TEST_POSTGRES_URL (.ci/run starts a server) to run PostgreSQL tests"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dashboard_stderr(url: str, artifacts: Path, wait: float = 60) -> list[str]:
    """Start `harness dashboard`, return its stderr up to its startup line, then stop it."""
    cmd = [sys.executable, "-m", "harness", "dashboard", "--storage", url, "--port", str(free_port()),
           "--artifacts", str(artifacts)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    stream = proc.stderr
    assert stream is not None

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + wait
        while not any("optuna-dashboard on" in line for line in seen):
            try:
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no startup line from the dashboard within {wait} s; stderr so far: {seen}")
            assert time.monotonic() < deadline, seen
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return seen


def unescape_markdown(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@pytest.mark.slow
@requires_postgres
def test_passwords_are_masked_in_studies_dashboard_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert POSTGRES_URL is not None
    url = POSTGRES_URL
    secret = make_url(url).password
    assert secret, "HARNESS_TEST_POSTGRES_URL should carry a password"
    masked = redact(url)
    assert "***" in masked and secret not in masked
    name = f"claims-{uuid.uuid4().hex[:8]}"

    out, artifacts = tmp_path / "report", tmp_path / "artifacts"
    argv = ["launch", SMOKE, "--storage", url, "--trials", "2", "--no-progress", "--device", "cpu", *TINY_FLAGS]
    assert main([*argv, "--set", f"study.name={json.dumps(name)}", "--artifacts", str(artifacts)]) == 0
    launched = capsys.readouterr()
    assert f"storage: {masked}" in launched.out
    assert secret not in launched.out + launched.err

    assert main(["studies", "--storage", url]) == 0
    listed = capsys.readouterr()
    assert f"storage: {masked}" in listed.out and f"{name}: 2 finished" in listed.out
    assert secret not in listed.out + listed.err

    startup = dashboard_stderr(url, tmp_path / "no-artifacts")
    assert secret not in "".join(startup)
    assert masked in startup[-1] and "***" in startup[-1]

    assert main(["report", "--storage", url, "--study", name, "--out", str(out), "--artifacts", str(artifacts),
                 "--device", "cpu"]) == 0  # fmt: skip
    reported = capsys.readouterr()
    assert secret not in reported.out + reported.err
    written = [p for folder in (out, artifacts) for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "report.md" for p in written) and len(written) > 1
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    storage_lines = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("Storage:")]
    assert len(storage_lines) == 1
    # The label is markdown-escaped; unescaped it is the masked URL.
    assert unescape_markdown(storage_lines[0]) == f"Storage: {masked}"

    # Nothing the harness stored in the database carries it either.
    study = optuna.load_study(study_name=name, storage=url)
    system = study._storage.get_study_system_attrs(study._study_id)
    stored = json.dumps([study.user_attrs, system, [(t.user_attrs, t.system_attrs) for t in study.trials]], default=str)
    assert secret not in stored
    optuna.delete_study(study_name=name, storage=url)  # the server may be shared; leave it as found


# ---------------------------------------------------------------- 6. CUDA out of memory
@pytest.mark.slow
def test_a_cuda_out_of_memory_trial_is_failed_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = train.run
    calls = []

    def out_of_memory_once(*args: Any, **kwargs: Any) -> train.TrainResult:
        calls.append(1)
        if len(calls) == 2:  # the second trial, so the study has to go on past it
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
        return real_run(*args, **kwargs)

    monkeypatch.setattr("harness.search.study.train.run", out_of_memory_once)
    spec = load_spec(SMOKE, TINY)
    url = f"sqlite:///{tmp_path / 'oom.db'}"
    summary = launch(spec, url, trials=3, workers=1, device="cpu", progress=False)
    assert summary["counts"]["FAIL"] == 1 and summary["counts"]["COMPLETE"] == 3

    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    reason = trials[1].user_attrs["fail_reason"]
    assert "out of memory" in reason.lower() and "Tried to allocate 2.00 GiB" in reason
    assert "more detail" not in reason  # one line, as every fail_reason
    assert all("fail_reason" not in t.user_attrs for t in trials if t.number != 1)
    assert len(calls) == 4
