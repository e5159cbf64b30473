"""`harness race`: the repeats it runs and resumes, and the race tables computed exactly from a
storage built with known trial values and times."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial
from scipy import stats

from harness.cli import main
from harness.race import race, read
from harness.race.race import startup_warnings
from harness.report import tables
from harness.search.spec import load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study
from harness.stats import race_stats

from conftest import assert_figures_shown

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
T0 = datetime(2026, 1, 1, 12, 0, 0)


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    ("methods", "needle"),
    [
        ("tpe+bogus", "unknown pruner 'bogus'"),
        ("annealing+none", "unknown sampler 'annealing'"),
        ("tpe", "'tpe' is not a method"),
        ("tpe+median+fuse8", "is not a method"),  # cross-trial fusion is no longer a method
        ("tpe+median+fused", "is not a method"),
        ("grid+none", "grid sampler needs a list"),  # a valid name the spec's ranges cannot take
    ],
)
def test_a_bad_method_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], methods: str, needle: str
) -> None:
    before = _listing(tmp_path)
    argv = ["race", str(SMOKE), "--methods", methods, "--storage", f"sqlite:///{tmp_path / 'r.db'}", "--no-progress"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in captured.err, err
    assert err[0].startswith("harness race: --methods: ") and needle in err[0], err
    if "unknown" in needle:  # names the allowed values
        assert "allowed: " in err[0] and ("tpe, random" in err[0] or "median, hyperband" in err[0])
    assert _listing(tmp_path) == before


def test_trials_and_seconds_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["race", str(SMOKE), "--trials", "2", "--seconds", "5", "--storage", f"sqlite:///{tmp_path / 'r.db'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seconds" in err[0] and "not allowed with" in err[0]
    assert not list(tmp_path.iterdir())


def test_parse_methods_keeps_order_and_drops_duplicates() -> None:
    names = [m.name for m in race.parse_methods("tpe+median, random+none,tpe+median,gp+successive-halving")]
    assert names == ["tpe+median", "random+none", "gp+successive-halving"]


# ---------------------------------------------------------------- a real race on a tiny spec
@pytest.mark.slow
def test_race_runs_every_repeat_and_resumes_without_rerunning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    common = ["--storage", url, "--no-progress", "--set", "training.epochs=1", "--methods", "random+none,tpe+median"]
    assert main(["race", str(SMOKE), "--repeats", "3", "--trials", "2", *common]) == 0
    storage = open_storage(url)
    names = read.race_study_names(storage)
    expected = [f"smoke/race/{m}/{r}" for r in range(3) for m in ("random+none", "tpe+median")]
    assert sorted(names) == sorted(expected)
    studies = {n: optuna.load_study(study_name=n, storage=storage) for n in names}
    seeds = {}
    for name, study in studies.items():
        info = study.user_attrs[read.RACE_ATTR]
        assert info["name"] == "smoke" and f"/{info['method']}/{info['repeat']}" in name
        assert info["budget"] == {"trials": 2}
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
        spec = study.user_attrs["spec"]["study"]
        assert (spec["sampler"], spec["pruner"]) == (info["sampler"], info["pruner"]) and not spec["equal_cells"]
        assert spec["sampler_seed"] == info["seed"]
        seeds.setdefault(info["repeat"], set()).add(info["seed"])
        (segment,) = study.user_attrs[read.SEGMENTS_ATTR]
        assert segment[1] is not None and all(
            datetime.fromisoformat(segment[0]) <= t.datetime_complete <= datetime.fromisoformat(segment[1])
            for t in study.trials
        )
    # the same seed for every method of a repeat, a different one per repeat
    assert all(len(s) == 1 for s in seeds.values()) and len(set.union(*seeds.values())) == 3
    out = capsys.readouterr()
    assert out.err.count(": ran;") == 6
    assert "time_to_target" in out.out and "smoke (3 repeats per method; target " in out.out  # the table, the verdict

    before = {n: [(t.number, t.datetime_complete) for t in s.trials] for n, s in studies.items()}
    assert main(["race", str(SMOKE), "--repeats", "3", "--trials", "2", *common]) == 0
    assert capsys.readouterr().err.count(": done already;") == 6
    for name in names:
        again = optuna.load_study(study_name=name, storage=storage)
        assert [(t.number, t.datetime_complete) for t in again.trials] == before[name]
        assert len(again.user_attrs[read.SEGMENTS_ATTR]) == 1  # nothing ran, no time added

    # A bigger budget runs only the remainder, in a second segment; elapsed counts time on the repeat only.
    assert main(["race", str(SMOKE), "--repeats", "1", "--trials", "3", *common]) == 0
    first = optuna.load_study(study_name="smoke/race/tpe+median/0", storage=storage)
    assert (
        len(first.trials) == 3
        and [(t.number, t.datetime_complete) for t in first.trials[:2]] == before[first.study_name]
    )
    segs = first.user_attrs[read.SEGMENTS_ATTR]
    assert len(segs) == 2
    h = read.history(first)
    one = (datetime.fromisoformat(segs[0][1]) - datetime.fromisoformat(segs[0][0])).total_seconds()
    last = (first.trials[2].datetime_complete - datetime.fromisoformat(segs[1][0])).total_seconds()
    assert h.elapsed[2] == pytest.approx(one + last, abs=1e-6)
    assert optuna.load_study(study_name="smoke/race/tpe+median/1", storage=storage).trials[-1].number == 1
    # Asked again for 2 trials: nothing runs, and the report reads the 2-trial race.
    assert main(["race", str(SMOKE), "--repeats", "1", "--trials", "2", *common]) == 0
    assert len(first.trials) == 3 and len(read.history(first).values) == 2
    assert read.history(first).seconds == h.elapsed[1]

    assert main(["studies", "--storage", url]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "smoke/race/random+none: 3 repeats, 7 finished trials" in "\n".join(listed)
    assert "smoke/race/tpe+median: 3 repeats, 7 finished trials" in "\n".join(listed)
    assert not any(line.startswith("smoke/race/tpe+median/0") for line in listed)


@pytest.mark.slow
def test_a_seconds_budget_stops_the_trial_running_at_its_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Order and outcome, not seconds: each repeat's one trial (it cannot finish its epochs)
    is stopped once the deadline has passed and not before, nothing starts after it, and the
    race goes on to the next method, whose time begins after the first one's ended."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    argv = ["race", str(SMOKE), "--storage", url, "--no-progress", "--methods", "tpe+none,random+none",
            "--repeats", "1", "--seconds", "2", "--set", "training.epochs=100000"]  # fmt: skip
    assert main(argv) == 0  # the deadline is not a Ctrl-C
    assert capsys.readouterr().err.count(": ran; 0 finished trials in ") == 2
    spans = []
    for method in ("tpe+none", "random+none"):
        study = optuna.load_study(study_name=f"smoke/race/{method}/0", storage=open_storage(url))
        (trial,) = study.trials  # the one running at the deadline; none started after it
        assert trial.state == TrialState.FAIL and "interrupted" in trial.user_attrs["fail_reason"]
        assert len(trial.intermediate_values) < 100000  # stopped mid-training
        ((start, end),) = [(datetime.fromisoformat(a), datetime.fromisoformat(b))
                           for a, b in study.user_attrs[read.SEGMENTS_ATTR]]  # fmt: skip
        assert trial.datetime_start is not None and trial.datetime_complete is not None
        assert start <= trial.datetime_start <= trial.datetime_complete <= end
        assert trial.datetime_complete >= start + timedelta(seconds=2)  # stopped at the deadline, not before
        assert race_stats.spent_seconds(study.user_attrs[read.SEGMENTS_ATTR]) >= 2.0
        assert study.user_attrs[read.RACE_ATTR]["budget"] == {"seconds": 2.0}
        spans.append((start, end))
    assert spans[0][1] <= spans[1][0]  # one repeat after the other
    assert main(argv) == 0  # its budget is spent: nothing runs again
    assert capsys.readouterr().err.count(": done already; 0 finished trials") == 2
    assert all(len(optuna.load_study(study_name=f"smoke/race/{m}/0", storage=url).trials) == 1
               for m in ("tpe+none", "random+none"))  # fmt: skip


# ---------------------------------------------------------------- known values and times
PRUNED = None
# method -> repeats; each repeat: its segments (seconds from T0) and trials (seconds from T0, value or PRUNED)
KNOWN: dict[str, list[tuple[list[tuple[float, float]], list[tuple[float, float | None]]]]] = {
    "random+none": [
        ([(0, 100)], [(10, 0.5), (20, 0.2), (40, 0.1)]),
        ([(0, 100)], [(5, 0.8), (30, 0.3), (60, PRUNED)]),
        ([(0, 100)], [(15, 0.4), (50, 0.05)]),
        ([(0, 100)], [(25, 0.6), (35, 0.25)]),
    ],
    "tpe+median": [
        ([(0, 100)], [(8, 0.3), (12, PRUNED), (18, 0.15)]),
        ([(0, 20), (1000, 1050)], [(10, 0.4), (1010, 0.12)]),  # resumed: 20 s, then 10 s into the second session
        ([(0, 100)], [(6, 0.9), (9, 0.5)]),
        ([(0, 100)], [(4, 0.17), (7, 0.02)]),
    ],
}
# The same, as each trial's elapsed seconds (segment offsets applied by hand).
ELAPSED = {("tpe+median", 1): [10.0, 30.0]}


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def build_race(url: str) -> None:
    storage = open_storage(url)
    spec = load_spec(SMOKE)
    for method, repeats in KNOWN.items():
        for r, (segments, trials) in enumerate(repeats):
            study = optuna.create_study(study_name=f"smoke/race/{method}/{r}", storage=storage)
            study.set_user_attr("spec", spec.to_dict())  # like a launched study: only the race attr sets it apart
            study.set_user_attr(read.RACE_ATTR, {"name": "smoke", "method": method, "repeat": r})
            study.set_user_attr(read.SEGMENTS_ATTR, [[_at(a).isoformat(), _at(b).isoformat()] for a, b in segments])
            for i, (t, value) in enumerate(trials):
                state = TrialState.PRUNED if value is None else TrialState.COMPLETE
                study.add_trial(FrozenTrial(
                    number=i, state=state, value=value, datetime_start=_at(t - 1), datetime_complete=_at(t),
                    params={}, distributions={}, user_attrs={}, system_attrs={},
                    intermediate_values={0: 1.0} if value is None else {}, trial_id=0,
                ))  # fmt: skip
            study.add_trial(FrozenTrial(number=len(trials), state=TrialState.FAIL, value=None, datetime_start=_at(1),
                                        datetime_complete=_at(2), params={}, distributions={}, user_attrs={},
                                        system_attrs={}, intermediate_values={}, trial_id=0))  # fmt: skip


def _elapsed(method: str, r: int) -> list[float]:
    return ELAPSED.get((method, r), [t for t, _ in KNOWN[method][r][1]])


def _best_so_far(method: str, r: int) -> list[float]:
    values = [math.inf if v is None else v for _, v in KNOWN[method][r][1]]
    return list(np.minimum.accumulate(values))


def _iqm_by_hand(values: list[float]) -> float:
    """Mean of the middle half: cut int(n / 4) values from each end of the sorted values."""
    cut = len(values) // 4
    return float(np.mean(sorted(values)[cut : len(values) - cut]))


def _band_by_hand(values: list[float], seed: int = 0, n_boot: int = 1000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_boot, len(values)))
    iqms = [_iqm_by_hand([values[i] for i in row]) for row in draws]
    return float(np.percentile(iqms, 2.5)), float(np.percentile(iqms, 97.5))


@pytest.fixture
def known(tmp_path: Path) -> tuple[str, dict[str, list[race_stats.RepeatHistory]]]:
    url = f"sqlite:///{tmp_path / 'known.db'}"
    build_race(url)
    return url, read.load_histories(open_storage(url))


def test_histories_put_each_trial_on_the_repeats_own_clock(known: tuple[str, dict]) -> None:
    _, histories = known
    (hs,) = histories.values()
    for h in hs:
        assert list(h.elapsed) == _elapsed(h.method, h.repeat)  # failed trials are not in the history
        assert list(np.nan_to_num(h.best_so_far, nan=math.inf)) == _best_so_far(h.method, h.repeat)
    resumed = next(h for h in hs if (h.method, h.repeat) == ("tpe+median", 1))
    assert resumed.seconds == 70.0  # 20 s + 50 s; the 980 s between the sessions do not count


def test_race_table_is_exact(known: tuple[str, dict]) -> None:
    _, histories = known
    rows = {i.method: i for i in race_stats.table(histories["smoke"])}
    finals = {m: [_best_so_far(m, r)[-1] for r in range(4)] for m in KNOWN}
    target = float(np.median(finals["random+none"]))
    assert target == pytest.approx(0.175)
    expected_seconds = {"random+none": [40.0, math.inf, 50.0, math.inf], "tpe+median": [18.0, 30.0, math.inf, 4.0]}
    expected_trials = {"random+none": [3.0, math.inf, 2.0, math.inf], "tpe+median": [3.0, 2.0, math.inf, 1.0]}
    for m in KNOWN:
        row = rows[m]
        assert row.target == target and row.repeats == 4
        assert list(row.seconds_to_target) == expected_seconds[m]
        assert row.final_best_median == pytest.approx(float(np.median(finals[m])))
        assert row.final_best_iqm == pytest.approx(10 ** _iqm_by_hand(list(np.log10(finals[m]))))
        # half of 4 repeats = the 2nd smallest time; a repeat that never reached it counts as slowest
        assert row.time_to_target == sorted(expected_seconds[m])[1]
        assert row.trials_to_target == sorted(expected_trials[m])[1]
        assert row.reached == np.mean(np.isfinite(expected_seconds[m]))
    assert rows["random+none"].time_to_target == 50.0 and rows["tpe+median"].time_to_target == 18.0
    assert rows["tpe+median"].reached == 0.75 and rows["random+none"].reached == 0.5
    assert rows["tpe+median"].speedup == pytest.approx(50 / 18) and rows["random+none"].speedup == 1.0
    assert (rows["tpe+median"].rank, rows["random+none"].rank) == (1, 2)
    assert rows["tpe+median"].final_best_iqm == pytest.approx(math.sqrt(0.12 * 0.15))
    assert rows["tpe+median"].median_seconds == 100.0 and rows["tpe+median"].median_trials == 2.0

    text = race_stats.verdict(list(rows.values()), "smoke")
    assert "use tpe+median" in text and "18 s" in text and "2.78x faster than random search (50 s)" in text
    assert "cannot be told apart from random search" in text  # 4 repeats: a lead, not a verdict


def test_a_method_that_never_reached_the_target_has_no_speed_up(known: tuple[str, dict]) -> None:
    _, histories = known
    slow = [h for h in histories["smoke"] if h.method == "random+none" or h.repeat == 2]  # tpe: never reached
    rows = {i.method: i for i in race_stats.table(slow)}
    assert rows["tpe+median"].time_to_target == math.inf and math.isnan(rows["tpe+median"].speedup)
    frame = race_stats.table_frame(list(rows.values())).set_index("method")
    assert frame["speedup"].isna()["tpe+median"] and frame["time_to_target"].isna()["tpe+median"]


def test_a_repeat_shorter_than_the_samplers_start_up_is_warned_about(known: tuple[str, dict]) -> None:
    _, histories = known
    warnings = startup_warnings(race_stats.table(histories["smoke"]))
    assert warnings == [
        "smoke: tpe+median's median repeat holds 2 trials, fewer than tpe's 10 random start-up trials, so it "
        "searched as random search did; give each repeat a larger budget to compare it"
    ]  # random search has no start-up: no warning


def test_race_curves_are_the_iqm_with_a_bootstrap_band(known: tuple[str, dict]) -> None:
    _, histories = known
    by_trials = {c.method: c for c in race_stats.curves(histories["smoke"], "trials")}
    assert list(by_trials["random+none"].x) == [1.0, 2.0, 3.0]
    assert list(by_trials["tpe+median"].x) == [1.0, 2.0, 3.0]
    for method, curve in by_trials.items():
        for k in (1, 2, 3):
            at = [np.log10(_best_so_far(method, r)[min(k, len(KNOWN[method][r][1])) - 1]) for r in range(4)]
            i = k - 1
            if not np.all(np.isfinite(at)):  # a repeat whose only trials so far were pruned: no value yet
                assert math.isnan(curve.iqm[i])
                continue
            assert curve.iqm[i] == pytest.approx(10 ** _iqm_by_hand(at))
            low, high = _band_by_hand(at)
            assert (curve.low[i], curve.high[i]) == (pytest.approx(10**low), pytest.approx(10**high))
    assert math.isnan(by_trials["tpe+median"].iqm[1]) is False

    by_seconds = {c.method: c for c in race_stats.curves(histories["smoke"], "seconds")}
    grid = np.linspace(0, 100, race_stats.CURVE_POINTS)
    curve = by_seconds["tpe+median"]
    assert np.array_equal(curve.x, grid)
    i = int(np.searchsorted(grid, 25.0))  # between 18 and 30 s
    x = grid[i]
    at = []
    for r in range(4):
        done = [b for e, b in zip(_elapsed("tpe+median", r), _best_so_far("tpe+median", r), strict=True) if e <= x]
        at.append(np.log10(done[-1]))
    assert curve.iqm[i] == pytest.approx(10 ** _iqm_by_hand(at))
    low, high = _band_by_hand(at)
    assert (curve.low[i], curve.high[i]) == (pytest.approx(10**low), pytest.approx(10**high))
    assert math.isnan(curve.iqm[0])  # at 0 s no repeat has a complete trial yet


def _ordinary_search(url: str) -> None:
    """A one-trial search named like the race's spec, as `harness launch` would record it."""
    spec = load_spec(SMOKE)
    study = create_study(spec, open_storage(url))
    params = {"cell": "gru", "hidden_size": 8, "window": 4, "lr": 0.01}
    dists = {"cell": CategoricalDistribution(["rnn", "lstm", "gru"]), "hidden_size": IntDistribution(4, 16, log=True),
             "window": IntDistribution(2, 16), "lr": FloatDistribution(1e-3, 3e-2, log=True)}  # fmt: skip
    attrs = {"config": spec.run_config(params).to_dict(), "test_mse": 0.2, "train_seconds": 1.0}
    study.add_trial(create_trial(params=params, distributions=dists, value=0.1, user_attrs=attrs))


