"""Faults from outside: the storage or the artifact store failing mid-study.

A full disk, an unwritable database, a dropped PostgreSQL connection or an unwritable
artifact folder is not the trial's fault, so it must not be recorded as one (three such
"failures" in a row used to end a launch with Optuna's misleading "invalid data in the
commit"). The trial loop turns such an error into `StorageFault`, which names where it
happened and the real cause ("database or disk is full"); the running trials are marked
FAIL with that reason where the storage still takes the write, and the front end prints
one line and exits with `exits.EXIT_STORAGE`. Nothing recorded is lost: the next launch of the
same command fails what was left RUNNING (heartbeats), queues its parameters again and
completes the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class StorageFault(Exception):
    """The storage or artifact store failed; `where` names it (None: the study's database,
    which the front end names by its URL), `cause` says why."""

    def __init__(self, where: str | None, cause: str) -> None:
        super().__init__(f"{where or 'the storage'} failed: {cause}")
        self.where, self.cause = where, cause

    def message(self, storage: str) -> str:
        """The one line a user reads; `storage` is the database's (redacted) URL."""
        return (f"{self.where or 'storage ' + storage} failed: {self.cause}; what was recorded is kept: fix that "
                "and run the same command to resume (the interrupted trials run again)")  # fmt: skip


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def storage_cause(error: BaseException) -> str | None:
    """The real cause if `error` is the database failing (Optuna's StorageInternalError, a
    SQLAlchemy operational error, or the driver's own error underneath), else None."""
    import optuna
    import sqlalchemy

    chain = _chain(error)
    if not any(isinstance(e, (optuna.exceptions.StorageInternalError, sqlalchemy.exc.DBAPIError)) for e in chain):
        return None
    for e in chain:  # the deepest driver error says it best: "database or disk is full"
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.orig is not None:
            return (str(e.orig).splitlines() or [type(e.orig).__name__])[0]
    return (str(chain[-1]).splitlines() or [type(chain[-1]).__name__])[0]


def artifact_fault(error: OSError) -> StorageFault:
    """An artifact write that failed: the folder is missing, full or unwritable."""
    where = f"artifact store ({error.filename})" if error.filename else "artifact store"
    return StorageFault(where, error.strerror or str(error))


RECONNECT_SECONDS = 30.0  # how long a launch waits for a database server that went away
_TRANSIENT = (
    "server closed the connection",
    "connection refused",
    "terminating connection",
    "connection to server",
    "could not connect",
    "the database system is",
    "connection is closed",
    "consuming input failed",
)


def transient(error: BaseException, url: str) -> bool:
    """A dropped or refused connection to a database server (PostgreSQL restarting): worth
    waiting for. A SQLite file that is full or unwritable stays so: not transient."""
    if url.startswith("sqlite"):
        return False
    cause = storage_cause(error) if not isinstance(error, StorageFault) else error.cause
    return cause is not None and any(words in cause.lower() for words in _TRANSIENT)


def _delays(budget: float) -> list[float]:
    """A bounded exponential back-off: 0.5, 1, 2, 4, 8 s ... up to `budget` seconds in all."""
    delays: list[float] = []
    delay = 0.5
    while sum(delays) < budget:
        delays.append(min(delay, budget - sum(delays)))
        delay *= 2
    return delays


def wait_for_server(ping: Callable[[], object], budget: float = RECONNECT_SECONDS) -> bool:
    """Call `ping` after each back-off delay until it answers; True once it does."""
    for delay in _delays(budget):
        time.sleep(delay)
        try:
            ping()
            return True
        except Exception:  # still down
            continue
    return False


def when_up(call: Callable[[], T], url: str) -> T:
    """`call()`, tried again after each back-off delay while it fails because the database
    server is away (`transient`). For the reads a launch makes between trials (its progress,
    its summary), which a restart can meet as well as a trial's own writes. Any other error is
    raised at once, as it is; a server still away after `RECONNECT_SECONDS` is a `StorageFault`."""
    for delay in [*_delays(RECONNECT_SECONDS), None]:
        try:
            return call()
        except Exception as e:
            if not transient(e, url):
                raise
            if delay is None:
                raise StorageFault(None, storage_cause(e) or str(e)) from e
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
