"""Studies side by side (`harness launch --concurrent N`): each study asks, prunes and records
what it does when the studies run one after the other; a Ctrl-C stops them all."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from harness.cli import main
from harness.search.exits import EXIT_STORAGE, WorkerError
from harness.search.faults import StorageFault
from harness.search.launch import plan
from harness.search.side_by_side import outcome, study_work
from harness.search.spec import load_spec

from conftest import SALES_SERIES, write_sales

ROOT = Path(__file__).parents[2]
NILE = str(ROOT / "studies" / "nile.toml")
# 12 trials a cell: TPE asks past its 10 random start-up trials, and the median pruner prunes
SHORT = ["--trials", "36", "--set", "training.epochs=3", "--threads", "1", "--no-progress"]


def trials_of(url: str) -> dict[str, list[tuple[object, ...]]]:
    studies = optuna.get_all_study_names(storage=url)
    return {
        name: [
            (t.number, t.state, t.params, t.values, t.user_attrs.get("val_mse_by_epoch"))
            for t in optuna.load_study(study_name=name, storage=url).trials
        ]  # fmt: skip
        for name in studies
    }


@pytest.mark.slow
def test_studies_side_by_side_run_the_trials_they_run_one_after_the_other(tmp_path: Path) -> None:
    alone, together = f"sqlite:///{tmp_path / 'alone.db'}", f"sqlite:///{tmp_path / 'together.db'}"
    assert main(["launch", NILE, "--storage", alone, *SHORT]) == 0
    assert main(["launch", NILE, "--storage", together, "--concurrent", "2", *SHORT]) == 0
    a, b = trials_of(alone), trials_of(together)
    assert set(a) == {"nile/rnn", "nile/lstm", "nile/gru"}
    assert a == b
    assert all(len(trials) == 12 for trials in b.values())
    pruned = [t for trials in b.values() for t in trials if t[1] == TrialState.PRUNED]
    assert pruned, "no trial was pruned: the pruner's decisions were not compared"


@pytest.mark.slow
def test_ctrl_c_to_the_launch_alone_stops_every_study_and_starts_no_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    slow = ["--set", "training.epochs=100", "--no-progress", "--concurrent", "2"]  # ~1-3 s a trial
    # 3 trials a study: the first two are still running their budget when the signal comes
    cmd = [sys.executable, "-m", "harness", "launch", NILE, "--storage", url, "--trials", "9", *slow]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline, running = time.time() + 120, []
    while len(running) < 2 and time.time() < deadline:  # both studies are training
        time.sleep(0.2)
        try:
            names = optuna.get_all_study_names(storage=url)
            running = [n for n in names for t in optuna.load_study(study_name=n, storage=url).trials
                       if t.state == TrialState.RUNNING and t.params]  # fmt: skip
        except (KeyError, sqlalchemy.exc.OperationalError):
            pass  # not created yet, or being written
    assert len(running) == 2, running
    proc.send_signal(signal.SIGINT)  # to the launch only (its own session): it passes it on
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    states = {n: [t.state for t in optuna.load_study(study_name=n, storage=url).trials] for n in running}
    # none left RUNNING (a trial past its training when the signal came completes), no study started after
    assert all(TrialState.RUNNING not in s for s in states.values()), states
    # every study was created before the first started (so the storage lists them in the order
    # given), and the third has no trial
    assert optuna.get_all_study_names(storage=url) == ["nile/rnn", "nile/lstm", "nile/gru"]
    (third,) = set(optuna.get_all_study_names(storage=url)) - set(running)
    assert optuna.load_study(study_name=third, storage=url).trials == []
    # resuming is each study's own launch, as after a Ctrl-C to one (tests/search/test_reliability.py)


@pytest.mark.slow
def test_the_largest_studies_start_first_and_are_listed_in_the_order_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    paths = [str(ROOT / "studies" / f"{name}.toml") for name in ("nile", "short_period", "long_period")]
    members = [m for path in paths for m in plan(load_spec(path), url)]
    sizes = {m.spec.study.name: study_work(m) for m in members}
    # windows up to 200, then 64, then the Nile's 20; a GRU step costs more than an LSTM's, an RNN's least
    assert sorted(sizes, key=lambda name: -sizes[name]) == [
        f"{spec}/{cell}" for spec in ("long-period", "short-period", "nile") for cell in ("gru", "lstm", "rnn")
    ]
    tiny = ["training.epochs=1", "search.window={low=2, high=8}"]
    launched = [m for path in (paths[0], paths[2]) for m in plan(load_spec(path, tiny), url, trials=9)]
    order = [m.spec.study.name for m in sorted(launched, key=lambda m: -study_work(m))]
    assert order[:2] == ["long-period/gru", "long-period/lstm"]
    argv = ["launch", paths[0], paths[2], "--storage", url, "--concurrent", "2", "--trials", "9", "--no-progress"]
    assert main([*argv, *(arg for setting in tiny for arg in ("--set", setting))]) == 0
    names = optuna.get_all_study_names(storage=url)
    assert names == ["nile/rnn", "nile/lstm", "nile/gru", "long-period/rnn", "long-period/lstm", "long-period/gru"]
    # two at a time: another study starts only once one of the first two has finished its three trials
    first = {n: min(t.datetime_start for t in optuna.load_study(study_name=n, storage=url).trials) for n in names}
    assert max(first[n] for n in order[:2]) < min(first[n] for n in order[2:]), (first, order)


@pytest.mark.parametrize("concurrent", ["0", "x"])
def test_a_bad_concurrent_is_one_line(concurrent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["launch", NILE, "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--concurrent", concurrent]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--concurrent" in err[0], err
    assert not (tmp_path / "h.db").exists()


SALES = (
    """
