"""Study specs: TOML data -> validated frozen dataclasses.

A spec has four tables. `[study]` names the study and how it searches, `[signal]` the
series, `[training]` the fixed training settings, `[search]` the search space: a list is a
categorical choice, a table `{low, high, log}` a range, a plain value a fixed setting.
Nothing in a spec is evaluated; every mistake is a `SpecError` naming the file and key.
Each key's rule is the one declared on its config field (`harness.constraints`); a key set in
both `[training]` and `[search]` is an error, so which value a trial uses is never a guess.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.constraints import Boolean, Integer, OneOf, Real, Rule, Text, check, check_fields, like, rule_of, rules
from harness.constraints import setting as _setting
from harness.errors import ConfigError
from harness.search.samplers import PRUNERS, SAMPLERS
from harness.series.collections import CollectionConfig
from harness.series.data import split_indices
from harness.series.signals import SignalConfig
from harness.training.collection import OBJECTIVE as COLLECTION_OBJECTIVE
from harness.training.collection import CollectionRunConfig
from harness.training.train import RunConfig

# The objective lists a study may have: a validation error alone, or with training time (Pareto).
# `val_mse` (the default) for any series; `val_mase` for a real one (scale-free, in its own
# units); `val_smape` for a collection (the mean over its series: `training.collection`).
OBJECTIVES = (
    ("val_mse",),
    ("val_mse", "train_seconds"),
    ("val_mase",),
    ("val_mase", "train_seconds"),
    (COLLECTION_OBJECTIVE,),
    (COLLECTION_OBJECTIVE, "train_seconds"),
)
# Searchable run settings (their rules are RunConfig's, `scope` CollectionRunConfig's); the first
# four are the notebook's questions. `seed` as a list is `harness record`'s: each recorded run's
# training seed is one of its choices. `scope` is a collection's only.
SEARCHABLE = ("cell", "hidden_size", "window", "lr", "num_layers", "batch_size", "seed", "scope")


class SpecError(ConfigError):
    """A spec mistake: `key` is the dotted spec key, `source` the file (or flag) it came from."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(key, message)
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}"


@dataclass(frozen=True)
class StudySettings:
    name: str = _setting(rule=Text())
    sampler: str = _setting("tpe", OneOf(SAMPLERS, "sampler"))
    sampler_seed: int = _setting(0, Integer())
    pruner: str = _setting("median", OneOf(PRUNERS, "pruner"))
    trials: int = _setting(20, Integer(1))
    objectives: tuple[str, ...] = _setting(OBJECTIVES[0], OneOf(OBJECTIVES, "objective list"))
    # Each cell its own study (`<name>/<cell>`) with an equal share of `trials`, so cells are
    # compared after equal search effort; otherwise the sampler treats `cell` as one more
    # parameter and may give one cell most of the budget.
    equal_cells: bool = _setting(False, Boolean())

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class TrainingSettings:
    """The fixed training settings: `RunConfig`'s fields, with its rules; two defaults differ."""

    protocol: str = like(RunConfig, "protocol")
    epochs: int = like(RunConfig, "epochs", default=20)
    batch_size: int = like(RunConfig, "batch_size")
    num_layers: int = like(RunConfig, "num_layers")
    seed: int = like(RunConfig, "seed", default=0)  # every trial trains with it: trials differ only by parameters
    precision: str = like(RunConfig, "precision")  # fp32, tf32 (TensorFloat-32 on GPUs) or fp64
    deterministic: bool = like(RunConfig, "deterministic")  # replicates and re-runs rely on it

    def __post_init__(self) -> None:
        check_fields(self)


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
    collection: CollectionConfig | None = None  # a competition's series instead of `signal`

    @property
    def objective(self) -> str:
        """The validation metric the study minimises (its first objective)."""
        return self.study.objectives[0]

    def trial_config(self, params: dict[str, Any]) -> RunConfig | CollectionRunConfig:
        """What a trial with `params` trains: one series' run, or a collection's."""
        t = self.training
        values: dict[str, Any] = {"epochs": t.epochs, "batch_size": t.batch_size, "seed": t.seed}
        values |= {"precision": t.precision, "deterministic": t.deterministic, **self.fixed, **params}
        if self.collection is not None:
            return CollectionRunConfig(collection=self.collection, **values)
        return RunConfig(signal=self.signal, protocol=t.protocol, num_layers=t.num_layers, **values)

    def run_config(self, params: dict[str, Any]) -> RunConfig:
        """A series spec's run with `params` (what races, records and replicates train)."""
        config = self.trial_config(params)
        if not isinstance(config, RunConfig):
            raise ConfigError("collection", f"{self.study.name} searches a collection; this command takes a series")
        return config

    def largest_window(self) -> int:
        """The longest window this spec's search may try."""
        window = self.search.get("window", self.fixed.get("window", 0))
        if isinstance(window, Range):
            return int(window.high)
        return int(max(window.values)) if isinstance(window, Choice) else int(window)

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
        """Plain data (TOML-shaped), stored as a study attribute; a key `[search]` sets is left
        out of `[training]`, since a spec may set it in one table only."""
        search: dict[str, Any] = dict(self.fixed)
        for name, p in self.search.items():
            search[name] = list(p.values) if isinstance(p, Choice) else asdict(p)
        where = (
            {"collection": asdict(self.collection) | {"ids": list(self.collection.ids)}}
            if self.collection
            else {"signal": asdict(self.signal)}
        )
        return {
            "study": asdict(self.study) | {"objectives": list(self.study.objectives)},
            **where,
            "training": {k: v for k, v in asdict(self.training).items() if k not in search},
            "search": search,
        }


