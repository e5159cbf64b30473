"""Real series: the builtin datasets and a user's CSV column, loaded, checked and identified,
then transformed and standardised for the model.

A real series is loaded once per file state (path, size, modification time) and cached. Every
mistake a user can make with one (a missing file or column, text in a numeric column, gaps
with `missing = "error"`, a constant or too-short series, a log of non-positive values) is a
`ConfigError` whose key is the `[signal]` key to fix and whose message names the file and
column and what is allowed.

What the model sees (`Prepared.model`) is the series after the transform (`log`, `diff`,
`log-diff`), standardised with the mean and standard deviation of its *training part only*
(targets before `train_frac` of it, and every input of those targets): validation and test
values never reach the scaler. `Prepared.to_original` maps one-step-ahead predictions back to
the original units, so every error the report shows is in the units of the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import ConfigError

DATASETS = Path(__file__).parent / "datasets"
MISSING = ("error", "interpolate", "drop")
TRANSFORMS = ("none", "log", "diff", "log-diff")
# The shortest series the splits take: 70/15/15 leaves a few validation and test targets.
MIN_LENGTH = 30
# Season (samples per cycle) and the M4 forecast horizon for each frequency a regular time
# column can have; yearly data has no season.
FREQUENCIES: dict[str, tuple[int, int]] = {
    "hourly": (24, 48),
    "daily": (7, 14),
    "weekly": (52, 13),
    "monthly": (12, 18),
    "quarterly": (4, 8),
    "yearly": (1, 6),
}
# Spacing of each frequency in days, with the tolerance its calendar needs (months vary).
_SPACING = {"hourly": (1 / 24, 0.001), "daily": (1, 0), "weekly": (7, 0), "monthly": (29.5, 1.6),
            "quarterly": (91, 1.1), "yearly": (365.5, 0.6)}  # fmt: skip


@dataclass(frozen=True)
class Builtin:
    file: str
    column: str
    time_column: str
    description: str
    quantity: str  # what the values are, in their units: how a figure labels them


# Shipped in harness/series/datasets (see SOURCES.md there): no download at run time.
BUILTINS: dict[str, Builtin] = {
    "sunspots": Builtin(
        "sunspots.csv", "SUNACTIVITY", "YEAR", "yearly sunspot numbers, 1700-2008", "sunspot number (yearly mean)"
    ),
    "co2": Builtin("co2.csv", "co2", "date", "Mauna Loa weekly CO2 (ppm), 1958-2001, 59 weeks missing", "CO₂ (ppm)"),
    "nile": Builtin(
        "nile.csv", "volume", "year", "yearly Nile flow at Aswan (1e8 m^3), 1871-1970", "flow (10⁸ m³ a year)"
    ),
}


@dataclass(frozen=True)
class Loaded:
    """A real series as loaded: values in the file's units, after the `missing` policy."""

    values: np.ndarray
    where: str  # "<path> column <column>", for messages
    frequency: str  # one of FREQUENCIES, or "" without a regular time column
    sha256: str
    times: np.ndarray | None = None  # each value's date (datetime64), kept beside it; None without a time column

    @property
    def season(self) -> int:
        return FREQUENCIES[self.frequency][0] if self.frequency else 1

    @property
    def horizon(self) -> int:
        return FREQUENCIES[self.frequency][1] if self.frequency else 6


