"""`harness record`: Sobol configurations x seeds trained to the full budget into `<name>/curves`,
resumed without re-running, and complete runs harvested from the spec's own searches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from harness.cli import main
from harness.race.curves import HARVESTED_ATTR, distribution, load_table
from harness.race.record import curves_spec, harvest, plan, sobol_points
from harness.search.spec import Range, StudySpec, load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
TINY = ["training.epochs=2", 'search.cell=["rnn"]', "search.hidden_size={low=4, high=8, log=true}"]


def test_sobol_points_are_a_stable_prefix_inside_the_space() -> None:
    spec = load_spec(SMOKE)
    eight = sobol_points(spec, 8, 0)
    assert sobol_points(spec, 4, 0) == eight[:4] and sobol_points(spec, 4, 1) != eight[:4]
    for name in ("hidden_size", "window", "lr"):
        p = spec.search[name]
        assert isinstance(p, Range)
        values = [x[name] for x in eight]
        assert all(p.low <= v <= p.high for v in values) and len(set(values)) >= 6  # spread, not clumped
    assert all(isinstance(x["window"], int) for x in eight)
    # every cell gets the same points, in one order: point-major, so a partial table stays balanced
    cells = plan(spec, 2, 0)
    assert [c["cell"] for c in cells] == ["rnn", "lstm", "gru"] * 2
    assert [{k: v for k, v in c.items() if k != "cell"} for c in cells] == [eight[0]] * 3 + [eight[1]] * 3


def test_record_trains_each_point_on_each_seed_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sets = [x for s in TINY for x in ("--set", s)]
    argv = ["record", str(SMOKE), *sets, "--storage", url, "--seeds", "2", "--threads", "1", "--no-progress"]
    assert main([*argv, "--configs", "1"]) == 0
    study = optuna.load_study(study_name="smoke/curves", storage=url)
    first = [(t.number, t.datetime_complete) for t in study.trials]
    assert len(first) == 2 and [t.params["seed"] for t in study.trials] == [0, 1]
    assert main([*argv, "--configs", "2"]) == 0  # two more runs: the second Sobol point on both seeds
    study = optuna.load_study(study_name="smoke/curves", storage=url)
    assert [(t.number, t.datetime_complete) for t in study.trials[:2]] == first  # not run again
    assert len(study.trials) == 4 and all(t.state == TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        assert len(t.intermediate_values) == 2 and len(t.user_attrs["epoch_seconds"]) == 2
        assert len(t.user_attrs["epoch_cpu_seconds"]) == 2 and t.user_attrs["torch_threads"] == 1
        assert t.user_attrs["config"]["seed"] == t.params["seed"] and "numerics_path" in t.user_attrs
    spec = load_spec(SMOKE, TINY)
    assert [{k: t.params[k] for k in ("hidden_size", "window", "lr")} for t in study.trials[::2]] == sobol_points(
        spec, 2, 0
    )
    table = load_table(open_storage(url), "smoke/curves")
    assert len(table.params) == 2 and sorted(table.seeds.tolist()) == [0, 0, 1, 1] and table.complete.all()
    assert "smoke/curves: 4 finished of 4" in capsys.readouterr().out
    assert main([*argv, "--configs", "2", "--seeds", "3"]) == 2  # another experiment: refused
    assert "harness record: --seeds: table 'smoke/curves' was recorded with --seeds 2" in capsys.readouterr().err


def _search_trial(spec: StudySpec, params: dict[str, Any], epochs: int, **changes: Any) -> optuna.trial.FrozenTrial:
    state = changes.pop("state", TrialState.COMPLETE)
    config = spec.run_config(params).to_dict() | changes
    return create_trial(
        params=params, distributions={k: distribution(p) for k, p in spec.search.items()}, state=state,
        value=0.1 if state == TrialState.COMPLETE else None, intermediate_values={e: 0.1 for e in range(epochs)},
        user_attrs={"config": config, "epochs_run": epochs, "train_seconds": 1.0, "seed": 0},
    )  # fmt: skip


def test_harvest_copies_complete_full_epoch_runs_of_the_same_experiment_once(tmp_path: Path) -> None:
    spec = load_spec(SMOKE, ["training.epochs=3", "study.equal_cells=false"])
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}")
    search = create_study(spec, storage)
    p = {"cell": "gru", "hidden_size": 8, "window": 4, "lr": 0.01}
    search.add_trial(_search_trial(spec, p, 3))  # taken
    search.add_trial(_search_trial(spec, p, 2))  # fewer epochs: another budget
    search.add_trial(_search_trial(spec, p, 3, batch_size=32))  # other fixed settings
    search.add_trial(_search_trial(spec, p, 3, state=TrialState.PRUNED))  # stopped by its pruner
    other = create_study(load_spec(SMOKE, ["training.epochs=3", 'study.name="other"']), storage)
    other.add_trial(_search_trial(spec, p, 3))  # another spec's search
    table = create_study(curves_spec(spec, 2), storage)
    assert harvest(storage, spec, table) == 1 and harvest(storage, spec, table) == 0
    (copied,) = table.trials
    assert copied.user_attrs[HARVESTED_ATTR] == "smoke#0" and copied.params == p and copied.value == 0.1
    assert copied.intermediate_values == {0: 0.1, 1: 0.1, 2: 0.1}