[study]
name = "sales"
trials = 30
pruner = "none"
equal_cells = true
"""
    + SALES_SERIES
    + """
[training]
epochs = 100

[search]
cell = ["rnn", "lstm", "gru"]
hidden_size = 4
window = { low = 2, high = 6 }
lr = 0.01
"""
)


@pytest.mark.slow
def test_a_series_changed_mid_launch_stops_it_with_exit_2_and_keeps_what_finished(tmp_path: Path) -> None:
    """The user's CSV changes while two studies run side by side: each study's next trial is
    refused in its own process (its series is no longer the one recorded), the third never
    starts, and the launch exits 2 as `launch` alone would, with one line a study and no
    traceback. Restored, the same command runs the stopped trials again and completes."""
    write_sales(tmp_path, 0)
    (tmp_path / "sales.toml").write_text(SALES)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    cmd = [sys.executable, "-m", "harness", "launch", "sales.toml", "--storage", url, "--concurrent", "2",
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    # Two studies have started (10 trials each: neither can finish before the file changes)
    deadline, running = time.time() + 120, []
    while len(running) < 2 and time.time() < deadline:
        time.sleep(0.2)
        with contextlib.suppress(KeyError, sqlalchemy.exc.OperationalError):  # not created yet, or being written
            studies = {n: optuna.load_study(study_name=n, storage=url) for n in optuna.get_all_study_names(storage=url)}
            running = [n for n, study in studies.items() if study.trials]
    assert len(running) == 2, running
    write_sales(tmp_path, 1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert sum("sales.csv column 'sales' changed since it was recorded" in line for line in lines) == 2, lines
    assert "(exit status 2)" in lines[-1] and "run the same command" in lines[-1]
    (third,) = {"sales/rnn", "sales/lstm", "sales/gru"} - set(running)
    assert optuna.load_study(study_name=third, storage=url).trials == []
    stopped = {}
    for name in running:  # the trial that met the change failed with the reason; none trained on the new values
        trials = optuna.load_study(study_name=name, storage=url).trials
        assert [t.state for t in trials][-1] == TrialState.FAIL and TrialState.RUNNING not in [t.state for t in trials]
        assert trials[-1].user_attrs["fail_reason"].startswith("bad input: sha256: ")
        stopped[name] = trials[-1]
    # the file restored, the same command completes every study, the stopped trials' parameters first
    write_sales(tmp_path, 0)
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True).returncode == 0
    for name, failed in stopped.items():
        study = optuna.load_study(study_name=name, storage=url)
        assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 10
        (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
        assert retry.state == TrialState.COMPLETE and retry.params == failed.params


def test_a_study_that_stopped_ends_the_launch_as_launch_would() -> None:
    assert outcome({}) is None
    assert isinstance(outcome({"a": 1, "b": 130}), KeyboardInterrupt)  # a Ctrl-C before a failure: exit 130
    assert isinstance(outcome({"a": 130, "b": EXIT_STORAGE}), StorageFault)  # a storage fault first, as in launch
    error = outcome({"nile/gru": 1})
    assert isinstance(error, WorkerError) and "nile/gru (exit status 1)" in str(error) and error.status == 1
    bad_input = outcome({"nile/gru": 1, "nile/lstm": 2})
    assert isinstance(bad_input, WorkerError) and bad_input.status == 2  # bad input first, as launch alone exits


def test_two_specs_of_one_name_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.db"
    argv = ["launch", NILE, NILE, "--set", "study.equal_cells=false", "--storage", f"sqlite:///{db}"]
    assert main([*argv, "--concurrent", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "study.name" in err[0] and "'nile'" in err[0], err
    assert not db.exists()
