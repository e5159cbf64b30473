"""Recorded curves and simulated races: a table built from known, hand-made curves in a real
SQLite storage, replayed by Optuna's own samplers and pruners, checked number by number."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from harness.cli import main
from harness.errors import ConfigError
from harness.race import read
from harness.race.curves import CURVES_ATTR, distribution, load_table, read_table
from harness.race.race import Budget, Method
from harness.race.replay import replay_repeat, simulate, store
from harness.search.spec import StudySpec, load_spec
from harness.search.storage import open_storage

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
SPEC_SETS = ["training.epochs=4", 'search.cell=["rnn", "gru"]']
GOOD = {0: [0.5, 0.4, 0.3, 0.2], 1: [0.6, 0.5, 0.35, 0.25]}  # rnn's curves by seed
BAD = [2.0, 2.0, 2.0, 2.0]  # gru's: worse than every rnn value at every epoch
RNN_SECONDS, GRU_SECONDS = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]
RNN_OVERHEAD, GRU_OVERHEAD = 0.5, 0.25


def smoke_spec(*sets: str) -> StudySpec:
    return load_spec(SMOKE, [*SPEC_SETS, *sets])


def add_run(
    study: optuna.Study, spec: StudySpec, params: dict[str, Any], seed: int, curve: list[float],
    seconds: list[float] | None, train: float, overhead: float, state: TrialState = TrialState.COMPLETE,
    cpu: list[float] | None = None,
) -> None:  # fmt: skip
    """One recorded run, with exactly the attrs `harness record` writes that a replay reads."""
    config = spec.run_config(params).to_dict() | {"seed": seed}
    attrs = {"config": config, "seed": seed, "train_seconds": train, "overhead_seconds": overhead}
    if seconds is not None:
        attrs["epoch_seconds"] = seconds
    if cpu is not None:
        attrs["epoch_cpu_seconds"] = cpu
    study.add_trial(create_trial(
        params=params, distributions={k: distribution(p) for k, p in spec.search.items()}, state=state,
        value=min(curve) if state == TrialState.COMPLETE else None,
        intermediate_values=dict(enumerate(curve)), user_attrs=attrs,
    ))  # fmt: skip


def make_table(url: str, spec: StudySpec, extra: list[dict[str, Any]] = ()) -> optuna.Study:  # type: ignore[assignment]
    """One rnn and one gru configuration, two seeds each, plus `extra` rnn configurations."""
    study = optuna.create_study(study_name=f"{spec.study.name}/curves", storage=open_storage(url))
    study.set_user_attr(CURVES_ATTR, {"name": spec.study.name, "spec": spec.to_dict(), "seeds": 2, "configs": 1})
    base = {"hidden_size": 8, "window": 4, "lr": 0.01}
    for seed in (0, 1):
        add_run(study, spec, {"cell": "rnn", **base}, seed, GOOD[seed], RNN_SECONDS, 10.0, RNN_OVERHEAD,
                cpu=[0.5] * 4)  # fmt: skip
        # gru's epoch seconds recorded as equal shares of 1 s each, scaled to its train_seconds
        add_run(study, spec, {"cell": "gru", **base}, seed, BAD, [1.0] * 4, 8.0, GRU_OVERHEAD)
    for params in extra:
        add_run(study, spec, {"cell": "rnn", **params}, 0, [1.0, 0.9, 0.8, 0.7], None, 4.0, 0.0)
    return study


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'curves.db'}"


def test_read_table_scales_epoch_seconds_to_the_training_time(url: str) -> None:
    spec = smoke_spec()
    table = read_table(make_table(url, spec))
    assert len(table.params) == 2 and [len(r) for r in table.runs] == [2, 2] and table.epochs == 4
    rnn, gru = table.runs[0][0], table.runs[1][0]
    assert table.epoch_seconds[rnn].tolist() == RNN_SECONDS and table.epoch_seconds[gru].tolist() == GRU_SECONDS
    assert table.overhead[rnn] == RNN_OVERHEAD and table.final(rnn) == 0.2 and table.complete.all()
    # the CPU clock: rnn's CPU seconds as recorded, gru (none recorded) its wall seconds, every run the median overhead
    cpu = read_table(make_table(url.replace("curves.db", "cpu.db"), spec), clock="cpu")
    assert cpu.epoch_seconds[rnn].tolist() == [0.5] * 4 and cpu.epoch_seconds[gru].tolist() == GRU_SECONDS
    assert cpu.overhead.tolist() == [(RNN_OVERHEAD + GRU_OVERHEAD) / 2] * 4 and cpu.clock == "cpu"


def test_a_replay_of_known_curves_is_computed_exactly(url: str) -> None:
    """random+median on the table: every trial's value, pruning and clock from the curves by hand.
    MedianPruner (5 startup trials, 2 warm-up epochs) prunes a gru trial at epoch 2 exactly when the
    median of the completed trials' epoch-2 values is below its 2.0: when at least as many rnn
    (0.3 or 0.35) as gru (2.0) trials completed before it, and 5 had."""
    spec = smoke_spec()
    table = read_table(make_table(url, spec))
    began = time.perf_counter()
    run = replay_repeat(spec, table, Method("random", "median"), 1, Budget(trials=30))  # a repeat that prunes
    wall = time.perf_counter() - began
    assert len(run.trials) == 30
    assert 0 < sum(t.ask_seconds for t in run.trials) <= wall  # each ask's real seconds, inside the call's
    clock, rnn_done, gru_done = 0.0, 0, 0
    for t in run.trials:
        assert t.config == (0 if t.params["cell"] == "rnn" else 1)  # the one configuration of its cell
        assert t.run in table.runs[t.config].tolist()
        seed = int(table.seeds[t.run])
        if t.params["cell"] == "rnn":
            assert (t.pruned, t.epochs, t.value) == (False, 4, min(GOOD[seed]))
            assert (t.train_seconds, t.overhead) == (sum(RNN_SECONDS), RNN_OVERHEAD)
            rnn_done += 1
        else:
            prune = rnn_done + gru_done >= 5 and rnn_done >= gru_done
            assert (t.pruned, t.epochs) == ((True, 3) if prune else (False, 4))
            assert (math.isnan(t.value) if prune else t.value == 2.0) and t.overhead == GRU_OVERHEAD
            assert t.train_seconds == sum(GRU_SECONDS[: t.epochs])
            gru_done += not prune
        clock = clock + t.ask_seconds + t.train_seconds + t.overhead
        assert t.elapsed == pytest.approx(clock, rel=1e-12, abs=0)
    assert run.seconds == run.trials[-1].elapsed
    assert any(t.pruned for t in run.trials) and len({t.run for t in run.trials}) == 4  # both seeds were drawn
    h = run.history()
    assert np.array_equal(h.elapsed, [t.elapsed for t in run.trials]) and np.isnan(h.values).sum() == sum(
        t.pruned for t in run.trials
    )


def test_a_seconds_budget_keeps_no_trial_ending_past_it(url: str) -> None:
    spec = smoke_spec()
    table = read_table(make_table(url, spec))
    run = replay_repeat(spec, table, Method("random", "none"), 3, Budget(seconds=40.0))
    last = run.trials[-1]
    assert last.elapsed <= 40.0 and run.seconds == 40.0
    assert last.elapsed + min(8.0 + GRU_OVERHEAD, 10.0 + RNN_OVERHEAD) > 40.0  # no trial fitted after it


def test_off_table_configurations_get_their_nearest_neighbour_in_log_space(url: str) -> None:
    spec = smoke_spec()
    extra = [{"hidden_size": 4, "window": 10, "lr": 0.01}, {"hidden_size": 16, "window": 10, "lr": 0.01}]
    table = read_table(make_table(url, spec, extra))
    four, sixteen = (table.params.index({"cell": "rnn", **p}) for p in extra)
    # hidden_size is log-scaled: 11.5 is nearer 16 (ln 16/11.5 = 0.33) than 4 (ln 11.5/4 = 1.06)
    # and even than 8 at window 4 (its window is 6 of 14 away, 0.43 standardised)
    assert table.nearest({"cell": "rnn", "hidden_size": 11.5, "window": 10, "lr": 0.01}) == sixteen
    assert table.nearest({"cell": "rnn", "hidden_size": 4, "window": 9, "lr": 0.01}) == four
    assert table.nearest({"cell": "rnn", "hidden_size": 8, "window": 5, "lr": 0.012}) == 0
    # the categorical cell must match exactly: the gru configuration answers gru however far
    assert table.nearest({"cell": "gru", "hidden_size": 16, "window": 16, "lr": 0.03}) == 1
    with pytest.raises(ConfigError, match="holds no run with {'cell': 'lstm'}") as e:
        table.nearest({"cell": "lstm", "hidden_size": 8, "window": 4, "lr": 0.01})
    assert e.value.key == "simulate"


def test_a_replay_with_a_fixed_seed_is_reproducible(url: str) -> None:
    spec = smoke_spec()
    table = read_table(make_table(url, spec, [{"hidden_size": 5, "window": 12, "lr": 0.002}]))

    def replay(repeat: int) -> list[tuple[Any, ...]]:
        run = replay_repeat(spec, table, Method("tpe", "median"), repeat, Budget(trials=15))
        return [(t.params, t.config, t.run, t.epochs, t.value) for t in run.trials]

    first = replay(0)
    assert replay(0) == first and replay(1) != first


@pytest.mark.slow
def test_replays_in_worker_processes_equal_the_same_replays_in_one(url: str) -> None:
    spec = smoke_spec()
    table = read_table(make_table(url, spec))
    methods = [Method("random", "none"), Method("tpe", "median")]

    def answers(workers: int) -> list[tuple[Any, ...]]:
        runs = simulate(spec, table, methods, 3, Budget(trials=8), workers=workers)
        # a pruned trial's NaN as None: NaN never equals a NaN unpickled from another process
        trials = [[(t.params, t.run, t.epochs, None if t.pruned else t.value) for t in r.trials] for r in runs]
        return [(r.method, r.repeat, ts) for r, ts in zip(runs, trials, strict=True)]

    assert answers(2) == answers(1)


class SlowSampler(optuna.samplers.RandomSampler):
    """Random search that takes 20 ms per parameter: a sampler's decision time, made visible."""

    def sample_independent(self, *args: Any) -> Any:
        time.sleep(0.02)
        return super().sample_independent(*args)