def values_hash(values: np.ndarray) -> str:
    """SHA-256 of the values as little-endian float64: the series' identity."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f8").tobytes()).hexdigest()


def builtin_path(name: str) -> Path:
    return DATASETS / BUILTINS[name].file


def load(path: str, column: str, time_column: str = "", missing: str = "error", label: str = "") -> Loaded:
    """Load a CSV column, checked; cached while the file is unchanged. `label` names the
    series in messages (a builtin's name), else its path and column do."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise ConfigError("path", f"no such file {path!r}; must be a CSV file with a header row") from None
    except OSError as e:
        raise ConfigError("path", f"cannot read {path!r} ({e.strerror})") from None
    return _load(path, column, time_column, missing, label, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _load(path: str, column: str, time_column: str, missing: str, label: str, _size: int, _mtime: int) -> Loaded:
    where = label or f"{path} column {column!r}"
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError("path", f"{path!r} is not a readable CSV file ({first})") from None
    for key, name in (("column", column), ("time_column", time_column)):
        if name and name not in frame.columns:
            raise ConfigError(key, f"no column {name!r} in {path}; allowed: {', '.join(map(str, frame.columns))}")
    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce")
    text = numbers.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if text.any():
        row = int(np.flatnonzero(text.to_numpy())[0])
        raise ConfigError("column", f"{where} is not numeric (row {row + 1}: {raw.iloc[row]!r}); must hold numbers")
    times = _times(frame[time_column], path, time_column) if time_column else None
    frequency = _frequency(times) if times is not None else ""
    gaps = np.flatnonzero(numbers.isna().to_numpy())
    if len(gaps) and missing == "error":
        raise ConfigError("missing", f"{where} has {len(gaps)} missing values (first at row {gaps[0] + 1}); "
                                     'must be "interpolate" or "drop" for this series, got "error"')  # fmt: skip
    if missing == "drop":
        numbers = numbers.dropna()
    elif missing == "interpolate":
        numbers = numbers.interpolate(method="linear", limit_area="inside").dropna()  # ends are dropped
    values = numbers.to_numpy(dtype=np.float64)
    kept = times.loc[numbers.index].to_numpy(dtype="datetime64[ns]") if times is not None else None
    if not np.isfinite(values).all():
        raise ConfigError("column", f"{where} holds infinite values; must hold finite numbers")
    if len(values) and np.ptp(values) == 0:
        raise ConfigError("column", f"{where} is constant ({values[0]:g} throughout); must vary to be forecast")
    return Loaded(values, where, frequency, values_hash(values), kept)


def _times(raw: pd.Series, path: str, name: str) -> pd.Series:
    """A time column as datetimes: years (1700), dates as integers (19580329) or date text."""
    if pd.api.types.is_integer_dtype(raw):
        if raw.between(1, 9999).all():
            return pd.to_datetime(raw.astype(str).str.zfill(4), format="%Y")
        parsed = pd.to_datetime(raw.astype(str), format="%Y%m%d", errors="coerce")
    else:
        parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise ConfigError("time_column", f"{path} column {name!r} row {row + 1} ({raw.iloc[row]!r}) is not a date; "
                                         "must hold dates or years")  # fmt: skip
    if not parsed.is_monotonic_increasing:
        raise ConfigError("time_column", f"{path} column {name!r} is not in increasing order; must be sorted by time")
    return parsed


def _frequency(times: pd.Series) -> str:
    """The frequency of a regular time column, else "" (irregular: no season is inferred)."""
    days = np.diff(times.to_numpy().astype("datetime64[s]").astype(np.int64)) / 86400.0
    if len(days) == 0:
        return ""
    for name, (step, tolerance) in _SPACING.items():
        if np.all(np.abs(days - step) <= tolerance + 1e-9):
            return name
    return ""


@dataclass(frozen=True)
class Prepared:
    """A real series as the model sees it, and the way back to the file's units.

    `model[j]` stands for the original time `j + lag` (`lag` is 1 after a difference)."""

    values: np.ndarray  # original units
    model: np.ndarray  # transformed, then standardised with `mean` and `std`
    transform: str
    lag: int
    mean: float  # the scaler, fitted on the training part of the transformed series only
    std: float
    train_end: int  # first validation target, in model indices

    def targets(self, times: np.ndarray) -> np.ndarray:
        """The original values the model's targets at `times` (model indices) stand for."""
        return self.values[np.asarray(times) + self.lag]

    def to_original(self, pred: np.ndarray, times: np.ndarray) -> np.ndarray:
        """One-step-ahead predictions for model indices `times`, in the original units: each
        difference is added to the true previous value, as a one-step forecast may."""
        x = np.asarray(pred, dtype=np.float64) * self.std + self.mean
        times = np.asarray(times)
        if self.transform in ("diff", "log-diff"):
            previous = self.values[times + self.lag - 1]
            x = x + (np.log(previous) if self.transform == "log-diff" else previous)
        return np.exp(x) if self.transform in ("log", "log-diff") else x

    def paths_to_original(self, pred: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Multi-step forecasts (n, H) from model indices `origins` (the last value each knew),
        in the original units: predicted differences are summed onto the value at the origin."""
        x = np.asarray(pred, dtype=np.float64) * self.std + self.mean
        if self.transform in ("diff", "log-diff"):
            base = self.values[np.asarray(origins) + self.lag]
            x = (np.log(base) if self.transform == "log-diff" else base)[:, None] + np.cumsum(x, axis=1)
        return np.exp(x) if self.transform in ("log", "log-diff") else x

    @property
    def train_values(self) -> np.ndarray:
        """The original values of the training part (every target before validation)."""
        return self.values[: self.train_end + self.lag]


def transformed(values: np.ndarray, transform: str, where: str) -> np.ndarray:
    if transform in ("log", "log-diff"):
        if (values <= 0).any():
            row = int(np.flatnonzero(values <= 0)[0])
            raise ConfigError("transform", f"{transform!r} needs positive values, but {where} has "
                                           f"{values[row]:g} at value {row + 1}; allowed here: none, diff")  # fmt: skip
        values = np.log(values)
    return np.diff(values) if transform in ("diff", "log-diff") else values


def prepare(loaded: Loaded, transform: str, train_frac: float) -> Prepared:
    x = transformed(loaded.values, transform, loaded.where)
    lag = len(loaded.values) - len(x)
    if len(x) < MIN_LENGTH:
        raise ConfigError("path", f"{loaded.where} has {len(x)} values after loading and transform; "
                                  f"must have at least {MIN_LENGTH} for the train/validation/test splits")  # fmt: skip
    train_end = round(train_frac * len(x))
    train = x[:train_end]  # the scaler sees the training part only
    std = float(train.std())
    if std == 0:
        raise ConfigError("column", f"{loaded.where} is constant over its training part; must vary to be forecast")
    mean = float(train.mean())
    return Prepared(loaded.values, (x - mean) / std, transform, lag, mean, std, train_end)
