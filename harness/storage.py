"""Where studies live: resolving, checking and opening an Optuna RDB storage.

Default `sqlite:///results/harness.db` (relative to the current directory),
`HARNESS_STORAGE` overrides it, `--storage` wins. Any SQLAlchemy URL works; PostgreSQL lets
several machines share one study.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from harness.errors import ConfigError

DEFAULT_STORAGE = "sqlite:///results/harness.db"
BACKENDS = ("sqlite", "postgresql", "mysql")
# A killed worker's trial is failed once its heartbeat is this old, and its parameters are
# queued again; short enough that a relaunch soon after a crash does not wait long.
HEARTBEAT_INTERVAL = 2
GRACE_PERIOD = 10
SQLITE_BUSY_TIMEOUT = 60  # seconds; parallel local workers wait for the lock instead of failing


def storage_url(flag: str | None) -> str:
    return flag or os.environ.get("HARNESS_STORAGE") or DEFAULT_STORAGE


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
        raise ConfigError("storage", f"not a storage URL: {redact(url)}; e.g. {DEFAULT_STORAGE}") from None
    if parsed.get_backend_name() not in BACKENDS:
        raise ConfigError(
            "storage", f"unsupported scheme {parsed.drivername!r}; allowed: sqlite:///PATH, postgresql+psycopg://..."
        )
    path = sqlite_path(url)
    if path is None:
        return
    if must_exist and not path.is_file():
        raise ConfigError("storage", f"no database at {path}; run `harness launch` first or pass --storage")
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


def open_storage(url: str, *, must_exist: bool = False) -> optuna.storages.RDBStorage:
    check_storage(url, must_exist=must_exist)
    engine_kwargs: dict[str, object] = {}
    if make_url(url).get_backend_name() == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    else:
        engine_kwargs["pool_pre_ping"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError("storage", f"cannot open {redact(url)}: {redact_text(reason, url)}") from None


def redact_text(text: str, url: str) -> str:
    password = make_url(url).password
    return text.replace(str(password), "***") if password else text