def test_the_simulated_clock_counts_the_samplers_time(url: str) -> None:
    spec = smoke_spec()
    table = read_table(make_table(url, spec))
    run = replay_repeat(spec, table, Method("random", "none"), 0, Budget(trials=4), sampler=SlowSampler(seed=0))
    fast = replay_repeat(spec, table, Method("random", "none"), 0, Budget(trials=4))
    assert all(t.ask_seconds >= 4 * 0.02 for t in run.trials)  # four parameters each
    for r in (run, fast):  # the clock is the recorded parts and only them: no seconds are made up
        asked = r.seconds - sum(t.train_seconds + t.overhead for t in r.trials)
        assert asked == pytest.approx(sum(t.ask_seconds for t in r.trials), rel=1e-9)
    assert sum(t.ask_seconds for t in run.trials) >= 4 * 4 * 0.02


def test_a_stored_replay_reads_back_as_a_simulated_race(url: str) -> None:
    spec = smoke_spec()
    table = read_table(make_table(url, spec))
    methods = [Method("random", "none"), Method("random", "median")]
    runs = simulate(spec, table, methods, 3, Budget(seconds=60.0))
    storage = open_storage(url)
    assert store(storage, spec, table, runs, Budget(seconds=60.0), 3) == "smoke/simulated"
    store(storage, spec, table, runs[:2], Budget(seconds=60.0), 1)  # a new replay replaces the old
    back = read.load_simulated(storage)["smoke (simulated)"]
    assert len(back) == 2
    back = read.load_simulated(open_storage(url), ["smoke"])["smoke (simulated)"]
    for h, r in zip(back, runs[:2], strict=True):
        want = r.history()
        assert (h.name, h.method, h.repeat, h.seconds) == ("smoke (simulated)", want.method, want.repeat, want.seconds)
        assert np.allclose(h.elapsed, want.elapsed, atol=1e-6) and np.array_equal(h.values, want.values, equal_nan=True)
    assert read.load_simulated(storage, ["other"]) == {}


