"""Unit tests of `harness.search.storage`: which URL is used, how it is checked and shown, and what
opening one sets up, on each file-backed backend the suite has. (Record writes are
`optuna_internals`' and tested on every backend in `test_optuna_internals.py`; the claim lock
is the trial budget's, `launch`'s.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from harness.errors import ConfigError
from harness.search.storage import (
    DEFAULT_STORAGE,
    check_storage,
    default_artifacts,
    open_storage,
    redact,
    redact_text,
    sqlite_path,
    storage_url,
)

from conftest import POSTGRES_URL

SECRET_URL = "postgresql+psycopg://harness:s3cret@db.example/harness"


def test_the_flag_wins_then_the_environment_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_STORAGE", raising=False)
    assert storage_url(None) == DEFAULT_STORAGE
    monkeypatch.setenv("HARNESS_STORAGE", "sqlite:///env.db")
    assert storage_url(None) == "sqlite:///env.db"
    assert storage_url("sqlite:///flag.db") == "sqlite:///flag.db"


def test_a_password_is_never_shown() -> None:
    assert "s3cret" not in redact(SECRET_URL) and "***" in redact(SECRET_URL)
    assert redact_text("could not connect as s3cret", SECRET_URL) == "could not connect as ***"
    assert redact("not a url") == "<unparseable storage URL>"


@pytest.mark.parametrize(
    "url,path",
    [("sqlite:///results/h.db", Path("results/h.db")), ("sqlite://", None), ("sqlite:///:memory:", None),
     (SECRET_URL, None)],
)  # fmt: skip
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def test_artifacts_live_beside_a_sqlite_database() -> None:
    assert default_artifacts("sqlite:///runs/x/h.db") == str(Path("runs/x/artifacts"))
    assert default_artifacts(SECRET_URL) == "results/artifacts"
    assert default_artifacts("::nonsense::") == "results/artifacts"  # check_storage names the mistake


@pytest.mark.parametrize(
    "url,words",
    [
        ("::nonsense::", "not a storage URL"),
        ("redis://localhost/0", "unsupported scheme"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:////nonexistent-folder/h.db", "does not exist"),
        ("results/harness.db", "not a storage URL: 'results/harness.db'; did you mean sqlite:///results/harness.db?"),
        ("sqlite://x.db", "sqlite://x.db names a host (x.db), not a file; a file is sqlite:///x.db (three slashes"),
        ("me:s3cret@db.example/h", "not a storage URL: 'me:***@db.example/h'; e.g. sqlite:///results/harness.db"),
    ],
)
def test_an_unusable_url_is_refused_before_anything_is_written(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_storage(url)
    assert e.value.key == "storage" and words in e.value.message


def test_a_database_that_must_exist(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with pytest.raises(ConfigError, match="no database at"):
        check_storage(url, must_exist=True)
    (tmp_path / "h.db").write_text("not sqlite")
    with pytest.raises(ConfigError, match="is not a SQLite database"):
        check_storage(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The backends `open_storage` accepts (an in-memory one keeps nothing between processes)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'h.db'}"
    if POSTGRES_URL is None:
        pytest.skip("set HARNESS_TEST_POSTGRES_URL (.ci/run starts a server) to run PostgreSQL tests")
    return POSTGRES_URL


def test_open_storage_keeps_heartbeats_and_retries_a_killed_trial(url: str) -> None:
    storage = open_storage(url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert storage.get_heartbeat_interval() is not None
    assert isinstance(storage.get_heartbeat_stale_trial_callback(), optuna.storages.RetryHeartbeatStaleTrialCallback)
    name = f"open-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=storage).add_trial(optuna.trial.create_trial(value=1.0))
    again = open_storage(url, must_exist=True)  # a second process sees the same study
    assert optuna.load_study(study_name=name, storage=again).best_value == 1.0


def test_a_sqlite_database_is_opened_in_wal_mode(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}")
    with storage.engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sqlalchemy.text("PRAGMA synchronous")).scalar() == 1  # NORMAL
