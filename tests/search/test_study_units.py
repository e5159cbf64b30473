"""Unit tests of `harness.search.study` where its logic lives, on every storage backend: what a trial
records, the sampler and pruner registries, counting trials, the study's own attrs and its best.
(`test_study.py` runs whole studies through the CLI; the budget and lock are `launch`'s.)"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState, create_trial

from harness.constraints import rule_of
from harness.search import spec as spec_module
from harness.search.optuna_internals import record_trial
from harness.search.samplers import PRUNERS, SAMPLERS
from harness.search.spec import StudySettings, load_spec
from harness.search.study import (
    PER_CELL_ATTR,
    TRIAL_ATTRS,
    Pruning,
    best_trial,
    count_trials,
    create_study,
    make_pruner,
    make_sampler,
    summarize,
)
from harness.search.trials import Runner

from conftest import new_study

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"


def smoke(*overrides: str) -> spec_module.StudySpec:
    return load_spec(SMOKE, ["training.epochs=2", 'search.cell=["gru"]', *overrides])


# ---------------------------------------------------------------- registries
def test_the_spec_allows_exactly_the_registered_names() -> None:
    assert rule_of(StudySettings, "sampler").options is SAMPLERS  # type: ignore[attr-defined]
    assert rule_of(StudySettings, "pruner").options is PRUNERS  # type: ignore[attr-defined]


SAMPLER_CLASSES = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_registered_sampler_is_built_by_name(name: str) -> None:
    lists = ["search.hidden_size=[4, 8]", "search.window=[3]", "search.lr=[0.01]"] if name == "grid" else []
    spec = smoke(f"study.sampler={name}", *lists)
    assert isinstance(make_sampler(spec, seed=3), SAMPLER_CLASSES[name])
    assert set(SAMPLER_CLASSES) == set(SAMPLERS)


def test_the_grid_sampler_gets_the_specs_lists() -> None:
    spec = smoke("study.sampler=grid", "search.hidden_size=[4, 8]", "search.window=[3]", "search.lr=[0.01]")
    sampler = make_sampler(spec, seed=0)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    assert len(sampler._all_grids) == 2  # cell (1) x hidden_size (2) x window (1) x lr (1)


@pytest.mark.parametrize(
    "name,cls",
    [("median", optuna.pruners.MedianPruner), ("hyperband", optuna.pruners.HyperbandPruner),
     ("successive-halving", optuna.pruners.SuccessiveHalvingPruner), ("none", optuna.pruners.NopPruner)],
)  # fmt: skip
def test_each_registered_pruner_is_built_by_name(name: str, cls: type) -> None:
    assert type(make_pruner(smoke(f"study.pruner={name}"))) is cls
    assert name in PRUNERS and len(PRUNERS) == 4


def test_hyperband_spans_the_specs_epochs() -> None:
    pruner = make_pruner(smoke("study.pruner=hyperband", "training.epochs=7"))
    assert pruner._max_resource == 7  # type: ignore[attr-defined]


# ---------------------------------------------------------------- counting and the best
def test_count_trials_by_state(storage: optuna.storages.BaseStorage) -> None:
    study = new_study(storage)
    study.add_trial(create_trial(value=1.0))
    study.add_trial(create_trial(state=TrialState.PRUNED))
    study.add_trial(create_trial(state=TrialState.FAIL))  # a failure holds no place in the budget
    study.ask()  # running
    study.enqueue_trial({"x": 1})  # waiting: a retry queued for any worker
    assert count_trials(study) == (2, 1, 1)


def test_best_trial_and_summary(storage: optuna.storages.BaseStorage) -> None:
    study = new_study(storage)
    assert best_trial(study) is None and summarize(study)["best_value"] is None
    for value in (0.5, 0.2, 0.9):
        study.add_trial(create_trial(value=value, params={"lr": value},
                                     distributions={"lr": optuna.distributions.FloatDistribution(0, 1)}))  # fmt: skip
    study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={0: 0.01}))  # never the best
    summary = summarize(study)
    assert summary["best_value"] == 0.2 and summary["best_trial"] == 1 and summary["best_params"] == {"lr": 0.2}
    assert summary["counts"]["COMPLETE"] == 3 and summary["counts"]["PRUNED"] == 1


# ---------------------------------------------------------------- the study and its trials' records
def test_create_study_records_the_spec_environment_and_parent(storage: optuna.storages.BaseStorage) -> None:
    parent = replace(smoke(), study=replace(smoke().study, name=f"parent-{id(storage)}"))
    child = parent.per_cell(4)["gru"]
    study = create_study(child, storage, target=9, parent=parent)
    attrs = study.user_attrs
    assert attrs["spec"]["study"]["trials"] == 9  # the current target, so a resume to more says so
    assert attrs[PER_CELL_ATTR] == {"name": parent.study.name, "cell": "gru", "spec": parent.to_dict()}
    assert {"torch_version", "optuna_version", "git_commit"} <= set(attrs["environment"])
    assert study.metric_names == ["val_mse"]
    again = create_study(child, storage)  # a resume loads the same study
    assert again._study_id == study._study_id


@pytest.mark.parametrize("pruner", ["none", "median"])
def test_a_run_trial_records_the_trial_contract(storage: optuna.storages.BaseStorage, pruner: str) -> None:
    spec = smoke(f"study.pruner={pruner}")
    study = create_study(replace(spec, study=replace(spec.study, name=f"o-{pruner}-{id(storage)}")), storage)
    for _ in range(2):
        assert Runner(spec, torch.device("cpu")).run(study, study.ask()) == TrialState.COMPLETE
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert set(TRIAL_ATTRS) <= set(trial.user_attrs) and "fail_reason" not in trial.user_attrs
        # the per-epoch curve: reported for pruning, or written with the attrs when not pruning
        assert sorted(trial.intermediate_values) == [0, 1]
        assert trial.value == pytest.approx(min(trial.intermediate_values.values()))
        assert trial.user_attrs["config"]["cell"] == "gru" and trial.user_attrs["epochs_run"] == 2
        assert math.isfinite(trial.user_attrs["test_mse"]) and trial.user_attrs["overhead_seconds"] >= 0


def test_a_failing_trial_is_told_fail_with_its_error(
    storage: optuna.storages.BaseStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr("harness.training.train.run", broken)  # trials.Runner looks it up there
    spec = smoke()
    study = create_study(replace(spec, study=replace(spec.study, name=f"f-{id(storage)}")), storage)
    assert Runner(spec, torch.device("cpu")).run(study, study.ask()) == TrialState.FAIL
    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[0].user_attrs["fail_reason"] == "RuntimeError: disk on fire"


# ---------------------------------------------------------------- pruning in memory
def test_the_median_pruner_asked_in_memory_decides_as_optuna_does(tmp_path: Path) -> None:
    """Every epoch's decision of `Pruning` (no storage round trip) equals Optuna's own
    `report` + `should_prune` on the same study, and the curve reaches the storage with the record."""
    spec = smoke('study.pruner="median"')
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p.db'}")
    study = new_study(storage, pruner=make_pruner(spec))
    rng = np.random.default_rng(0)
    for _ in range(8):  # completed trials with curves to compare against
        curve = {e: float(v) for e, v in enumerate(np.sort(rng.uniform(0, 1, 10))[::-1])}
        study.add_trial(create_trial(value=min(curve.values()), intermediate_values=curve))
    decisions = 0
    for curve_seed in range(6):
        values = np.sort(np.random.default_rng(curve_seed).uniform(0, 1.5, 10))[::-1]
        live, mine = study.ask(), study.ask()
        pruning = Pruning(spec, mine)
        assert pruning.in_memory
        for epoch, v in enumerate(values):
            live.report(float(v), epoch)
            expected = live.should_prune()
            assert pruning(epoch, {"val_mse": float(v)}) == expected, (curve_seed, epoch)
            decisions += expected
            if expected:
                break
        record_trial(mine, {}, pruning.curve)
        assert (
            storage.get_trial(mine._trial_id).intermediate_values
            == storage.get_trial(live._trial_id).intermediate_values
        )
        study.tell(live, state=TrialState.PRUNED)
        study.tell(mine, state=TrialState.PRUNED)
    assert decisions > 0  # some curves were pruned, some not: both answers were compared
