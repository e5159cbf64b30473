"""Killed and interrupted workers: nothing is lost, nothing runs twice, the budget is met."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow  # every test starts, kills or interrupts real launches

ROOT = Path(__file__).parents[2]
SLOW_TRIALS = ["--set", "training.epochs=40", "--set", 'search.cell=["lstm"]', "--no-progress"]


def launch_cmd(url: str, trials: int) -> list[str]:
    return [sys.executable, "-m", "harness", "launch", "studies/smoke.toml", "--storage", url, "--trials", str(trials)]


def wait_for(url: str, predicate: object, timeout: float = 60) -> list[optuna.trial.FrozenTrial]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            trials = optuna.load_study(study_name="smoke", storage=url).trials
            if callable(predicate) and predicate(trials):
                return trials
        except KeyError:
            pass  # study not created yet
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the study")


def running(trials: list[optuna.trial.FrozenTrial]) -> bool:
    return any(t.state == TrialState.RUNNING for t in trials)


def sampled(trials: list[optuna.trial.FrozenTrial]) -> bool:
    """A trial is running with all four of the smoke space's parameters drawn (it is training)."""
    return any(t.state == TrialState.RUNNING and len(t.params) == 4 for t in trials)


def assert_interrupted(failed: list[optuna.trial.FrozenTrial]) -> None:
    """Every trial the Ctrl-C failed carries a fail_reason that names the interrupt."""
    reasons = {t.number: t.user_attrs.get("fail_reason") for t in failed}
    assert all(isinstance(r, str) and "interrupted" in r and "SIGINT" in r for r in reasons.values()), reasons


def test_killed_worker_trial_is_failed_and_retried(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    proc = subprocess.Popen([*launch_cmd(url, 2), *SLOW_TRIALS], cwd=ROOT, stderr=subprocess.DEVNULL)
    # killed once its parameters are drawn: killed between its creation and its draws, the trial
    # has none to hand on, and the retry draws afresh (a race in this test, not in the harness)
    trials = wait_for(url, sampled)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = next(t for t in trials if t.state == TrialState.RUNNING and len(t.params) == 4)

    assert subprocess.run([*launch_cmd(url, 2), *SLOW_TRIALS], cwd=ROOT, timeout=300).returncode == 0
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    by_number = {t.number: t for t in trials}
    assert by_number[killed.number].state == TrialState.FAIL  # not left RUNNING
    assert by_number[killed.number].params == killed.params
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    retry = [t for t in complete if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    params = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(params)) == len(params)


def test_ctrl_c_exits_130_keeps_finished_trials_and_relaunch_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    proc = subprocess.Popen([*launch_cmd(url, 3), *SLOW_TRIALS], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    wait_for(url, lambda ts: running(ts) and any(t.state == TrialState.COMPLETE for t in ts), timeout=120)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and states.count(TrialState.FAIL) == 1
    assert "interrupted" in err and "run the same command to resume" in err
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert_interrupted([failed])
    done = [t.number for t in trials if t.state == TrialState.COMPLETE]
    assert done

    assert subprocess.run([*launch_cmd(url, 3), *SLOW_TRIALS], cwd=ROOT, timeout=300).returncode == 0
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3 and len(trials) == 4  # the budget, exactly
    assert all(trials[n].state == TrialState.COMPLETE for n in done)  # intact
    # the interrupted trial's parameters ran again, as a killed worker's do
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params


def test_sigint_to_the_parent_reaches_worker_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    proc = subprocess.Popen(
        [*launch_cmd(url, 6), "--workers", "2", *SLOW_TRIALS], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    wait_for(url, lambda ts: sum(t.state == TrialState.RUNNING for t in ts) == 2, timeout=120)
    os.kill(proc.pid, signal.SIGINT)  # the parent alone, as a scheduler would
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert TrialState.RUNNING not in [t.state for t in trials]
    # each worker's trial in flight at that moment, and nothing else, is FAIL, and says why
    # (a worker between two trials stops without starting one, so there may be just one)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert 1 <= len(failed) <= 2
    assert_interrupted(failed)