# ---------------------------------------------------------------- the command line
def _race(url: str, *extra: str) -> int:
    sets = [x for s in SPEC_SETS for x in ("--set", s)]
    return main(["race", str(SMOKE), *sets, "--storage", url, "--methods", "random+none,tpe+median",
                 "--seconds", "30", "--repeats", "4", "--no-progress", *extra])  # fmt: skip


def test_race_simulate_replays_stores_and_reports(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_table(url, smoke_spec(), [{"hidden_size": 5, "window": 12, "lr": 0.002}])
    assert _race(url, "--simulate") == 0
    out = capsys.readouterr().out
    assert "smoke (simulated) (4 repeats per method" in out and "p_improvement" in out
    assert main(["report", "--storage", url, "--out", str(tmp_path / "rep"), "--artifacts", str(tmp_path / "a")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "**smoke (simulated)** (4 repeats per method" in text and "(smoke_simulated-race-seconds.png)" in text
    assert "| smoke/curves | 2 |" in text  # the table's coverage: the two rnn configurations held out in turn
    capsys.readouterr()
    assert main(["studies", "--storage", url]) == 0
    assert (
        "smoke/simulated: replayed race, 2 methods x 4 repeats, budget {'seconds': 30.0}, from smoke/curves (5 runs)"
        in (capsys.readouterr().out.splitlines())
    )


def _rows(path: Path) -> list[str]:
    """The database's content as SQL: its bytes are no measure, since SQLite in WAL mode
    checkpoints committed pages into the main file whenever the last connection closes."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.iterdump())


@pytest.mark.parametrize(
    ("setup", "extra", "needle"),
    [
        ("none", ("--simulate",), "--simulate: no table 'smoke/curves' in the storage; tables there: (none)"),
        ("empty", ("--simulate",), "--simulate: table 'smoke/curves' holds no recorded run yet"),
        ("table", ("--simulate", "--set", "search.lr={low=1e-4, high=3e-2, log=true}"),
         "--simulate: table 'smoke/curves' does not cover search.lr: recorded 0.001..0.03 (log), the spec has "
         "0.0001..0.03 (log)"),
        ("table", ("--simulate", "--set", "training.epochs=8"),
         "--simulate: table 'smoke/curves' was recorded with training.epochs = 4, the spec has 8"),
        ("table", ("--simulate", "nope/curves"), "--simulate: no table 'nope/curves' in the storage; tables there: "
                                                  "smoke/curves"),
    ],
)  # fmt: skip
def test_bad_tables_are_one_line_exit_2_and_write_nothing(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, extra: tuple[str, ...], needle: str
) -> None:
    storage = open_storage(url)
    if setup == "empty":
        optuna.create_study(study_name="smoke/curves", storage=storage).set_user_attr(
            CURVES_ATTR, {"spec": smoke_spec().to_dict()}
        )
    elif setup == "table":
        make_table(url, smoke_spec())
    before = _rows(tmp_path / "curves.db")
    capsys.readouterr()
    code = _race(url, *extra) if "--methods" not in extra else main(
        ["race", str(SMOKE), *[x for s in SPEC_SETS for x in ("--set", s)], "--storage", url, *extra])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("harness race: ") and (needle in err[0] or err[0].startswith(f"harness race: {needle}"))
    assert _rows(tmp_path / "curves.db") == before
    assert "smoke/simulated" not in optuna.get_all_study_names(storage=storage)


def test_load_table_names_the_tables_there(url: str) -> None:
    make_table(url, smoke_spec())
    with pytest.raises(ConfigError, match="tables there: smoke/curves"):
        load_table(open_storage(url), "smoke")