_TABLES: dict[str, type] = {
    "study": StudySettings,
    "signal": SignalConfig,
    "series": SignalConfig,  # the same table by its newer name: a spec gives one of the two
    "training": TrainingSettings,
    "collection": CollectionConfig,  # a competition's series (series.collections), instead of [series]
}
_ALL_TABLES = ", ".join([*_TABLES, "search"])


def _allowed_keys(table: str) -> list[str]:
    if table == "search":
        return list(SEARCHABLE)
    return list(rules(_TABLES[table]))


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
        if table in ("signal", "series") and table not in merged:  # one table by either of its names
            table = next((t for t in ("series", "signal") if t in merged), table)
        merged.setdefault(table, {})[name] = _parse_value(value.strip())
    return merged


def _checked(source: str, key: str, value: Any, rule: Rule) -> Any:
    try:
        return check(key, value, rule)
    except ConfigError as e:
        raise SpecError(source, key, e.message) from None


def _table(source: str, raw: dict[str, Any], table: str, cls: type, defaults: dict[str, Any]) -> Any:
    section = raw.get(table, {})
    if not isinstance(section, dict):
        raise SpecError(source, table, "must be a table")
    declared = rules(cls)
    values = dict(defaults)
    for key, value in section.items():
        if key not in declared:
            raise SpecError(source, f"{table}.{key}", f"unknown key; allowed: {', '.join(declared)}")
        values[key] = _checked(source, f"{table}.{key}", value, declared[key])
    try:
        return cls(**values)
    except ConfigError as e:
        raise SpecError(source, f"{table}.{e.key}", e.message) from None


def _param(source: str, name: str, value: Any) -> Param | Any:
    key, rule = f"search.{name}", rule_of(CollectionRunConfig if name == "scope" else RunConfig, name)
    if isinstance(value, list):
        if not value:
            raise SpecError(source, key, "empty list; give at least one value")
        return Choice(tuple(_checked(source, key, v, rule) for v in value))
    if isinstance(value, dict):
        if not isinstance(rule, (Integer, Real)):
            raise SpecError(source, key, "a categorical setting takes a list of values, not a range")
        unknown = sorted(set(value) - {"low", "high", "log"})
        if unknown:
            raise SpecError(source, f"{key}.{unknown[0]}", "unknown key; a range is a table with keys low, high and "
                                                           "optional log")  # fmt: skip
        if not {"low", "high"} <= set(value):
            raise SpecError(source, key, "a range is a table with keys low, high and optional log")
        low, high = (_checked(source, f"{key}.{b}", value[b], rule) for b in ("low", "high"))
        log = _checked(source, f"{key}.log", value.get("log", False), Boolean())
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise SpecError(source, key, f"empty or inverted range: low={low} must be <= high={high}")
        return Range(low, high, log)
    return _checked(source, key, value, rule)


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
    if spec.collection is not None:
        _check_collection(source, spec, entries)
        return
    if "scope" in entries:
        raise SpecError(source, "search.scope", "is a collection's setting; give a [collection] table, or leave it out")
    real = spec.signal.real
    if spec.objective == COLLECTION_OBJECTIVE or (spec.objective == "val_mase" and not real):
        allowed = "val_mse, or val_mase for a real series" if not real else "val_mse or val_mase"
        raise SpecError(source, "study.objectives", f"must begin with {allowed} here, got {spec.objective}")
    # Each value met its field's rule in `_param`; the window's bound depends on the signal.
    for v in _values(entries["window"]):
        try:
            split_indices(spec.signal.length, v)
        except ConfigError as e:
            raise SpecError(source, "search.window", e.message) from None
    if spec.study.sampler == "grid":
        ranged = [n for n, p in spec.search.items() if isinstance(p, Range)]
        if ranged:
            raise SpecError(source, f"search.{ranged[0]}", "the grid sampler needs a list of values, not a range")


