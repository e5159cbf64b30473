"""Each config field's constraint, declared once as data beside the field, and the one checker.

Modelled on scikit-learn's `sklearn/utils/_param_validation.py`: a field is declared with
`setting(default, rule)`, `check` is the only place a value is judged, and every front end
(a spec file, `--set`, a CLI flag, a config built in code) gets the same message:

    must be <what the rule allows>, got <the value>

where <what> ends in `(allowed: ...)` when the allowed values can be listed. The front end
only adds where the value came from (the file and key, or the flag).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Protocol

from harness.errors import ConfigError

RULE = "harness.rule"  # the key of a field's rule in its dataclass metadata


class Rule(Protocol):
    """What every rule answers; the rules below inherit the plain `coerce` and `parse`."""

    def describe(self) -> str:
        """What the rule allows, to follow "must be"."""
        ...

    def coerce(self, value: Any) -> Any:
        """The value in the field's type where that is lossless (TOML 1 -> 1.0, a list -> tuple);
        anything else unchanged, for `accepts` to refuse."""
        return value

    def accepts(self, value: Any) -> bool: ...

    def parse(self, text: str) -> Any:
        """A command-line word as a value; text that does not parse comes back as it is."""
        return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


@dataclass(frozen=True)
class Integer(Rule):
    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer (allowed: {self.low}..{self.high})"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return f"an integer <= {self.high}" if self.high is not None else "an integer"

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def parse(self, text: str) -> Any:
        try:
            return int(text)
        except ValueError:
            return text


@dataclass(frozen=True)
class Real(Rule):
    """A finite number; `low_open`: strictly above `low` (a learning rate of 0 learns nothing)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a finite number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return f"a finite number <= {self.high:g}" if self.high is not None else "a finite number"

    def coerce(self, value: Any) -> Any:
        return float(value) if _is_int(value) else value

    def accepts(self, value: Any) -> bool:
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def parse(self, text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text


@dataclass(frozen=True)
class OneOf(Rule):
    """A name from a registry (or a fixed tuple). The registry itself is kept, not a copy of
    its names, so the allowed list is always the registry's."""

    options: Mapping[Any, Any] | tuple[Any, ...]
    noun: str

    def describe(self) -> str:
        return f"a known {self.noun} (allowed: {', '.join(_label(o) for o in self.options)})"

    def coerce(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.options
        except TypeError:  # unhashable, e.g. a TOML table
            return False


def _label(option: Any) -> str:
    return json.dumps(list(option)) if isinstance(option, tuple) else str(option)  # as a spec writes it


@dataclass(frozen=True)
class Boolean(Rule):
    def describe(self) -> str:
        return "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def parse(self, text: str) -> Any:
        return {"true": True, "false": False}.get(text.lower(), text)


@dataclass(frozen=True)
class Text(Rule):
    """A non-empty string (a name a user will read and type again)."""

    def describe(self) -> str:
        return "a non-empty string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())


def check(key: str, value: Any, rule: Rule) -> Any:
    """The one checker: the value (coerced to the field's type) or a `ConfigError` naming `key`."""
    coerced = rule.coerce(value)
    if not rule.accepts(coerced):
        # The coerced value, so `lr = 0` in a spec and `--lr 0` read alike ("got 0.0").
        raise ConfigError(key, f"must be {rule.describe()}, got {_shown(coerced)}")
    return coerced


def _shown(value: Any) -> str:
    return json.dumps(list(value)) if isinstance(value, tuple) else repr(value)


# ---------------------------------------------------------------- declaring fields
def setting(default: Any = MISSING, rule: Rule | None = None) -> Any:
    """A dataclass field with its rule beside it: `lr: float = setting(0.01, Real(0, low_open=True))`."""
    return field(default=default, metadata={RULE: rule})


def like(cls: type, name: str, default: Any = MISSING) -> Any:
    """A field declared as another class's field (its rule and, unless given, its default), so
    one rule is written once however many config classes carry the value."""
    source = _field(cls, name)
    return setting(source.default if default is MISSING else default, source.metadata[RULE])


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def rules(cls: type) -> dict[str, Rule]:
    """The declared rules of a config class, in field order."""
    return {f.name: f.metadata[RULE] for f in dataclasses.fields(cls) if f.metadata.get(RULE) is not None}


def rule_of(cls: type, name: str) -> Rule:
    rule: Rule = _field(cls, name).metadata[RULE]
    return rule


def default_of(cls: type, name: str) -> Any:
    return _field(cls, name).default


def check_fields(obj: Any) -> None:
    """Check every declared field of a config object (from its `__post_init__`)."""
    for name, rule in rules(type(obj)).items():
        check(name, getattr(obj, name), rule)
