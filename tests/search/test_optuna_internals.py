"""Contract tests for `harness.search.optuna_internals`, the one module that touches Optuna's private
API: the same assertions on every storage backend the suite has (Optuna's own storage tests
are the pattern). If an Optuna release changes what these rely on, they fail here."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

from harness.search.optuna_internals import fail_orphaned_trials, record_trial, reseed, study_artifacts, trial_artifacts

from conftest import new_study


def test_optuna_is_the_version_checked() -> None:
    major, minor = (int(x) for x in optuna.__version__.split(".")[:2])
    assert (major, minor) == (5, 0), "re-check harness/search/optuna_internals.py against this Optuna, then its bound"


def test_record_trial_writes_what_the_public_calls_would(storage: optuna.storages.BaseStorage) -> None:
    study = new_study(storage)
    trial = study.ask()
    trial.set_user_attr("seed", 1)
    record_trial(trial, {"seed": 2, "config": {"cell": "gru", "lr": 0.5}, "nan": math.nan}, {0: 0.5, 1: math.inf})
    study.tell(trial, 0.25)
    done = study.trials[0]
    assert done.user_attrs["seed"] == 2 and done.user_attrs["config"] == {"cell": "gru", "lr": 0.5}
    assert math.isnan(done.user_attrs["nan"])
    assert done.intermediate_values == {0: 0.5, 1: math.inf}
    with pytest.raises(RuntimeError):  # a finished trial refuses writes, as Optuna's own calls do
        record_trial(trial, {"late": 1})


@pytest.mark.parametrize("sampler", [optuna.samplers.TPESampler, optuna.samplers.RandomSampler,
                                     optuna.samplers.NSGAIISampler])  # fmt: skip
def test_reseed_makes_proposals_depend_on_the_seed_alone(storage: optuna.storages.BaseStorage, sampler: type) -> None:
    def propose(seed: int, constructed_with: int) -> float:
        study = optuna.create_study(study_name=f"s-{uuid.uuid4().hex[:8]}", storage=storage,
                                    sampler=sampler(seed=constructed_with))  # fmt: skip
        reseed(study.sampler, seed)
        return study.ask().suggest_float("x", 0, 1)

    assert propose(7, constructed_with=1) == propose(7, constructed_with=2)  # the reseed wins
    assert propose(7, constructed_with=1) != propose(8, constructed_with=1)


def test_artifact_records_match_optunas_own(storage: optuna.storages.BaseStorage, tmp_path: Path) -> None:
    store = FileSystemArtifactStore(str(tmp_path))
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"png")
    study = new_study(storage)
    study_id = upload_artifact(artifact_store=store, file_path=str(figure), study_or_trial=study)
    trial = study.ask()
    trial_id = upload_artifact(artifact_store=store, file_path=str(figure), study_or_trial=trial)
    study.tell(trial, 1.0)
    assert [(r["artifact_id"], r["filename"]) for r in study_artifacts(study)] == [(study_id, "figure.png")]
    frozen = study.trials[0]
    assert [r["artifact_id"] for r in trial_artifacts(frozen)] == [trial_id]
    assert [m.artifact_id for m in get_all_artifact_meta(frozen, storage=storage)] == [trial_id]


def test_a_trial_orphaned_before_its_first_heartbeat_is_failed_and_queued_again(
    storage: optuna.storages.BaseStorage,
) -> None:
    if not isinstance(storage, optuna.storages.RDBStorage):
        pytest.skip("heartbeats exist on RDB storages only")
    study = new_study(storage)
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # RUNNING, never a heartbeat
    alive = study.ask()
    storage.record_heartbeat(alive._trial_id)  # a live worker's trial
    assert optuna.storages.fail_stale_trials(study) is None and orphan.number in [
        t.number for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    ]  # Optuna's own check leaves it running forever
    assert fail_orphaned_trials(study, older_than=3600) == []  # too young to call orphaned
    assert fail_orphaned_trials(study, older_than=0) == [orphan.number]
    trials = study.get_trials()
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert trials[alive.number].state == optuna.trial.TrialState.RUNNING
    (retry,) = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert retry.system_attrs["failed_trial"] == orphan.number and retry.params == trials[orphan.number].params
