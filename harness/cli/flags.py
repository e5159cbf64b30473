"""The front end's shared flag helpers: flags typed by a config field's declared rule, the
storage and artifact flags, and the one-line summary of a study (`harness launch`, `record`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from harness.constraints import Integer, Real, Rule, check, default_of, rule_of
from harness.errors import ConfigError


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
    return lambda e: f"{flags.get(e.key, e.key)}: {e.message}"


STORAGE_FLAGS = {"storage": "--storage", "device": "--device"}


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="SQLAlchemy URL (default: $HARNESS_STORAGE or sqlite:///results/harness.db)")


def add_artifacts(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--artifacts",
        help=f"artifact folder: {what} (default: artifacts/ beside a SQLite database, else results/artifacts)",
    )


def study_line(summary: dict[str, Any]) -> str:
    c = summary["counts"]
    budget = f" of {summary['target']}" if summary.get("target") else ""  # a per-cell study's share, as it runs
    line = (
        f"{summary['study']}: {c['COMPLETE'] + c['PRUNED']} finished{budget} ({c['COMPLETE']} complete, "
        f"{c['PRUNED']} pruned), {c['FAIL']} failed"
    )
    if summary["best_value"] is None:
        return line + "; no complete trial yet"
    params = ({"cell": summary["best_cell"]} if summary.get("best_cell") else {}) | summary["best_params"]
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return line + f"; best val_mse {summary['best_value']:.4g} (trial {summary['best_trial']}): {shown}"
