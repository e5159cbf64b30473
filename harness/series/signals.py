"""Signal definitions: the notebook's two sine waves, the registry that names them, and the
config that chooses a series from one of three sources.

A signal is a finite series y[0..N). `source = "synthetic"` (the default) is a registered
sinusoid given by its angular frequency; length, amplitude, phase and Gaussian noise are
parameters, so a noisy or shorter variant needs no new code, and its values are exactly
what they were before real series existed. `source = "builtin"` names a dataset shipped
with the package and `source = "file"` a user's CSV column (`harness.series.sources`):
their length, season, horizon and SHA-256 come from the data and are filled in when the
config is made, so a stored config names exactly the values it trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from harness.constraints import Integer, OneOf, Real, Rule, check, check_fields, setting
from harness.errors import ConfigError
from harness.series import sources
from harness.series.data import TRAIN_FRAC
from harness.series.sources import BUILTINS, MISSING, TRANSFORMS

# Angular frequencies in radians per sample, written in the notebook's own order of
# operations (`np.pi * .125 * x` and `1/10 * np.pi * .125 * x`) so the series agree with
# the notebook bit for bit.
SIGNALS: dict[str, float] = {
    "short-period": np.pi * 0.125,  # period 16 samples
    "long-period": 1 / 10 * np.pi * 0.125,  # period 160 samples
}


SOURCES = ("synthetic", "builtin", "file")
NAMES = (*SIGNALS, *BUILTINS)  # what `name` may be: a sine's name, or a builtin series' name
SYNTHETIC_ONLY = ("length", "amplitude", "phase", "noise_std", "noise_seed")
REAL_ONLY = ("path", "column", "time_column", "missing", "season", "transform", "horizon", "sha256")
FILE_ONLY = ("path", "column", "time_column")


@dataclass(frozen=True)
class AnyText(Rule):
    """Any string, empty included (an unset path or column)."""

    def describe(self) -> str:
        return "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)


@dataclass(frozen=True)
class SignalConfig:
    """Everything needed to regenerate a signal exactly (or to find a real series again and
    know whether it changed)."""

    name: str = setting("short-period", OneOf(NAMES, "series name"))
    length: int = setting(1000, Integer(2))  # a real series: values the model sees, filled in from the data
    amplitude: float = setting(1.0, Real())
    phase: float = setting(0.0, Real())
    noise_std: float = setting(0.0, Real(0))
    noise_seed: int = setting(0, Integer(0))  # numpy's generators take no negative seed
    source: str = setting("synthetic", OneOf(SOURCES, "source"))
    path: str = setting("", AnyText())  # file: the CSV
    column: str = setting("", AnyText())  # file: the column of values
    time_column: str = setting("", AnyText())  # file: optional dates or years, for the season
    missing: str = setting("error", OneOf(MISSING, "missing-value policy"))
    season: int = setting(0, Integer(0))  # samples per cycle; 0: from the time column (1, none, if irregular)
    transform: str = setting("none", OneOf(TRANSFORMS, "transform"))
    horizon: int = setting(0, Integer(0))  # steps ahead for error by horizon; 0: by frequency, as in M4
    sha256: str = setting("", AnyText())  # the values' hash, filled in; a stored one must still match

    def __post_init__(self) -> None:
        check_fields(self)
        default = {f.name: f.default for f in fields(self)}
        if self.source == "synthetic":
            check("name", self.name, OneOf(SIGNALS, "signal for source = synthetic"))
            _only(self, REAL_ONLY, default, 'with source = "builtin" or "file"')
            return
        _only(self, SYNTHETIC_ONLY[1:], default, 'with source = "synthetic"')
        if self.source == "builtin":
            check("name", self.name, OneOf(BUILTINS, "builtin series"))
            _only(self, FILE_ONLY, default, 'with source = "file" (a builtin names its own file)')
        else:
            if self.name != default["name"]:
                raise ConfigError("name", f'not used with source = "file" (the path and column name the series), '
                                          f"got {self.name!r}")  # fmt: skip
            for key in ("path", "column"):
                if not getattr(self, key):
                    raise ConfigError(key, 'missing; source = "file" needs path and column')
        loaded = real_series(self)
        prepared = sources.prepare(loaded, self.transform, TRAIN_FRAC)
        if self.length not in (default["length"], len(prepared.model)):
            raise ConfigError("length", f"set by the data for a real series ({len(prepared.model)} values), "
                                        f"got {self.length}; leave it out")  # fmt: skip
        longest = Integer(0, max(1, prepared.train_end // 2))  # seasonal naive needs two seasons of training values
        if self.season:
            season = check("season", self.season, longest)
        else:  # the time column's season, or none where the training part is too short for it
            season = loaded.season if longest.accepts(loaded.season) else 1
        object.__setattr__(self, "length", len(prepared.model))  # frozen: the data's facts, filled in once
        object.__setattr__(self, "season", season)
        object.__setattr__(self, "horizon", self.horizon or loaded.horizon)
        object.__setattr__(self, "sha256", loaded.sha256)

    @property
    def real(self) -> bool:
        return is_real(self.source)

    @property
    def label(self) -> str:
        """How tables and findings name the series."""
        return f"{Path(self.path).name}:{self.column}" if self.source == "file" else self.name

    @property
    def period(self) -> float:
        """Samples per cycle (a real series: its season, 1 without one)."""
        return float(self.season) if self.real else 2 * math.pi / SIGNALS[self.name]


def is_real(source: str) -> bool:
    """Whether a signal of this `source` is a real series (read from data), not a synthetic one."""
    return source != "synthetic"


def _only(config: SignalConfig, keys: tuple[str, ...], default: dict[str, Any], where: str) -> None:
    for key in keys:
        if getattr(config, key) != default[key]:
            raise ConfigError(key, f"only used {where}, got {getattr(config, key)!r}")


def real_series(config: SignalConfig) -> sources.Loaded:
    """A builtin or file series as loaded (cached while its file is unchanged), refused where
    its values are no longer those `config` recorded: every trial reads it through here, so a
    file edited mid-search stops the search instead of training on other data under the old hash."""
    if config.source == "builtin":
        b = BUILTINS[config.name]
        loaded = sources.load(str(sources.builtin_path(config.name)), b.column, b.time_column, config.missing,
                              label=f"builtin series {config.name!r}")  # fmt: skip
    else:
        loaded = sources.load(config.path, config.column, config.time_column, config.missing)
    if config.sha256 and config.sha256 != loaded.sha256:
        raise ConfigError("sha256", f"{loaded.where} changed since it was recorded: recorded sha256 "
                                    f"{config.sha256}, now {loaded.sha256}; restore it or start anew")  # fmt: skip
    return loaded


def prepared(config: SignalConfig, train_frac: float = TRAIN_FRAC) -> sources.Prepared:
    """A real series transformed and standardised with its training part's scaler."""
    return sources.prepare(real_series(config), config.transform, train_frac)


