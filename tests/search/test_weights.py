"""Trained weights as trial artifacts: kept by every complete trial, loaded by the report
(which then never trains), by `harness.load_model` and by `harness weights`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

import harness
from harness.cli import main
from harness.report import tables
from harness.search.storage import open_storage
from harness.search.study import COMPANION_SUFFIX
from harness.series.data import make_windows
from harness.series.signals import make_signal
from harness.training import evaluate
from harness.training.train import RunConfig

from conftest import dashboard_server

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"


def launch(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    url, artifacts = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "artifacts"
    argv = ["launch", str(SMOKE), "--storage", url, "--artifacts", str(artifacts), "--no-progress", *extra]
    assert main(argv) == 0
    return url, artifacts


def metrics_of(model: harness.models.RecurrentRegressor, config: RunConfig) -> dict[str, float]:
    data = make_windows(make_signal(config.signal), config.window, "cpu", config.train_frac, config.val_frac)
    s = data.splits
    return {part: evaluate.mse(evaluate.predict(model, data, config.protocol, getattr(s, part[:-4])),
                               data.y[getattr(s, part[:-4])]) for part in ("val_mse", "test_mse")}  # fmt: skip


def test_complete_trials_keep_weights_that_reproduce_their_metrics(tmp_path: Path) -> None:
    url, artifacts = launch(tmp_path, "--trials", "3")
    storage = open_storage(url)
    for trial in optuna.load_study(study_name="smoke", storage=url).trials:
        assert trial.state == TrialState.COMPLETE
        metas = get_all_artifact_meta(trial, storage=storage)
        assert [m.filename for m in metas] == ["weights.pt"]
        # plain torch, no harness: the file is a dict of tensors and plain data
        path = artifacts / metas[0].artifact_id
        data = torch.load(path, weights_only=True)
        assert data["config"] == trial.user_attrs["config"] and data["cell"] == trial.params["cell"]
        model = harness.load_model(url, "smoke", trial.number, artifacts)
        found = metrics_of(model, RunConfig.from_dict(trial.user_attrs["config"]))
        assert found["val_mse"] == trial.user_attrs["val_mse"] == trial.value  # exactly, on the CPU
        assert found["test_mse"] == trial.user_attrs["test_mse"]


def test_diverged_trials_keep_none(tmp_path: Path) -> None:
    url, artifacts = launch(tmp_path, "--trials", "1", "--set", "search.lr=1e30", "--set", 'search.cell=["rnn"]')
    (trial,) = optuna.load_study(study_name="smoke", storage=url).trials
    assert trial.state == TrialState.PRUNED and "diverged" in trial.user_attrs["fail_reason"]
    assert get_all_artifact_meta(trial, storage=open_storage(url)) == []
    assert main(["weights", "smoke", "0", "--storage", url, "--artifacts", str(artifacts), "--out", "x.pt"]) == 2


@pytest.mark.slow
def test_the_report_reads_weights_and_never_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts = launch(tmp_path, "--trials", "3")

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the report trained a model")

    monkeypatch.setattr(tables, "run", no_training)
    (data,) = tables.load_studies(open_storage(url))
    preds = tables.predictions_info(data, artifacts)
    assert preds.missing == () and set(preds.frame["cell"]) == set(data.trials["cell"])
    for cell, frame in preds.frame.groupby("cell"):
        best = data.trials[data.trials["cell"] == cell].sort_values("value").iloc[0]
        test_mse = float(((frame["one_step"] - frame["truth"]) ** 2).mean())
        assert test_mse == pytest.approx(best["test_mse"], rel=1e-6)  # the recorded trial, not a re-run
    out = tmp_path / "r"
    argv = ["report", "--storage", url, "--artifacts", str(artifacts), "--out", str(out)]
    assert main(argv) == 0 and (out / "smoke-predictions.png").exists()
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_study_without_weights_is_said_once_and_retrained_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    spec = harness.search.spec.load_spec(SMOKE)
    harness.search.launch.launch(spec, url, trials=2, progress=False)  # no artifact store: as before weights were kept
    out, artifacts = tmp_path / "r", tmp_path / "artifacts"
    argv = ["report", "--storage", url, "--artifacts", str(artifacts), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no stored weights" in err[0] and "--retrain" in err[0]
    assert not (out / "smoke-predictions.png").exists() and "no stored weights" in (out / "report.md").read_text()
    assert main([*argv, "--retrain"]) == 0
    assert (out / "smoke-predictions.png").exists() and capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_database_without_its_artifact_folder_still_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = launch(tmp_path, "--trials", "2")
    out, empty = tmp_path / "r", tmp_path / "elsewhere"
    assert main(["report", "--storage", url, "--artifacts", str(empty), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "weights are not in" in err and "no stored weights" in err and "Traceback" not in err
    assert not (out / "smoke-predictions.png").exists() and (out / "smoke-params.png").exists()


@pytest.mark.slow
def test_weights_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, artifacts = launch(tmp_path, "--trials", "1")
    target = tmp_path / "best.pt"
    argv = ["weights", "smoke", "0", "--storage", url, "--artifacts", str(artifacts)]
    assert main([*argv, "--out", str(target)]) == 0
    data = torch.load(target, weights_only=True)
    assert data["format"] == "harness-weights/1" and str(target) in capsys.readouterr().out
    for bad, flag in ((["weights", "smoke", "7"], "trial"), (["weights", "nope", "0"], "study")):
        assert main([*bad, "--storage", url, "--artifacts", str(artifacts), "--out", str(tmp_path / "x.pt")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0]
    assert not (tmp_path / "x.pt").exists()


def test_launch_refuses_an_artifact_folder_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.db"
    argv = ["launch", str(SMOKE), "--storage", f"sqlite:///{db}", "--artifacts", "/proc/harness-artifacts"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--artifacts" in err[0] and "cannot write" in err[0]
    assert not db.exists()


@pytest.mark.slow
def test_replicates_keep_their_weights(tmp_path: Path) -> None:
    url, artifacts = launch(tmp_path, "--trials", "2")
    assert main(["confirm", "--storage", url, "--artifacts", str(artifacts), "--seeds", "2", "--device", "cpu"]) == 0
    storage = open_storage(url)
    runs = optuna.load_study(study_name="smoke" + COMPANION_SUFFIX, storage=url).trials
    assert runs and all(len(get_all_artifact_meta(t, storage=storage)) == 1 for t in runs)
    model = harness.load_model(url, "smoke" + COMPANION_SUFFIX, runs[0].number, artifacts)
    found = metrics_of(model, RunConfig.from_dict(runs[0].user_attrs["config"]))
    assert found["test_mse"] == runs[0].user_attrs["test_mse"]


@pytest.mark.slow
def test_the_dashboard_lists_a_trials_weights(tmp_path: Path) -> None:
    url, artifacts = launch(tmp_path, "--trials", "1")

    with dashboard_server(url, artifacts) as base:
        study_id = optuna.load_study(study_name="smoke", storage=url)._study_id
        with urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=30) as response:
            detail = json.load(response)
        (listed,) = detail["trials"][0]["artifacts"]
        assert listed["filename"] == "weights.pt"
        trial_id = detail["trials"][0]["trial_id"]
        with urllib.request.urlopen(f"{base}/artifacts/{study_id}/{trial_id}/{listed['artifact_id']}", timeout=30) as r:
            assert r.read() == (artifacts / listed["artifact_id"]).read_bytes()
