"""Faults from outside mid-study: the database fills up, the artifact folder goes away. One
line naming the storage and the real cause, exit status 3, nothing recorded lost, the
interrupted trial FAIL with its reason, its parameters run again on relaunch, and the
relaunch completes the budget exactly. Real SQLite, real artifact folder."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from harness.cli import main
from harness.search import weights
from harness.search.exits import EXIT_STORAGE
from harness.search.faults import StorageFault, when_up
from harness.search.storage import open_storage

SMOKE = str(Path(__file__).parents[2] / "studies" / "smoke.toml")
FAST = ["--no-progress", "--set", "training.epochs=2"]


@contextmanager
def database_full(db: Path, room_pages: int = 1) -> Iterator[None]:
    """Every connection opened meanwhile may grow the file by `room_pages` pages at most:
    SQLite then answers "database or disk is full", as on a full disk."""
    limit = sqlite3.connect(db).execute("PRAGMA page_count").fetchone()[0] + room_pages

    def cap(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit}")

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", cap)
    try:
        yield
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", cap)


def states(url: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name="smoke", storage=url).trials]


def assert_resumed(url: str, target: int, failed_before: list[optuna.trial.FrozenTrial]) -> None:
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == target  # the budget, exactly
    assert TrialState.RUNNING not in [t.state for t in trials]
    for failed in failed_before:  # each interrupted trial's parameters ran again
        (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
        assert retry.state == TrialState.COMPLETE and retry.params == failed.params


@pytest.mark.slow
def test_a_full_database_is_one_line_and_a_relaunch_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.db"
    url = f"sqlite:///{db}"
    assert main(["launch", SMOKE, "--storage", url, "--trials", "2", *FAST]) == 0
    kept = [t for t in optuna.load_study(study_name="smoke", storage=url).trials]
    capsys.readouterr()
    with database_full(db):
        assert main(["launch", SMOKE, "--storage", url, "--trials", "6", *FAST]) == EXIT_STORAGE
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"harness launch: storage {url} failed: database or disk is full; what was recorded is kept")
    assert "run the same command to resume" in err and "Traceback" not in capsys.readouterr().err
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert [t.params for t in trials[:2]] == [t.params for t in kept]  # nothing recorded lost
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1
    reason = failed[0].user_attrs.get("fail_reason")  # where the full database still took it
    assert reason is None or (reason.startswith("storage fault: ") and "database or disk is full" in reason)
    assert main(["launch", SMOKE, "--storage", url, "--trials", "6", *FAST]) == 0
    assert_resumed(url, 6, failed)


@pytest.mark.slow
def test_an_artifact_folder_that_goes_away_is_one_line_and_a_relaunch_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, artifacts = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "artifacts"
    argv = ["launch", SMOKE, "--storage", url, "--artifacts", str(artifacts), *FAST]
    assert main([*argv, "--trials", "2"]) == 0
    real_upload = weights.upload

    def folder_gone(*args: object, **kwargs: object) -> str:
        """The folder is replaced by a file just before the next trial's weights go up
        (as root, a mode bit would not stop a write; this does)."""
        if artifacts.is_dir():
            shutil.rmtree(artifacts)
            artifacts.write_text("not a folder")
        return real_upload(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(weights, "upload", folder_gone)
    capsys.readouterr()
    assert main([*argv, "--trials", "4"]) == EXIT_STORAGE
    monkeypatch.setattr(weights, "upload", real_upload)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"harness launch: artifact store ({artifacts}") and "Not a directory" in err
    failed = [t for t in optuna.load_study(study_name="smoke", storage=url).trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "artifact store" in failed[0].user_attrs["fail_reason"]
    assert states(url).count(TrialState.COMPLETE) == 2
    artifacts.unlink()
    artifacts.mkdir()
    assert main([*argv, "--trials", "4"]) == 0
    assert_resumed(url, 4, failed)


POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
POSTGRES_DATA = os.environ.get("HARNESS_TEST_POSTGRES_DATA")  # .ci/run's server: its data folder, to restart it


def _pg_ctl(url: str, data: str, action: str) -> None:
    """pg_ctl on the server .ci/postgres.sh started: "restart" (a few seconds away), "stop", "start"."""
    pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    port = make_url(url).port
    subprocess.run(["runuser", "-u", "postgres", "--", str(pgbin / "pg_ctl"), "-D", f"{data}/db", "-m", "fast", "-w",
                    "-l", f"{data}/log", "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {data}", action],
                   check=True, capture_output=True, timeout=60)  # fmt: skip


def _drop_connections(url: str) -> int:
    """Every other session on the database is terminated, as a network drop or a failover does."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as c:
            sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")  # fmt: skip
            return int(c.exec_driver_sql(sql).scalar() or 0)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.skipif(POSTGRES_URL is None, reason="set HARNESS_TEST_POSTGRES_URL (.ci/run starts a server)")
