"""Real series: builtins, a user's CSV, identity, transforms, the train-only scaler, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.series.signals import SignalConfig, identity, make_signal, prepared
from harness.series.sources import prepare, values_hash


def monthly_csv(path: Path, n: int = 60, values: np.ndarray | None = None) -> Path:
    t = np.arange(n)
    y = values if values is not None else 100 + t + 10 * np.sin(2 * np.pi * t / 12)
    pd.DataFrame({"month": pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
                  "sales": y}).to_csv(path, index=False)  # fmt: skip
    return path


@pytest.mark.parametrize(("name", "length", "season", "horizon"),
                         [("sunspots", 309, 1, 6), ("nile", 100, 1, 6), ("co2", 2284, 52, 13)])  # fmt: skip
def test_builtins_load_offline_with_their_frequency(name: str, length: int, season: int, horizon: int) -> None:
    c = SignalConfig(name=name, source="builtin", missing="interpolate" if name == "co2" else "error")
    assert (c.length, c.season, c.horizon) == (length, season, horizon)
    assert c.sha256 == values_hash(prepared(c).values) and len(c.sha256) == 64
    ident = identity(c)
    assert ident["source"] == "builtin" and ident["name"] == name and ident["length"] == length


def test_co2_gaps_need_a_policy() -> None:
    with pytest.raises(ConfigError, match='missing: .*co2.* 59 missing values.*"interpolate" or "drop"'):
        SignalConfig(name="co2", source="builtin")
    assert SignalConfig(name="co2", source="builtin", missing="drop").length == 2284 - 59


def test_a_users_csv_with_a_date_column(tmp_path: Path) -> None:
    path = monthly_csv(tmp_path / "sales.csv")
    c = SignalConfig(source="file", path=str(path), column="sales", time_column="month")
    assert (c.length, c.season, c.horizon, c.label) == (60, 12, 18, "sales.csv:sales")
    assert SignalConfig(source="file", path=str(path), column="sales").season == 1  # no time column: no season
    assert SignalConfig(source="file", path=str(path), column="sales", season=4).season == 4
    # the stored config (with its filled-in facts) rebuilds to the same config
    from dataclasses import asdict

    assert SignalConfig(**asdict(c)) == c


@pytest.mark.parametrize("transform", ["none", "log", "diff", "log-diff"])
def test_transforms_map_back_to_original_units(tmp_path: Path, transform: str) -> None:
    c = SignalConfig(source="file", path=str(monthly_csv(tmp_path / "s.csv")), column="sales", transform=transform)
    p = prepared(c)
    assert c.length == len(p.model) == 60 - p.lag
    times = np.arange(len(p.model))
    np.testing.assert_allclose(p.to_original(p.model, times), p.values[p.lag :], rtol=1e-12)
    np.testing.assert_array_equal(p.targets(times), p.values[p.lag :])
    assert np.array_equal(make_signal(c), p.model)


def test_scaler_sees_the_training_part_only(tmp_path: Path) -> None:
    y = 100 + np.arange(60.0) + np.sin(np.arange(60.0))
    p = prepared(SignalConfig(source="file", path=str(monthly_csv(tmp_path / "a.csv", values=y)), column="sales"))
    leaked = y.copy()
    leaked[p.train_end :] *= 1000.0  # validation and test values wildly different
    q = prepared(SignalConfig(source="file", path=str(monthly_csv(tmp_path / "b.csv", values=leaked)), column="sales"))
    assert (q.mean, q.std) == (p.mean, p.std)
    assert p.mean == pytest.approx(y[: p.train_end].mean()) and p.std == pytest.approx(y[: p.train_end].std())
    np.testing.assert_array_equal(q.model[: p.train_end], p.model[: p.train_end])


def test_a_changed_file_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    path = monthly_csv(tmp_path / "s.csv")
    recorded = SignalConfig(source="file", path=str(path), column="sales")
    frame = pd.read_csv(path)
    frame.loc[5, "sales"] += 1
    frame.to_csv(path, index=False)
    now = SignalConfig(source="file", path=str(path), column="sales").sha256
    with pytest.raises(ConfigError, match=f"sha256: .*changed.*recorded sha256 {recorded.sha256}, now {now}"):
        SignalConfig(source="file", path=str(path), column="sales", sha256=recorded.sha256)


def test_synthetic_is_unchanged_and_takes_no_real_keys() -> None:
    assert np.array_equal(make_signal(SignalConfig()), np.sin(np.pi * 0.125 * np.arange(1000)))
    with pytest.raises(ConfigError, match='transform: only used with source = "builtin" or "file"'):
        SignalConfig(transform="log")
    with pytest.raises(ConfigError, match="name: must be a known signal for source = synthetic"):
        SignalConfig(name="nile")


def _bad(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / f"bad{len(list(tmp_path.glob('bad*.csv')))}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_bad_inputs_name_the_key_file_and_what_is_allowed(tmp_path: Path) -> None:
    good = str(monthly_csv(tmp_path / "good.csv"))
    cases: list[tuple[dict[str, object], str]] = [
        ({"path": str(tmp_path / "nope.csv"), "column": "y"}, "path: no such file .*nope.csv"),
        ({"path": good, "column": "y"}, "column: no column 'y' in .*good.csv; allowed: month, sales"),
        ({"path": good, "column": "sales", "time_column": "when"}, "time_column: no column 'when'"),
        ({"path": _bad(tmp_path, pd.DataFrame({"y": ["1", "x"] * 20})), "column": "y"}, "column: .*not numeric"),
        ({"path": _bad(tmp_path, pd.DataFrame({"y": [3.0] * 40})), "column": "y"}, "column: .*constant"),
        ({"path": _bad(tmp_path, pd.DataFrame({"y": np.arange(10.0)})), "column": "y"}, "path: .*at least 30"),
        ({"path": _bad(tmp_path, pd.DataFrame({"y": np.arange(-5.0, 35)})), "column": "y", "transform": "log"},
         "transform: 'log' needs positive values.*allowed here: none, diff"),
    ]  # fmt: skip
    for fields, message in cases:
        with pytest.raises(ConfigError, match=message):
            SignalConfig(source="file", **fields)  # type: ignore[arg-type]
    gappy = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0] * 10})
    with pytest.raises(ConfigError, match='missing: .*bad.*csv.* 10 missing values.*got "error"'):
        SignalConfig(source="file", path=_bad(tmp_path, gappy), column="y")
    with pytest.raises(ConfigError, match="name: must be a known builtin series.*sunspots, co2, nile"):
        SignalConfig(source="builtin", name="short-period")
    with pytest.raises(ConfigError, match="column: missing"):
        SignalConfig(source="file", path=good)


def test_interpolate_and_drop(tmp_path: Path) -> None:
    gappy = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0] * 10})
    path = _bad(tmp_path, gappy)
    filled = prepared(SignalConfig(source="file", path=path, column="y", missing="interpolate")).values
    assert len(filled) == 40 and filled[2] == 3.0
    assert SignalConfig(source="file", path=path, column="y", missing="drop").length == 30


def test_prepare_needs_enough_values() -> None:
    from harness.series.sources import Loaded

    with pytest.raises(ConfigError, match="at least 30"):
        prepare(Loaded(np.arange(30.0), "x", "", ""), "diff", 0.7)


def test_a_season_needs_two_seasons_of_training_values(tmp_path: Path) -> None:
    path = str(monthly_csv(tmp_path / "short.csv", n=30))  # 21 training values: a season of at most 10
    assert SignalConfig(source="file", path=path, column="sales", time_column="month").season == 1
    with pytest.raises(ConfigError, match=r"season: must be an integer \(allowed: 0..10\), got 12"):
        SignalConfig(source="file", path=path, column="sales", season=12)


def test_each_value_keeps_its_date_through_the_missing_policy(tmp_path: Path) -> None:
    """A figure draws a real series against its dates: each value's own, after gaps are dropped
    or (at the ends) left out, and none without a time column."""
    from harness.series.signals import real_series

    months = pd.date_range("2000-01-01", periods=40, freq="MS")
    y = np.where(np.arange(40) % 10 == 3, np.nan, np.arange(40.0) + 1)
    y[0] = np.nan  # an end: interpolation leaves it out
    path = _bad(tmp_path, pd.DataFrame({"month": months.strftime("%Y-%m-%d"), "y": y}))
    for missing in ("drop", "interpolate"):
        loaded = real_series(SignalConfig(source="file", path=path, column="y", time_column="month", missing=missing))
        kept = ~np.isnan(y) if missing == "drop" else np.arange(40) > 0
        assert loaded.times is not None and len(loaded.times) == len(loaded.values)
        assert (loaded.times == months.to_numpy()[kept]).all(), missing
    assert real_series(SignalConfig(source="file", path=path, column="y", missing="drop")).times is None
    nile = real_series(SignalConfig(source="builtin", name="nile"))
    assert nile.times is not None and pd.Timestamp(nile.times[0]).year == 1871
    assert pd.Timestamp(nile.times[-1]).year == 1970
