"""The front end's shared flag helpers: the parser that words its mistakes in one line, flags
typed by a config field's declared rule, the storage and artifact flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from harness.constraints import Integer, Real, Rule, check, default_of, rule_of
from harness.errors import ConfigError


class UsageError(Exception):
    """A mistake in the command line or its inputs, already phrased for the user."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that names the flag is clearer, in
        # the shape every other mistake has ("--lr: must be ...", not "argument --lr: ...").
        raise UsageError(f"{self.prog}: {message.removeprefix('argument ')}")


def flag_type(rule: Rule) -> Callable[[str], Any]:
    """An argparse `type` that judges the word by a declared rule, with the one message shape."""

    def parse(text: str) -> Any:
        try:
            return check("", rule.parse(text), rule)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.message) from None

    return parse


positive_int = flag_type(Integer(1))
positive_float = flag_type(Real(0, low_open=True))


def config_flag(p: argparse.ArgumentParser, flag: str, cls: type, name: str, **kwargs: Any) -> None:
    """A flag for a config field: its rule and (unless `default=None` is passed) its default
    are the field's, declared once on the config class."""
    kwargs.setdefault("default", default_of(cls, name))
    p.add_argument(flag, type=flag_type(rule_of(cls, name)), **kwargs)


def config_error(flags: dict[str, str]) -> Callable[[ConfigError], str]:
    """A bad input's line: a spec's mistake names its file and key (`SpecError`), any other its
    flag (a config field's key mapped through `flags`)."""
    return lambda e: str(e) if hasattr(e, "source") else f"{flags.get(e.key, e.key)}: {e.message}"


STORAGE_FLAGS = {"storage": "--storage", "device": "--device"}


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="SQLAlchemy URL (default: $HARNESS_STORAGE or sqlite:///results/harness.db)")


def add_artifacts(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--artifacts",
        help=f"artifact folder: {what} (default: artifacts/ beside a SQLite database, else results/artifacts)",
    )