def test_a_postgres_server_that_drops_connections_or_restarts_does_not_end_the_study() -> None:
    assert POSTGRES_URL is not None
    name = f"drop-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "harness", "launch", SMOKE, "--storage", POSTGRES_URL, "--trials", "8",
            "--no-progress", "--set", "training.epochs=10", "--set", f'study.name="{name}"']  # fmt: skip
    proc = subprocess.Popen(argv, cwd=Path(SMOKE).parents[1], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _complete(POSTGRES_URL, name):
        time.sleep(0.3)
    dropped = _drop_connections(POSTGRES_URL)
    time.sleep(1.0)
    _drop_connections(POSTGRES_URL)  # twice: once while it trains, once more wherever it is
    if POSTGRES_DATA:
        _pg_ctl(POSTGRES_URL, POSTGRES_DATA, "restart")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert dropped >= 1 and "Traceback" not in err
    trials = optuna.load_study(study_name=name, storage=POSTGRES_URL).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 8  # the budget, exactly
    assert TrialState.RUNNING not in [t.state for t in trials]


def _complete(url: str, name: str) -> bool:
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return False
    return any(t.state == TrialState.COMPLETE for t in study.trials)


@pytest.mark.slow
@pytest.mark.skipif(not (POSTGRES_URL and POSTGRES_DATA), reason="a PostgreSQL server this test may stop (.ci/run)")
def test_a_read_between_trials_waits_for_a_server_that_is_away() -> None:
    """What a launch reads between trials (its progress, its summary) meets a restart as a
    trial's writes do: the server stopped, the read waits until it is back, then answers."""
    assert POSTGRES_URL is not None and POSTGRES_DATA is not None
    storage = open_storage(POSTGRES_URL)
    name = f"away-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=storage)
    storage.engine.dispose()  # no pooled connection survives the stop
    _pg_ctl(POSTGRES_URL, POSTGRES_DATA, "stop")
    timer = threading.Timer(2.0, _pg_ctl, args=(POSTGRES_URL, POSTGRES_DATA, "start"))
    timer.start()
    try:
        with pytest.raises((sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)):
            optuna.get_all_study_names(storage=storage)  # away: a plain read fails
        assert name in when_up(lambda: optuna.get_all_study_names(storage=storage), POSTGRES_URL)
    finally:
        timer.join()


def _raise(error: Exception) -> object:
    raise error


def test_when_up_retries_only_a_server_that_is_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a server to stop: the driver's own error types, the back-off's sleeps skipped."""
    slept: list[float] = []
    monkeypatch.setattr("harness.search.faults.time.sleep", slept.append)
    away = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    url = "postgresql+psycopg://u:p@127.0.0.1:1/db"
    answers: list[object] = [away, away, "names"]

    def read() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert when_up(read, url) == "names" and slept == [0.5, 1.0]  # away twice, then back
    full = sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))
    for error, where in ((full, url), (away, "sqlite:///h.db")):  # not a server coming back: raised at once
        slept.clear()
        with pytest.raises(sqlalchemy.exc.OperationalError):
            when_up(lambda e=error: _raise(e), where)
        assert slept == []
    with pytest.raises(StorageFault, match="connection refused"):  # still away after the back-off
        when_up(lambda: _raise(away), url)
    assert sum(slept) == pytest.approx(30.0)
