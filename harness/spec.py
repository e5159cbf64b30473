"""Study specs: TOML data -> validated frozen dataclasses.

A spec has four tables. `[study]` names the study and how it searches, `[signal]` the
series, `[training]` the fixed training settings, `[search]` the search space: a list is a
categorical choice, a table `{low, high, log}` a range, a plain value a fixed setting.
Nothing in a spec is evaluated; every mistake is a `SpecError` naming the file and key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.data import split_indices
from harness.device import PRECISIONS
from harness.errors import ConfigError
from harness.models import CELLS
from harness.signals import SignalConfig
from harness.train import PROTOCOLS, RunConfig

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsga2")
PRUNERS = ("median", "hyperband", "successive-halving", "none")
OBJECTIVES = ("val_mse", "train_seconds")
# Searchable RunConfig fields and their kinds; the first four are the notebook's questions.
SEARCHABLE: dict[str, type] = {
    "cell": str,
    "hidden_size": int,
    "window": int,
    "lr": float,
    "num_layers": int,
    "batch_size": int,
}


class SpecError(ConfigError):
    """A spec mistake: `key` is the dotted spec key, `source` the file (or flag) it came from."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(key, message)
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}"


@dataclass(frozen=True)
class StudySettings:
    name: str
    sampler: str = "tpe"
    sampler_seed: int = 0
    pruner: str = "median"
    trials: int = 20
    objectives: tuple[str, ...] = ("val_mse",)
    # Each cell its own study (`<name>/<cell>`) with an equal share of `trials`, so cells are
    # compared after equal search effort; otherwise the sampler treats `cell` as one more
    # parameter and may give one cell most of the budget.
    equal_cells: bool = False


@dataclass(frozen=True)
class TrainingSettings:
    protocol: str = "window"
    epochs: int = 20
    batch_size: int = 64
    num_layers: int = 1
    seed: int = 0  # every trial trains with this seed, so trials differ only by their parameters
    precision: str = "fp32"  # fp32, tf32 (TensorFloat-32 on GPUs that have it) or fp64
    deterministic: bool = True  # deterministic algorithms (replicates and re-runs rely on it)


@dataclass(frozen=True)
class ExecutionSettings:
    """How trials run, not what they compute: a trial's results are the same either way."""

    fuse: int = 1  # up to this many trials train together as one batched model (harness.group)


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


Param = Range | Choice


