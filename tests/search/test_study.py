from __future__ import annotations

import inspect
import json
import math
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import optuna_dashboard
import pytest
import torch
from optuna.trial import TrialState

from harness.cli import main
from harness.search.study import TRIAL_ATTRS
from harness.training.train import RunConfig, run

STUDIES = Path(__file__).parents[2] / "studies"
SMOKE = str(STUDIES / "smoke.toml")


def load(url: str, name: str = "smoke") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'harness.db'}"


def test_end_to_end_smoke_study_records_the_contract(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["launch", SMOKE, "--storage", url, "--trials", "3", "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "smoke: 3 finished" in out and "best val_mse" in out
    study = load(url)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3
    for t in trials:
        assert set(t.params) == {"cell", "hidden_size", "window", "lr"}
        assert sorted(t.intermediate_values) == [0, 1]  # two epochs
        assert all(math.isfinite(v) and v > 0 for v in t.intermediate_values.values())
        assert t.value == pytest.approx(min(t.intermediate_values.values()))
        for key in TRIAL_ATTRS:
            assert key in t.user_attrs, key
        a = t.user_attrs
        assert a["train_seconds"] > 0 and a["seconds_per_epoch"] > 0 and a["samples_per_second"] > 0
        assert a["process_peak_bytes"] >= a["run_memory_bytes"] >= 0 and a["device"] == "cpu" and a["device_name"]
        assert a["epochs_run"] == 2 and a["n_params"] > 0 and a["overhead_seconds"] >= 0
        path = a["numerics_path"]  # what decides its float rounding on the CPU
        assert path["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "NO AVX", "SVE256")
        assert path["torch"] == torch.__version__ and isinstance(path["onednn"], bool) and path["threads"] >= 1
        assert all(math.isfinite(a[k]) for k in ("val_mse", "test_mse", "rollout_mse"))
        assert 0 <= a["horizon"] <= 150
        # The stored config alone re-runs the trial to the same numbers.
        again = run(RunConfig.from_dict(a["config"]), "cpu")
        assert again.metrics["val_mse"] == pytest.approx(t.value, rel=1e-5)
        assert {k: a["config"][k] for k in t.params} == t.params
    attrs = study.user_attrs
    assert attrs["spec"]["study"]["name"] == "smoke"
    env = attrs["environment"]
    for key in ("harness_version", "torch_version", "optuna_version", "python_version", "git_commit", "cpu", "gpus"):
        assert key in env


@pytest.mark.slow
def test_resume_runs_only_the_remainder(url: str) -> None:
    assert main(["launch", SMOKE, "--storage", url, "--trials", "4", "--no-progress"]) == 0
    first = [t.number for t in load(url).trials]
    assert main(["launch", SMOKE, "--storage", url, "--trials", "6", "--no-progress"]) == 0
    trials = load(url).trials
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert [t.number for t in trials[:4]] == first
    assert main(["launch", SMOKE, "--storage", url, "--trials", "6", "--no-progress"]) == 0
    assert len(load(url).trials) == 6  # budget already met: nothing runs


@pytest.mark.slow
def test_two_workers_fill_the_budget_exactly(url: str) -> None:
    assert main(["launch", SMOKE, "--storage", url, "--trials", "6", "--workers", "2", "--no-progress"]) == 0
    trials = load(url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params)  # workers were seeded apart
    assert all("fail_reason" not in t.user_attrs for t in trials)


def test_diverging_trials_are_pruned_with_a_reason_and_the_study_goes_on(url: str) -> None:
    argv = ["launch", SMOKE, "--storage", url, "--trials", "2", "--no-progress", "--set", "search.lr=1e30"]
    assert main([*argv, "--set", 'search.cell=["rnn"]']) == 0
    trials = load(url).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert all("diverged" in t.user_attrs["fail_reason"] for t in trials)


@pytest.mark.slow
def test_pareto_study_records_two_objectives(url: str) -> None:
    argv = ["launch", SMOKE, "--storage", url, "--trials", "2", "--no-progress"]
    assert main([*argv, "--set", 'study.objectives=["val_mse", "train_seconds"]', "--set", "study.sampler=nsga2"]) == 0
    study = load(url)
    assert study.metric_names == ["val_mse", "train_seconds"]
    assert all(len(t.values) == 2 and t.values[1] == t.user_attrs["train_seconds"] for t in study.trials)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["random", "cmaes", "qmc"])
def test_each_sampler_runs(url: str, sampler: str) -> None:
    argv = ["launch", SMOKE, "--storage", url, "--trials", "2", "--no-progress", "--set", f"study.sampler={sampler}"]
    assert main([*argv, "--set", "training.epochs=1"]) == 0
    assert len(load(url).get_trials(states=(TrialState.COMPLETE,))) == 2


@pytest.mark.slow
def test_gp_sampler_proposes_trials_after_its_random_start(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GPSampler samples its first n_startup_trials (10 in Optuna 5) at random; only then does
    # the Gaussian process propose, through sample_relative. Run one trial past that and
    # record what the GP proposed (worker 0 runs in this process).
    startup = inspect.signature(optuna.samplers.GPSampler).parameters["n_startup_trials"].default
    proposals: dict[int, dict[str, Any]] = {}
    real = optuna.samplers.GPSampler.sample_relative

    def spy(self: optuna.samplers.GPSampler, study: optuna.Study, trial: Any, space: dict[str, Any]) -> dict[str, Any]:
        params = real(self, study, trial, space)
        proposals[trial.number] = params
        return params

    monkeypatch.setattr(optuna.samplers.GPSampler, "sample_relative", spy)
    argv = ["launch", SMOKE, "--storage", url, "--trials", str(startup + 1), "--no-progress"]
    sets = ["study.sampler=gp", "training.epochs=1", "search.hidden_size={low=4, high=8}"]
    assert main([*argv, *[x for s in sets for x in ("--set", s)]]) == 0
    trials = load(url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * (startup + 1)
    by_gp = [n for n, params in sorted(proposals.items()) if params]
    assert by_gp == [startup]  # after the random start-up, and only then
    assert set(proposals[startup]) == {"cell", "hidden_size", "window", "lr"}  # every searched parameter
    assert trials[startup].params == proposals[startup]  # the trial ran what the GP proposed


def test_grid_sampler_with_lists(url: str) -> None:
    sets = ['study.sampler="grid"', 'search.hidden_size=[4, 8]', 'search.window=[3]', 'search.lr=[0.01]',
            'search.cell=["gru"]', "training.epochs=1"]  # fmt: skip
    argv = ["launch", SMOKE, "--storage", url, "--trials", "2", "--no-progress"]
    assert main([*argv, *[x for s in sets for x in ("--set", s)]]) == 0
    assert sorted(t.params["hidden_size"] for t in load(url).trials) == [4, 8]


@pytest.mark.slow
def test_studies_lists_counts_and_best(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["launch", SMOKE, "--storage", url, "--trials", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["studies", "--storage", url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1 and rows[0]["study"] == "smoke" and rows[0]["counts"]["COMPLETE"] == 2
    assert rows[0]["best_value"] == load(url).best_value


def test_studies_on_a_missing_database_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["studies", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "--storage" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_password_in_a_storage_url_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://harness:s3cret-pw@127.0.0.1:9/harness"  # nothing listens on port 9
    assert main(["launch", SMOKE, "--storage", url, "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "s3cret-pw" not in captured.err + captured.out
    assert "--storage" in captured.err and "***" in captured.err


@pytest.fixture
def served(url: str) -> Iterator[str]:
    assert main(["launch", SMOKE, "--storage", url, "--trials", "1", "--no-progress"]) == 0
    assert main(["launch", SMOKE, "--storage", url, "--trials", "1", "--no-progress", "--set", "study.name=other"]) == 0

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(url), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.slow
def test_dashboard_sees_the_studies(served: str) -> None:
    with urllib.request.urlopen(f"{served}/api/studies", timeout=30) as response:
        body = json.load(response)
    names = {s["study_name"] for s in body["study_summaries"]}
    assert names == {"smoke", "other"}


def test_failing_trials_record_why_and_stop_the_worker(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fault injection: training itself raises, as a driver or hardware error would.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure\nsecond line")

    monkeypatch.setattr("harness.search.study.train.run", broken)
    assert main(["launch", SMOKE, "--storage", url, "--trials", "5", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "harness launch: smoke: 3 trials failed in a row; see their fail_reason"
    trials = load(url).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all(t.user_attrs["fail_reason"] == "RuntimeError: injected failure" for t in trials)