def identity(config: SignalConfig, train_frac: float = TRAIN_FRAC) -> dict[str, Any]:
    """What each trial records about its series: source, name or path, length, SHA-256 of the
    values (a sine's as generated), and for a real series the scaler fitted on its training part."""
    if not config.real:
        y = make_signal(config)
        return {"source": "synthetic", "name": config.name, "length": len(y), "sha256": sources.values_hash(y)}
    p = prepared(config, train_frac)
    where = {"name": config.name} if config.source == "builtin" else {"path": config.path, "column": config.column}
    return {"source": config.source, **where, "length": len(p.values), "sha256": config.sha256,
            "season": config.season, "transform": config.transform,
            "scaler": {"mean": p.mean, "std": p.std, "fitted_on_first": p.train_end}}  # fmt: skip


def make_signal(
    config: SignalConfig, rng: np.random.Generator | None = None, train_frac: float = TRAIN_FRAC
) -> np.ndarray:
    """Return y[0..length) as float64: the series the model sees.

    Noise is drawn from `rng` when given, else from a generator seeded with
    `config.noise_seed`, so a config alone reproduces the series. A real series comes back
    transformed and standardised with the scaler of its first `train_frac` (`prepared`).
    """
    if config.real:
        return prepared(config, train_frac).model.copy()
    t = np.arange(config.length)
    y = config.amplitude * np.sin(SIGNALS[config.name] * t + config.phase)
    if config.noise_std > 0:
        rng = rng if rng is not None else np.random.default_rng(config.noise_seed)
        y = y + rng.normal(0.0, config.noise_std, size=config.length)
    return np.asarray(y, dtype=np.float64)
