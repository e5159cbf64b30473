"""SIGTERM, as schedulers and container runtimes stop a process (then SIGKILL after a grace
period), is treated as Ctrl-C is: the running trials FAIL with their reason and are queued
again, the launch says so in one line and exits with its own status, 143."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_reliability import ROOT, SLOW_TRIALS, launch_cmd, sampled, wait_for

from harness.search.exits import EXIT_TERMINATED

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_fails_the_running_trials_with_their_reason_and_a_relaunch_completes(
    tmp_path: Path, workers: int
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = [*launch_cmd(url, 3), "--workers", str(workers), *SLOW_TRIALS]
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    wait_for(url, sampled, timeout=180)
    proc.send_signal(signal.SIGTERM)  # the launch's process alone, as a scheduler sends it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("harness launch:")]
    assert lines == [lines[0]] and "terminated (SIGTERM)" in lines[0] and "run the same command to resume" in lines[0]
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and TrialState.RUNNING not in [t.state for t in trials]
    assert all(t.user_attrs.get("fail_reason") == "terminated (SIGTERM)" for t in failed)

    assert subprocess.run(argv, cwd=ROOT, timeout=600).returncode == 0
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3  # the budget, exactly
    retried = {t.system_attrs.get("failed_trial") for t in trials if t.state == TrialState.COMPLETE}
    assert {t.number for t in failed} <= retried  # each terminated trial's parameters ran again