def _check_collection(source: str, spec: StudySpec, entries: dict[str, Any]) -> None:
    """A collection's run has one layer, no protocol to choose (windows of each series) and
    is judged by its mean validation sMAPE; any window fits (a short series is padded)."""
    if spec.objective != COLLECTION_OBJECTIVE:
        raise SpecError(source, "study.objectives", f"must begin with {COLLECTION_OBJECTIVE} for a collection, "
                                                    f"got {spec.objective}")  # fmt: skip
    if "num_layers" in entries:
        raise SpecError(source, "search.num_layers", "is not a collection's setting (one layer a model); leave it out")
    defaults = TrainingSettings()
    for name in ("num_layers", "protocol"):
        if getattr(spec.training, name) != getattr(defaults, name):
            raise SpecError(source, f"training.{name}", f"must be {getattr(defaults, name)!r} for a collection (one "
                                                        "layer, windows of each series), or left out")  # fmt: skip


def build_spec(raw: dict[str, Any], source: str) -> StudySpec:
    for table in raw:
        if table not in (*_TABLES, "search"):
            raise SpecError(source, table, f"unknown table; allowed: {_ALL_TABLES}")
    study = _table(source, raw, "study", StudySettings, {"name": Path(source).stem})
    if len(study.objectives) > 1 and study.pruner != "none":
        raise SpecError(
            source, "study.pruner", 'pruning is single-objective in Optuna 5; use pruner = "none" with two objectives'
        )
    collection = None
    if "collection" in raw:
        if "series" in raw or "signal" in raw:
            raise SpecError(source, "collection", "given with [series] too; a study searches a collection or a series")
        collection = _table(source, raw, "collection", CollectionConfig, {})
        if "objectives" not in raw.get("study", {}):  # a collection's default objective
            study = replace(study, objectives=(COLLECTION_OBJECTIVE,))
    signal = _table(source, _with_path(raw, source), _series_table(source, raw), SignalConfig, {})
    training = _table(source, raw, "training", TrainingSettings, {})
    search_raw = raw.get("search", {})
    if not isinstance(search_raw, dict):
        raise SpecError(source, "search", "must be a table")
    both = [name for name in raw.get("training", {}) if name in search_raw]
    if both:
        raise SpecError(source, f"search.{both[0]}", f"also set as training.{both[0]}; set it in one table: "
                        "[training] for a fixed value, [search] for a searched (or fixed) one")  # fmt: skip
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
    spec = StudySpec(study, signal, training, search, fixed, collection=collection)
    _check_search(source, spec)
    return spec


def _series_table(source: str, raw: dict[str, Any]) -> str:
    """`[series]` or `[signal]` (its older name, still read), never both."""
    if "series" in raw and "signal" in raw:
        raise SpecError(source, "series", "given with [signal] too; give one of them (signal is its older name)")
    return "series" if "series" in raw else "signal"


def _with_path(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """A file series' relative `path` is read from the spec file's folder, and stored resolved."""
    table = _series_table(source, raw)
    section = raw.get(table)
    if not isinstance(section, dict):
        return raw
    path = section.get("path")
    if not isinstance(path, str) or not path or Path(path).is_absolute() or not Path(source).is_file():
        return raw
    return {**raw, table: {**section, "path": str((Path(source).parent / path).resolve())}}


def _from_overrides(e: SpecError, overrides: list[str]) -> SpecError:
    """A mistake in a value `--set` gave is named as `--set`'s, not the file's."""
    keys = {item.partition("=")[0].strip() for item in overrides}
    return SpecError("--set", e.key, e.message) if any(e.key == k or e.key.startswith(k + ".") for k in keys) else e


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
    try:
        return build_spec(apply_overrides(raw, overrides or []), source)
    except SpecError as e:
        raise _from_overrides(e, overrides or []) from None


def spec_from_dict(data: dict[str, Any], source: str = "<stored spec>") -> StudySpec:
    # A spec stored before a key could be set in one table only holds every [training] key,
    # and its [search] value won: read it that way. One stored while a launch could train
    # several trials as one group holds an [execution] table: how its trials ran, not what
    # they computed, so it is read without it.
    search = data.get("search", {})
    training = {k: v for k, v in data.get("training", {}).items() if k not in search}
    kept = {k: v for k, v in data.items() if k != "execution"}
    return build_spec({**kept, "training": training}, source)
