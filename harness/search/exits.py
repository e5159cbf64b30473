"""How an error ends a command or one of its processes: one exit status and one line for each
kind, written once for the front end, the launch's workers and the side-by-side studies.

    1    a worker stopped (too many failed trials in a row, or a process died)
    2    bad input (a spec, a flag, a series file): `ConfigError`
    3    the storage failed (`faults.StorageFault`, or the database's own error underneath)
    130  interrupted (Ctrl-C)
    143  terminated (SIGTERM, as schedulers and container runtimes stop a process)

Any other error is a bug and keeps its traceback.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from harness.errors import ConfigError
from harness.search.faults import StorageFault, storage_cause

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class WorkerError(Exception):
    """A worker stopped: too many failed trials in a row, or a worker process died; or, side
    by side, a study's process stopped (`status` is the exit status it had)."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so everything that handles Ctrl-C (the running
    trials marked FAIL with their reason and queued again, the workers stopped) handles it."""


def _raise_terminated(signum: int, frame: FrameType | None) -> NoReturn:
    raise Terminated()


def catch_sigterm() -> None:
    """From now on SIGTERM in this process (its main thread) is `Terminated`."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def ending(
    error: BaseException, storage: str | None, describe: Callable[[ConfigError], str] = str
) -> tuple[int, str | None] | None:
    """The exit status and the line to print (None: nothing to add) for an error that ends a
    command or a worker; None where the error is a bug. `storage` is the (redacted) database
    URL a storage fault names; `describe` words a bad input (the front end names its flags)."""
    if isinstance(error, Terminated):
        return EXIT_TERMINATED, None
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED, None
    if isinstance(error, ConfigError):
        return EXIT_USAGE, describe(error)
    if isinstance(error, WorkerError):
        return error.status, str(error)
    if isinstance(error, StorageFault):
        return EXIT_STORAGE, error.message(storage or "")
    if isinstance(error, Exception) and (cause := storage_cause(error)) is not None:
        return EXIT_STORAGE, StorageFault(None, cause).message(storage or "")
    return None


@contextmanager
def exiting(prefix: str, storage: str | None) -> Iterator[None]:
    """A child process's body: an error that ends it prints `prefix: <line>` and exits with its
    status, so the parent reads how it ended from its exit code."""
    try:
        yield
    except BaseException as e:
        end = ending(e, storage)
        if end is None:
            raise
        status, line = end
        if line:
            print(f"{prefix}: {line}", file=sys.stderr)
        sys.exit(status)
