"""Where studies live: resolving, checking and opening an Optuna RDB storage.

Default `sqlite:///results/harness.db` (relative to the current directory),
`HARNESS_STORAGE` overrides it, `--storage` wins. Any SQLAlchemy URL works; PostgreSQL lets
several machines share one study.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from harness.errors import ConfigError

DEFAULT_STORAGE = "sqlite:///results/harness.db"
# What Optuna imports on a process's first RDB storage (SQLAlchemy's models, Alembic's
# migrations): ~0.9 s that every study and worker process forked in a launch paid again;
# the fork server imports them once (`launch.worker_context`).
RDB_IMPORTS = ("optuna.storages._rdb.storage", "optuna.storages._rdb.models", "alembic.command",
               "alembic.migration", "alembic.script")  # fmt: skip
BACKENDS = ("sqlite", "postgresql", "mysql")
# A killed worker's trial is failed once its heartbeat is this old, and its parameters are
# queued again; short enough that a relaunch soon after a crash does not wait long.
HEARTBEAT_INTERVAL = 2
GRACE_PERIOD = 10
_CREATION_RACE = ("already exists", "duplicate key", "database is locked", "UNIQUE constraint")
SQLITE_BUSY_TIMEOUT = 60  # seconds; parallel local workers wait for the lock instead of failing


def storage_url(flag: str | None) -> str:
    return flag or os.environ.get("HARNESS_STORAGE") or DEFAULT_STORAGE


def default_artifacts(url: str) -> str:
    """The artifact store's folder when none is given: `artifacts/` beside a SQLite database
    (results/artifacts for the default one), else results/artifacts. Trained weights and
    figures then live next to the trials that refer to them."""
    try:
        path = sqlite_path(url)
    except sqlalchemy.exc.ArgumentError:
        path = None  # check_storage says what is wrong with the URL
    return str(path.parent / "artifacts") if path is not None else "results/artifacts"


def redact(url: str) -> str:
    """The URL with any password masked, for anything printed or stored."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<unparseable storage URL>"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_storage(url: str, *, must_exist: bool = False) -> None:
    """Refuse a URL we cannot use before anything is written."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        shown = re.sub(r":[^:@/]*@", ":***@", url)  # echo the value, never a password in it
        hint = f"did you mean sqlite:///{url}?" if not re.search("://|@", url) else f"e.g. {DEFAULT_STORAGE}"
        raise ConfigError("storage", f"not a storage URL: {shown!r}; {hint}") from None
    if parsed.get_backend_name() not in BACKENDS:
        raise ConfigError(
            "storage", f"unsupported scheme {parsed.drivername!r}; allowed: sqlite:///PATH, postgresql+psycopg://..."
        )
    if parsed.get_backend_name() == "sqlite" and parsed.host:  # sqlite://x.db: x.db is read as a host
        raise ConfigError("storage", f"{redact(url)} names a host ({parsed.host}), not a file; a file is "
                                     f"sqlite:///{parsed.host}{'/' + parsed.database if parsed.database else ''} "
                                     "(three slashes, four for an absolute path)")  # fmt: skip
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            "storage", f"an in-memory database keeps nothing between processes; give a file, e.g. {DEFAULT_STORAGE}"
        )
    path = sqlite_path(url)
    if path is None:
        return
    if must_exist and not path.is_file():
        raise ConfigError("storage", f"no database at {path}; run `harness launch` first or pass --storage")
    if path.exists():
        _check_sqlite_file(path)
    folder = path.parent
    if url == DEFAULT_STORAGE and not must_exist:
        folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise ConfigError("storage", f"folder {folder} does not exist")
    if not path.exists():
        try:  # a real write, not os.access: root passes that check on read-only mounts too
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as e:
            raise ConfigError("storage", f"folder {folder} is not writable ({e.strerror})") from None


def _check_sqlite_file(path: Path) -> None:
    """An existing file must be a SQLite database (or empty) before anything touches it:
    SQLite itself would only say so after the claim lock's file was written beside it.

    Asked of SQLite through a read-only connection, never by opening the file ourselves:
    closing any other descriptor of a database file drops the POSIX locks this process's
    SQLite connections hold on it (a dashboard thread, an open storage), and concurrent
    writers then corrupt what it reads."""
    if path.is_dir():
        raise ConfigError("storage", f"{path} is a folder, not a SQLite database file")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as e:
        raise ConfigError(
            "storage", f"{path} is not a SQLite database ({e}); give a new path or a harness database"
        ) from None


def open_storage(url: str, *, must_exist: bool = False) -> optuna.storages.RDBStorage:
    check_storage(url, must_exist=must_exist)
    engine_kwargs: dict[str, object] = {}
    if make_url(url).get_backend_name() == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    else:
        engine_kwargs["pool_pre_ping"] = True
    # Two processes creating Optuna's tables in a new database at once collide (PostgreSQL:
    # "duplicate key value violates unique constraint"): harness processes take turns under a
    # lock, and a race with any other reader (a dashboard, Optuna itself) is retried.
    lock = ClaimLock(url, "harness: create tables") if not must_exist else None
    for attempt in range(5):
        try:
            with warnings.catch_warnings(), _held(lock):
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_INTERVAL,
                    grace_period=GRACE_PERIOD,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
            break
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if attempt < 4 and any(word in reason for word in _CREATION_RACE):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ConfigError("storage", f"cannot open {redact(url)}: {redact_text(reason, url)}") from None
    if sqlite_path(url) is not None:
        _tune_sqlite(storage.engine)
    return storage


def _tune_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """Write-ahead logging: readers (report, dashboard) never block writers, and a commit is
    an append instead of a rewrite of the journal. synchronous=NORMAL is the setting SQLite
    recommends with WAL: a power cut may lose the last commits, never corrupt the file."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened while Optuna created its tables get the setting too
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")  # stored in the file, once


@contextlib.contextmanager
def _held(lock: ClaimLock | None) -> Iterator[None]:
    if lock is None:
        yield
        return
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def redact_text(text: str, url: str) -> str:
    password = make_url(url).password
    return text.replace(str(password), "***") if password else text


class ClaimLock:
    """A mutex across workers, held from "count the budget" until the new trial exists.

    Without it two workers can both see one free place and both create a trial; the claim
    check then fails the second, leaving a FAIL trial behind. SQLite: an flock on a file
    beside the database (every worker is on this machine). PostgreSQL: an advisory lock,
    which spans machines. Other backends: no lock, and the claim check alone keeps the count.
    Used as `with lock:` around counting and asking, in one scope (`launch.claim_trial`).
    """

    def __init__(self, url: str, name: str) -> None:
        self._path = sqlite_path(url)
        self._key = zlib.crc32(name.encode()) & 0x7FFFFFFF
        pg = self._path is None and make_url(url).get_backend_name() == "postgresql"
        self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool) if pg else None
        self._held: Any = None

    def acquire(self) -> None:
        if self._path is not None:
            # one lock file for every name: on one machine, serialising them all costs nothing
            self._held = open(f"{self._path}.claim-lock", "a+")  # noqa: SIM115 - held across calls
            fcntl.flock(self._held, fcntl.LOCK_EX)
        elif self._engine is not None:
            self._held = self._engine.connect()
            self._held.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})

    def __enter__(self) -> ClaimLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if self._path is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
        else:
            held.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        held.close()
