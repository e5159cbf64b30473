"""The competitions' series as the competitions cut them, and every selection mistake refused."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.series.collections import (
    COLLECTIONS,
    CollectionConfig,
    CompetitionSeries,
    identity,
    load,
    validation_split,
)

# The competitions' own counts, horizons and seasons (M3: Makridakis & Hibon 2000; Tourism:
# Athanasopoulos et al. 2011; M1: Makridakis et al. 1982), written out here rather than read
# from COLLECTIONS, so a wrong table there fails too.
PUBLISHED = {
    ("m3", "yearly"): (645, 6, 1), ("m3", "quarterly"): (756, 8, 4),
    ("m3", "monthly"): (1428, 18, 12), ("m3", "other"): (174, 8, 1),
    ("tourism", "yearly"): (518, 4, 1), ("tourism", "quarterly"): (427, 8, 4), ("tourism", "monthly"): (366, 24, 12),
    ("m1", "yearly"): (181, 6, 1), ("m1", "quarterly"): (203, 8, 4), ("m1", "monthly"): (617, 18, 12),
}  # fmt: skip


@pytest.mark.parametrize(("collection", "category"), list(PUBLISHED))
def test_each_category_is_the_competitions(collection: str, category: str) -> None:
    count, horizon, period = PUBLISHED[(collection, category)]
    series = load(CollectionConfig(collection, category))
    assert len(series) == count
    assert len({s.id for s in series}) == count
    for s in series:
        assert (s.collection, s.category, s.h, s.period) == (collection, category, horizon, period)
        assert len(s.xx) == horizon and len(s.x) > horizon
        assert s.x.dtype == np.float64 and np.isfinite(s.x).all() and np.isfinite(s.xx).all()


def test_totals() -> None:
    assert sum(len(load(CollectionConfig("m3", c))) for c in COLLECTIONS["m3"].categories) == 3003
    assert sum(len(load(CollectionConfig("tourism", c))) for c in COLLECTIONS["tourism"].categories) == 1311


def test_first_series_values() -> None:
    """N0001, M3's first yearly series, as the competition's file has it (first training
    values and first test value from the M3 data)."""
    first = load(CollectionConfig("m3", "yearly", ids=("N0001",)))[0]
    assert first.x[:3].tolist() == [940.66, 1084.86, 1244.98]
    assert first.xx[0] == 5379.75 and len(first.x) == 14


def test_arrays_are_read_only() -> None:
    s = load(CollectionConfig("m3", "other", ids=("N2830",)))[0]
    with pytest.raises(ValueError):
        s.x[0] = 0.0


def test_validation_is_the_last_h_training_values() -> None:
    for s in load(CollectionConfig("tourism", "quarterly", sample=5)):
        fit, val = validation_split(s)
        assert len(val) == s.h == 8
        assert np.array_equal(np.concatenate([fit, val]), s.x)
        assert s.validation_split()[1].tolist() == val.tolist()


def test_ids_pick_those_series_in_the_categorys_order() -> None:
    picked = load(CollectionConfig("m3", "yearly", ids=["N0003", "N0001"]))  # a TOML list works too
    assert [s.id for s in picked] == ["N0001", "N0003"]


def test_a_sample_is_seeded_and_inside_the_category() -> None:
    every = {s.id for s in load(CollectionConfig("tourism", "monthly"))}
    a = [s.id for s in load(CollectionConfig("tourism", "monthly", sample=20, sample_seed=3))]
    b = [s.id for s in load(CollectionConfig("tourism", "monthly", sample=20, sample_seed=3))]
    c = [s.id for s in load(CollectionConfig("tourism", "monthly", sample=20, sample_seed=4))]
    assert a == b != c
    assert len(set(a)) == 20 and set(a) <= every
    order = [s.id for s in load(CollectionConfig("tourism", "monthly"))]
    assert a == sorted(a, key=order.index)  # the competition's order, not the draw's


def test_identity_follows_ids_and_values() -> None:
    base = load(CollectionConfig("m3", "other", sample=5))
    assert identity(base) == identity(load(CollectionConfig("m3", "other", sample=5)))
    assert identity(base) != identity(base[:4])
    assert identity(base) != identity(load(CollectionConfig("m3", "other", sample=5, sample_seed=1)))
    s = base[0]
    changed = CompetitionSeries(s.id, s.collection, s.category, s.x + np.r_[np.zeros(len(s.x) - 1), 1e-9], s.xx,
                                s.h, s.period)  # fmt: skip
    assert identity([changed, *base[1:]]) != identity(base)
    renamed = CompetitionSeries("N9999", s.collection, s.category, s.x, s.xx, s.h, s.period)
    assert identity([renamed, *base[1:]]) != identity(base)
    assert len(identity(base)) == 64


@pytest.mark.parametrize(
    ("kwargs", "key", "says"),
    [
        ({"collection": "m5"}, "collection", "allowed: m3, tourism, m1"),
        ({"collection": "tourism", "category": "other"}, "category", "allowed: yearly, quarterly, monthly"),
        ({"category": "weekly"}, "category", "allowed: yearly, quarterly, monthly, other"),
        ({"category": "yearly", "ids": ("N0646",)}, "ids", "'N0646' is not a series of m3 yearly"),
        ({"category": "yearly", "ids": ("N0001", "N0001")}, "ids", "once"),
        ({"category": "yearly", "ids": "N0001"}, "ids", "must be a list of series ids"),
        ({"category": "other", "sample": 175}, "sample", "at most 174"),
        ({"category": "other", "sample": -1}, "sample", "an integer >= 0"),
        ({"category": "other", "ids": ("N2830",), "sample": 1}, "sample", "not used with ids"),
        ({"sample_seed": -2}, "sample_seed", "an integer >= 0"),
    ],
)
def test_bad_selections_name_the_key_and_what_is_allowed(kwargs: dict, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CollectionConfig(**kwargs)
    assert caught.value.key == key
    assert says in caught.value.message
    assert "\n" not in str(caught.value)  # the CLI prints it as one line


def test_an_unknown_id_error_shows_the_range() -> None:
    with pytest.raises(ConfigError, match=r"its 645 ids, N0001 \.\. N0645"):
        CollectionConfig("m3", "yearly", ids=("Y1",))