@pytest.mark.slow
def test_report_has_a_race_section(known: tuple[str, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = known
    assert tables.load_studies(open_storage(url)) == []  # race studies are not searches
    only = tmp_path / "only-race"
    assert (
        main(["report", "--storage", url, "--study", "smoke", "--out", str(only), "--artifacts", str(tmp_path / "a")])
        == 0
    )
    text = (only / "report.md").read_text()
    assert (only / "race.csv").exists() and "## Search race" in text
    assert "## Studies" not in text and "(no data)" not in text  # no empty search sections
    assert sorted(f.name for f in only.iterdir() if f.suffix != ".png") == ["race.csv", "report.md"]  # no empty files
    assert all(f.stat().st_size > 0 for f in only.iterdir())
    assert_figures_shown(only)
    capsys.readouterr()
    assert main(["report", "--storage", url, "--study", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["harness report: --study: unknown study 'nope'; allowed: smoke"] and not (tmp_path / "x").exists()
    _ordinary_search(url)
    (d,) = tables.load_studies(open_storage(url))
    assert d.name == "smoke" and [s.study_name for s in d.studies] == ["smoke"] and len(d.trials) == 1
    out = tmp_path / "report"
    assert main(["report", "--storage", url, "--out", str(out), "--artifacts", str(tmp_path / "a")]) == 0
    table = pd.read_csv(out / "race.csv").set_index("method")
    assert table.loc["tpe+median", "time_to_target"] == 18.0 and table.loc["tpe+median", "rank"] == 1
    assert (
        table.loc["random+none", "speedup"] == 1.0 and math.isnan(table.loc["random+none", "final_best_iqm"]) is False
    )
    assert list(pd.read_csv(out / "comparison.csv")["study"].unique()) == ["smoke"]
    text = (out / "report.md").read_text()
    assert "## Search race" in text and "use tpe+median" in text
    assert (
        "_Warning: smoke: tpe\\+median's median repeat holds 2 trials, fewer than tpe's 10" in text
    )  # escaped markdown
    for axis in ("seconds", "trials"):
        assert f"![smoke-race-{axis}](smoke-race-{axis}.png)" in text
        assert (out / f"smoke-race-{axis}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_figures_shown(out)

    capsys.readouterr()
    assert main(["studies", "--storage", url]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].startswith("smoke: 1 finished of 3 (1 complete, 0 pruned), 0 failed; best val_mse 0.1")
    assert listed[2:] == [
        "smoke/race/random+none: 4 repeats, 10 finished trials; best val_mse per repeat 0.05 .. 0.3",
        "smoke/race/tpe+median: 4 repeats, 9 finished trials; best val_mse per repeat 0.02 .. 0.5",
    ]


def test_spent_seconds_counts_overlaps_once_and_closes_killed_sessions() -> None:
    segs = [[_at(0).isoformat(), _at(10).isoformat()], [_at(5).isoformat(), _at(20).isoformat()],
            [_at(30).isoformat(), None]]  # fmt: skip
    assert race_stats.spent_seconds(segs, _at(25)) == 20.0
    assert race_stats.spent_seconds(segs, _at(7)) == 7.0
    closed = race_stats.close_segments(segs, [_at(12), _at(33), _at(34)])
    assert closed[2] == [_at(30).isoformat(), _at(34).isoformat()]
    assert race_stats.spent_seconds(closed) == 24.0
    assert race_stats.close_segments([[_at(30).isoformat(), None]], [_at(12)]) == [[_at(30).isoformat()] * 2]


def test_a_seconds_budget_counts_what_finished_within_it(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="s/race/tpe+none/0", storage=storage)
    info = {"name": "s", "method": "tpe+none", "repeat": 0, "budget": {"seconds": 25.0}}
    study.set_user_attr(read.RACE_ATTR, info)
    study.set_user_attr(read.SEGMENTS_ATTR, [[_at(0).isoformat(), _at(31).isoformat()]])
    for i, (t, value) in enumerate([(10, 0.5), (20, 0.3), (30, 0.1)]):  # the last one ended past the budget
        study.add_trial(FrozenTrial(number=i, state=TrialState.COMPLETE, value=value, datetime_start=_at(t - 1),
                                    datetime_complete=_at(t), params={}, distributions={}, user_attrs={},
                                    system_attrs={}, intermediate_values={}, trial_id=0))  # fmt: skip
    h = read.history(study)
    assert list(h.elapsed) == [10.0, 20.0] and h.final_best == 0.3 and h.seconds == 25.0


def test_race_figure_draws_a_line_and_band_per_method(known: tuple[str, dict]) -> None:
    import matplotlib.pyplot as plt

    from harness.report import race_figure

    _, histories = known
    frame = race_stats.curves_frame(race_stats.curves(histories["smoke"], "trials"))
    fig = race_figure._draw_race(frame, "finished trials", 0.175, "smoke")
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_xlim()[0] == 0
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["random+none: IQM, 95% bootstrap band", "tpe+median: IQM, 95% bootstrap band",
                      "target: random+none's median final best"]  # fmt: skip
    assert len(ax.collections) == 2  # the bands
    # identical curves stay visible: each method its own width, dash pattern and marker
    first, second = ax.get_lines()[:2]  # the two methods' curves, in drawing order
    assert first.get_linewidth() > second.get_linewidth()  # the first drawn is the widest
    assert (first.get_linestyle(), first.get_marker()) != (second.get_linestyle(), second.get_marker())
    plt.close(fig)


def test_a_race_on_a_real_series_labels_its_mse_as_on_the_standardised_series(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from harness.report import race_figure
    from harness.report.figure_data import STANDARDISED

    storage = open_storage(f"sqlite:///{tmp_path / 'races.db'}")
    for name, spec in (("smoke", load_spec(SMOKE)), ("nile", load_spec(SMOKE.with_name("nile.toml")))):
        live = optuna.create_study(study_name=f"{name}/race/random+none/0", storage=storage)
        live.set_user_attr(read.RACE_ATTR, {"name": name, "method": "random+none", "repeat": 0, "spec": spec.to_dict()})
        replayed = optuna.create_study(study_name=name + read.SIMULATED_SUFFIX, storage=storage)
        replayed.set_user_attr(read.SIMULATED_ATTR, {"name": name, "spec": spec.to_dict()})
    assert read.on_real_series(storage) == {"nile", "nile" + read.SIMULATED_MARK}

    frame = pd.DataFrame({"method": ["random+none"] * 2, "x": [1.0, 2.0], "iqm": [0.5, 0.2], "low": [0.4, 0.1],
                          "high": [0.6, 0.3]})  # fmt: skip
    for units in (STANDARDISED, "signal units²"):
        fig = race_figure._draw_race(frame, "finished trials", 0.2, "t", units)
        assert fig.axes[0].get_ylabel() == f"best validation MSE so far ({units}, log scale)"
        plt.close(fig)


def _histories(times: dict[str, list[float]]) -> list[race_stats.RepeatHistory]:
    """Repeats that reach 0.1 at the given seconds (inf: never), after a first trial at 0.5 at 1 s;
    random+none's repeats end at 0.1 (reached) or 0.2, so its median final best is the target."""
    out = []
    for method, ts in times.items():
        for r, t in enumerate(ts):
            end = t if math.isfinite(t) else 100.0
            value = 0.1 if math.isfinite(t) else 0.2
            out.append(race_stats.RepeatHistory("s", method, r, np.array([1.0, end]), np.array([0.5, value]), 100.0))
    return out


@pytest.mark.parametrize(
    ("tpe", "gp", "words"),
    [
        ([1.0 + i for i in range(6)], [20.0 + i for i in range(6)], "a clear choice"),
        ([1.0 + i for i in range(6)], [1.5 + i for i in range(6)], "either will do"),
        ([30.0, 45.0, 65.0, 2.0, math.inf, math.inf], [math.inf] * 6, "a lead, not a verdict"),
    ],
)
def test_the_verdict_says_how_sure_it_is(tpe: list[float], gp: list[float], words: str) -> None:
    random = [40.0, 50.0, 60.0, math.inf, math.inf, math.inf]
    infos = race_stats.table(_histories({"random+none": random, "tpe+median": tpe, "gp+none": gp}))
    assert {i.method: i.rank for i in infos}["tpe+median"] == 1
    text = race_stats.verdict(infos, "s")
    assert text.startswith("**s** (6 repeats per method; target 0.15") and "use tpe+median" in text and words in text
    p = stats.mannwhitneyu(np.where(np.isfinite(tpe), tpe, 101.0), np.where(np.isfinite(random), random, 101.0),
                           alternative="less").pvalue  # fmt: skip
    assert f"p = {p:.2g}" in text