@dataclass(frozen=True)
class StudySpec:
    study: StudySettings
    signal: SignalConfig
    training: TrainingSettings
    search: dict[str, Param] = field(default_factory=dict)  # searched fields
    fixed: dict[str, Any] = field(default_factory=dict)  # [search] keys given a plain value
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)

    def run_config(self, params: dict[str, Any]) -> RunConfig:
        t = self.training
        values: dict[str, Any] = {"protocol": t.protocol, "epochs": t.epochs, "batch_size": t.batch_size}
        values |= {"num_layers": t.num_layers, "seed": t.seed, "precision": t.precision}
        values |= {"deterministic": t.deterministic, **self.fixed, **params}
        return RunConfig(signal=self.signal, **values)

    def cells(self) -> list[str]:
        """The cells this spec searches, in its order."""
        cell = self.search.get("cell", self.fixed.get("cell"))
        return list(cell.values) if isinstance(cell, Choice) else [str(cell)]

    def per_cell(self, target: int) -> dict[str, StudySpec]:
        """With `equal_cells`: one spec per cell, named `<name>/<cell>`, each with an equal
        share of `target` trials (rounded up) and its own search over the other parameters."""
        share = -(-target // len(self.cells()))
        search = {k: v for k, v in self.search.items() if k != "cell"}
        return {
            cell: replace(
                self,
                study=replace(self.study, name=f"{self.study.name}/{cell}", trials=share, equal_cells=False),
                search=search,
                fixed={**self.fixed, "cell": cell},
            )
            for cell in self.cells()
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML-shaped), stored as a study attribute."""
        search: dict[str, Any] = dict(self.fixed)
        for name, p in self.search.items():
            search[name] = list(p.values) if isinstance(p, Choice) else asdict(p)
        return {
            "study": asdict(self.study) | {"objectives": list(self.study.objectives)},
            "signal": asdict(self.signal),
            "training": asdict(self.training),
            "search": search,
            "execution": asdict(self.execution),
        }


_TABLES: dict[str, type] = {
    "study": StudySettings,
    "signal": SignalConfig,
    "training": TrainingSettings,
    "execution": ExecutionSettings,
}
_ALL_TABLES = ", ".join([*_TABLES, "search"])


def _allowed_keys(table: str) -> list[str]:
    if table == "search":
        return list(SEARCHABLE)
    return [f.name for f in fields(_TABLES[table])]


def _parse_value(text: str) -> Any:
    """A `--set` value is read as a TOML value (`3`, `1e-3`, `["lstm"]`), else as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `table.key=value` overrides; the result is validated like the file."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        table, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise SpecError("--set", item, "expected table.key=value, e.g. training.epochs=3")
        if table not in (*_TABLES, "search"):
            raise SpecError("--set", key, f"unknown table {table!r}; allowed: {_ALL_TABLES}")
        if name not in _allowed_keys(table):
            raise SpecError("--set", key, f"unknown key; allowed: {', '.join(_allowed_keys(table))}")
        merged.setdefault(table, {})[name] = _parse_value(value.strip())
    return merged


def _check_type(source: str, key: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, kind) and not isinstance(value, bool) if kind is not bool else isinstance(value, bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is tuple and isinstance(value, list):
        return tuple(value)
    if not ok:
        raise SpecError(source, key, f"must be {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}")
    return value


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", tuple: "a list"}


def _table(source: str, raw: dict[str, Any], table: str, cls: type, defaults: dict[str, Any]) -> Any:
    section = raw.get(table, {})
    if not isinstance(section, dict):
        raise SpecError(source, table, "must be a table")
    kinds = {f.name: f.type for f in fields(cls)}
    values = dict(defaults)
    for key, value in section.items():
        if key not in kinds:
            raise SpecError(source, f"{table}.{key}", f"unknown key; allowed: {', '.join(kinds)}")
        kind = {"str": str, "int": int, "float": float, "bool": bool}.get(str(kinds[key]), tuple)
        values[key] = _check_type(source, f"{table}.{key}", value, kind)
    try:
        return cls(**values)
    except ConfigError as e:
        raise SpecError(source, f"{table}.{e.key}", e.message) from None


def _param(source: str, name: str, value: Any) -> Param | Any:
    key, kind = f"search.{name}", SEARCHABLE[name]
    if isinstance(value, list):
        if not value:
            raise SpecError(source, key, "empty list; give at least one value")
        return Choice(tuple(_check_type(source, key, v, kind) for v in value))
    if isinstance(value, dict):
        if kind is str:
            raise SpecError(source, key, "a categorical setting takes a list of values, not a range")
        unknown = set(value) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(value):
            raise SpecError(source, key, "a range is a table with keys low, high and optional log")
        low, high = (_check_type(source, f"{key}.{b}", value[b], kind) for b in ("low", "high"))
        log = _check_type(source, f"{key}.log", value.get("log", False), bool)
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise SpecError(source, key, f"empty or inverted range: low={low} must be <= high={high}")
        return Range(low, high, log)
    return _check_type(source, key, value, kind)


def _values(p: Param | Any) -> list[Any]:
    """The extreme values a setting can take, to check them once here, not mid-study."""
    if isinstance(p, Choice):
        return list(p.values)
    if isinstance(p, Range):
        return [p.low, p.high]
    return [p]


def _check_search(source: str, spec: StudySpec) -> None:
    entries = {**spec.fixed, **spec.search}
    for name in ("cell", "hidden_size", "window", "lr"):
        if name not in entries:
            raise SpecError(source, f"search.{name}", "missing; give a list, a range {low, high} or a value")
    for name, p in entries.items():
        key = f"search.{name}"
        for v in _values(p):
            if name == "cell" and v not in CELLS:
                raise SpecError(source, key, f"unknown cell {v!r}; allowed: {', '.join(CELLS)}")
            if name in ("hidden_size", "num_layers", "batch_size", "window") and v < 1:
                raise SpecError(source, key, f"must be >= 1, got {v}")
            if name == "lr" and not v > 0:
                raise SpecError(source, key, f"must be > 0, got {v}")
            if name == "window":
                try:
                    split_indices(spec.signal.length, v)
                except ConfigError as e:
                    raise SpecError(source, key, e.message + " (no training or validation data)") from None
    if spec.study.sampler == "grid":
        ranged = [n for n, p in spec.search.items() if isinstance(p, Range)]
        if ranged:
            raise SpecError(source, f"search.{ranged[0]}", "the grid sampler needs a list of values, not a range")


def build_spec(raw: dict[str, Any], source: str) -> StudySpec:
    for table in raw:
        if table not in (*_TABLES, "search"):
            raise SpecError(source, table, f"unknown table; allowed: {_ALL_TABLES}")
    study = _table(source, raw, "study", StudySettings, {"name": Path(source).stem})
    if study.sampler not in SAMPLERS:
        raise SpecError(source, "study.sampler", f"unknown sampler {study.sampler!r}; allowed: {', '.join(SAMPLERS)}")
    if study.pruner not in PRUNERS:
        raise SpecError(source, "study.pruner", f"unknown pruner {study.pruner!r}; allowed: {', '.join(PRUNERS)}")
    if not study.name.strip():
        raise SpecError(source, "study.name", "must not be empty")
    if study.trials < 1:
        raise SpecError(source, "study.trials", f"must be >= 1, got {study.trials}")
    objectives = study.objectives
    if (
        not objectives
        or objectives[0] != "val_mse"
        or len(set(objectives)) != len(objectives)
        or any(o not in OBJECTIVES for o in objectives)
    ):
        raise SpecError(source, "study.objectives", 'allowed: ["val_mse"] or ["val_mse", "train_seconds"]')
    if len(objectives) > 1 and study.pruner != "none":
        raise SpecError(
            source, "study.pruner", 'pruning is single-objective in Optuna 5; use pruner = "none" with two objectives'
        )
    signal = _table(source, raw, "signal", SignalConfig, {})
    training = _table(source, raw, "training", TrainingSettings, {})
    if training.protocol not in PROTOCOLS:
        raise SpecError(source, "training.protocol", f"unknown protocol {training.protocol!r}; allowed: seed, window")
    if training.precision not in PRECISIONS:
        raise SpecError(
            source, "training.precision", f"unknown precision {training.precision!r}; allowed: {', '.join(PRECISIONS)}"
        )
    for name in ("epochs", "batch_size", "num_layers"):
        if getattr(training, name) < 1:
            raise SpecError(source, f"training.{name}", f"must be >= 1, got {getattr(training, name)}")
    search_raw = raw.get("search", {})
    if not isinstance(search_raw, dict):
        raise SpecError(source, "search", "must be a table")
    search: dict[str, Param] = {}
    fixed: dict[str, Any] = {}
    for name, value in search_raw.items():
        if name not in SEARCHABLE:
            raise SpecError(source, f"search.{name}", f"unknown key; allowed: {', '.join(SEARCHABLE)}")
        p = _param(source, name, value)
        if isinstance(p, (Range, Choice)):
            search[name] = p
        else:
            fixed[name] = p
    execution = _table(source, raw, "execution", ExecutionSettings, {})
    if execution.fuse < 1:
        raise SpecError(source, "execution.fuse", f"must be an integer >= 1, got {execution.fuse}")
    spec = StudySpec(study, signal, training, search, fixed, execution)
    _check_search(source, spec)
    return spec


def load_spec(path: str | Path, overrides: list[str] | None = None) -> StudySpec:
    source = str(path)
    try:
        # utf-8-sig: a byte-order mark some editors write is not a TOML error
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(source, "spec", "no such file; give a study spec (.toml), e.g. studies/smoke.toml") from None
    except UnicodeDecodeError as e:
        raise SpecError(source, "spec", f"not UTF-8 text (byte {e.start}); a spec is a TOML text file") from None
    except OSError as e:
        raise SpecError(source, "spec", f"cannot be read ({e.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(source, "toml", f"malformed TOML: {e}") from None
    return build_spec(apply_overrides(raw, overrides or []), source)


def spec_from_dict(data: dict[str, Any], source: str = "<stored spec>") -> StudySpec:
    return build_spec(data, source)
