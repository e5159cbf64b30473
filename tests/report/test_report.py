from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from harness.cli import main
from harness.report import tables, write
from harness.search.spec import load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study
from harness.series.data import split_indices
from harness.series.signals import make_signal
from harness.training import evaluate
from harness.training.train import RunConfig, run

from conftest import assert_figures_shown, dashboard_server

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
DISTS = {
    "cell": CategoricalDistribution(["rnn", "lstm", "gru"]),
    "hidden_size": IntDistribution(4, 16, log=True),
    "window": IntDistribution(2, 16),
    "lr": FloatDistribution(1e-3, 3e-2, log=True),
}
# (cell, state, value, train_seconds): the numbers the tables must reproduce.
KNOWN = [
    ("rnn", TrialState.COMPLETE, 0.4, 1.0),
    ("rnn", TrialState.COMPLETE, 0.2, 3.0),
    ("lstm", TrialState.COMPLETE, 0.1, 2.0),
    ("rnn", TrialState.PRUNED, None, 0.5),
    ("rnn", TrialState.COMPLETE, 0.3, 0.5),
    ("lstm", TrialState.FAIL, None, 0.1),
    ("lstm", TrialState.COMPLETE, 0.05, 4.0),
    ("gru", TrialState.COMPLETE, 0.5, 0.2),
]


def build_known(url: str, name: str = "known", overrides: tuple[str, ...] = ()) -> optuna.Study:
    spec = load_spec(SMOKE, [f"study.name={json.dumps(name)}", *overrides])
    study = create_study(spec, open_storage(url))
    for i, (cell, state, value, seconds) in enumerate(KNOWN):
        params = {"cell": cell, "hidden_size": 4 + i, "window": 3 + i, "lr": 0.01}
        config = spec.run_config(params)
        attrs = {
            **{"config": config.to_dict(), "test_mse": 10.0 * (i + 1), "rollout_mse": 2.0 * (i + 1), "horizon": i},
            **{"train_seconds": seconds, "seconds_per_epoch": seconds / 2, "n_params": 100 + i},
        }
        curve = {0: value * 2, 1: value} if value is not None else {0: 1.0}
        study.add_trial(create_trial(params=params, distributions=DISTS, value=value, state=state,
                                     user_attrs=attrs, intermediate_values=curve))  # fmt: skip
    study.ask()  # one trial left RUNNING, as a live worker would
    return study


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'known.db'}"


@pytest.fixture
def data(url: str) -> tables.StudyData:
    build_known(url)
    (d,) = tables.load_studies(open_storage(url))
    return d


def test_cell_table_counts_best_median_and_floor(data: tables.StudyData) -> None:
    table = tables.comparison_table([data]).set_index("cell")
    rnn, lstm, gru = table.loc["rnn"], table.loc["lstm"], table.loc["gru"]
    assert (rnn["complete"], rnn["pruned"], rnn["failed"]) == (3, 1, 0)
    assert (lstm["complete"], lstm["pruned"], lstm["failed"]) == (2, 0, 1)
    assert rnn["best_val_mse"] == 0.2 and rnn["median_val_mse"] == 0.3
    assert lstm["best_val_mse"] == 0.05 and lstm["median_val_mse"] == pytest.approx(0.075)
    assert gru["best_val_mse"] == 0.5 and gru["trial"] == 7
    # the best rnn trial is number 1: its attrs and params are the row's
    assert (rnn["trial"], rnn["test_mse"], rnn["rollout_mse"], rnn["horizon"]) == (1, 20.0, 4.0, 1)
    assert (rnn["window"], rnn["hidden_size"], rnn["train_seconds"], rnn["n_params"]) == (4, 5, 3.0, 101)
    assert rnn["median_s_per_epoch"] == 0.5  # median of 0.5, 1.5, 0.25
    # references on the same splits, linear AR at its best validation window
    y = make_signal(data.spec.signal)
    fits = {w: evaluate.references(y, split_indices(1000, w)) for w in range(2, 17)}
    best_w = min(fits, key=lambda w: fits[w]["linear-ar"]["val_mse"])
    floor = fits[best_w]["linear-ar"]["test_mse"]
    assert table.loc["ref: linear-ar", "test_mse"] == floor and table.loc["ref: linear-ar", "window"] == best_w
    assert table.loc["ref: persistence", "test_mse"] == pytest.approx(fits[2]["persistence"]["test_mse"])
    assert table.loc["ref: mean", "test_mse"] == pytest.approx(fits[2]["mean"]["test_mse"])
    assert table["x_floor"].isna().all()  # a noiseless sine's floor is float rounding: no ratio to it


@pytest.mark.slow
def test_x_floor_reads_against_the_noise_on_a_noisy_signal(url: str) -> None:
    build_known(url, overrides=("signal.noise_std=0.1",))
    (data,) = tables.load_studies(open_storage(url))
    table = tables.comparison_table([data]).set_index("cell")
    floor = table.loc["ref: linear-ar", "test_mse"]
    assert 0.005 < floor < 0.02  # about the noise variance, 0.01
    assert table.loc["rnn", "x_floor"] == pytest.approx(20.0 / floor) and table.loc["ref: linear-ar", "x_floor"] == 1.0


@pytest.mark.slow
def test_side_by_side_pivots_studies(url: str) -> None:
    build_known(url)
    build_known(url, "other")
    studies = tables.load_studies(open_storage(url))
    side = tables.side_by_side(tables.cell_summary(studies)).set_index("cell")
    assert list(side.index) == ["rnn", "lstm", "gru"]
    assert side.loc["lstm", "known: best_val_mse"] == 0.05 and side.loc["lstm", "other: window"] == 9
    assert side.loc["rnn", "other: horizon"] == 1


def test_importances_cover_the_searched_params(data: tables.StudyData) -> None:
    imp = tables.importances([data])
    assert set(imp["param"]) <= {"cell", "hidden_size", "window", "lr"} and len(imp) >= 1
    assert (imp["importance"] >= 0).all()


def test_figure_data(data: tables.StudyData) -> None:
    best = tables.best_so_far_info(data).frame
    rnn = best[best["cell"] == "rnn"]
    # every finished trial, the pruned one at its best reported value, and a last row at the
    # study's last trial (8, still running) so the line runs to the end of the search
    assert rnn["number"].tolist() == [0, 1, 3, 4, 8]
    assert rnn["state"].tolist() == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "END"]
    assert rnn["value"].tolist()[:4] == [0.4, 0.2, 1.0, 0.3]
    assert rnn["best_so_far"].tolist() == [0.4, 0.2, 0.2, 0.2, 0.2]
    curves = tables.learning_curves_info(data).frame
    assert len(curves) == 6 * 2 and set(curves["number"]) == {0, 1, 2, 4, 6, 7}
    front = tables.pareto_info(data).frame.set_index("number")["on_front"]
    # (value, seconds): 0.4/1, 0.2/3, 0.1/2, 0.3/0.5, 0.05/4, 0.5/0.2 -> front: 0.5/0.2, 0.3/0.5, 0.1/2, 0.05/4
    assert front.to_dict() == {0: False, 1: False, 2: True, 4: True, 6: True, 7: True}
    scatter_info = tables.param_scatter_info(data)
    scatter, ranges = scatter_info.frame, scatter_info.ranges
    assert set(ranges) == {"hidden_size", "window", "lr"} and ranges["hidden_size"].log
    assert len(scatter) == 7 and {"value", "cell", "window", "state"} <= set(scatter.columns)
    assert scatter.set_index("number").loc[3, "state"] == "PRUNED"  # pruned trials are visible too


def test_predictions_rerun_the_stored_best_config(data: tables.StudyData) -> None:
    # a study recorded without weights: re-trained from the stored config on request
    assert tables.predictions_info(data, None, "cpu").missing == ("rnn", "lstm", "gru")
    preds = tables.predictions_info(data, None, "cpu", retrain=True).frame
    assert list(dict.fromkeys(preds["cell"])) == ["rnn", "lstm", "gru"] and len(preds) == 3 * 150
    rnn = preds[preds["cell"] == "rnn"]
    again = run(RunConfig.from_dict(data.trial("known", 1).user_attrs["config"]), "cpu")
    assert float(np.mean((rnn["one_step"] - rnn["truth"]) ** 2)) == pytest.approx(again.metrics["test_mse"], rel=1e-5)
    assert np.allclose(rnn["free_error"], np.abs(rnn["free_running"] - rnn["truth"]))
    assert rnn["t"].iloc[0] == 850 and rnn["step"].iloc[-1] == 150


@pytest.mark.slow
def test_report_command_writes_tables_figures_and_artifacts(url: str, tmp_path: Path) -> None:
    build_known(url)
    out, artifacts = tmp_path / "report", tmp_path / "artifacts"
    argv = [
        "report",
        "--storage",
        url,
        "--out",
        str(out),
        "--artifacts",
        str(artifacts),
        "--device",
        "cpu",
        "--retrain",
    ]
    assert main(argv) == 0
    md = (out / "report.md").read_text()
    assert "| known | rnn | 4 | 3 | 1 | 0 | 0.2 | 0.3 |" in md  # budget: the rnn got 4 of the shared trials
    for name in ("comparison", "side_by_side", "importances"):
        assert not pd.read_csv(out / f"{name}.csv").empty
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 6 and all(p.startswith("known-") for p in pngs)
    assert_figures_shown(out)
    study = optuna.load_study(study_name="known", storage=url)
    metas = optuna.artifacts.get_all_artifact_meta(study)
    assert sorted(m.filename for m in metas) == pngs
    assert main(argv) == 0  # a second report replaces, not duplicates, the artifacts
    metas = optuna.artifacts.get_all_artifact_meta(optuna.load_study(study_name="known", storage=url))
    assert sorted(m.filename for m in metas) == pngs and len(list(artifacts.iterdir())) == 6


def test_missing_integers_are_blank_not_na() -> None:
    table = write.markdown_table(write._integers(pd.DataFrame({"cell": ["rnn", "ref"], "window": [3, None]})))
    assert "| ref |  |" in table and "NA" not in table and "| rnn | 3 |" in table


def test_report_escapes_names_and_attrs() -> None:
    assert write.md_escape("a|b <script>") == "a\\|b &lt;script&gt;"
    table = write.markdown_table(pd.DataFrame({"study": ["x|y"], "v": [0.5]}))
    assert "x\\|y" in table and "| 0.5 |" in table


@pytest.mark.parametrize("extra,flag", [(["--study", "nope"], "--study"), ([], "--storage")])
def test_report_bad_input(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], flag: str
) -> None:
    if extra:
        build_known(url)
    else:
        url = f"sqlite:///{tmp_path / 'missing.db'}"
    out = tmp_path / "out"
    assert main(["report", "--storage", url, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0]
    assert not out.exists() and not (tmp_path / "missing.db").exists()


@pytest.fixture
def dashboard(url: str, tmp_path: Path) -> Iterator[str]:
    build_known(url)
    artifacts = tmp_path / "artifacts"
    argv = ["report", "--storage", url, "--out", str(tmp_path / "r"), "--artifacts", str(artifacts), "--device", "cpu",
            "--retrain"]  # fmt: skip
    assert main(argv) == 0
    with dashboard_server(url, artifacts) as base:
        yield base


@pytest.mark.slow
def test_dashboard_serves_the_report_figures(dashboard: str, url: str) -> None:
    study_id = optuna.load_study(study_name="known", storage=url)._study_id
    with urllib.request.urlopen(f"{dashboard}/api/studies/{study_id}", timeout=30) as response:
        detail = json.load(response)
    listed = {a["filename"]: a["artifact_id"] for a in detail["artifacts"]}
    assert "known-predictions.png" in listed and len(listed) == 6
    # the dashboard opens on the findings (the study's note) and names the objective
    assert "Which cell predicts best?" in detail["note"]["body"] and "no replicates yet" in detail["note"]["body"]
    assert detail["objective_names"] == ["val_mse"]
    with urllib.request.urlopen(f"{dashboard}/artifacts/{study_id}/{listed['known-pareto.png']}", timeout=30) as r:
        assert r.headers["Content-Type"] == "image/png"
        assert r.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_on_a_study_without_complete_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = create_study(load_spec(SMOKE), open_storage(url))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"cell": "rnn"}, distributions={"cell": DISTS["cell"]}))
    study.ask()
    out = tmp_path / "r"
    assert main(["report", "--storage", url, "--out", str(out), "--artifacts", str(tmp_path / "a")]) == 0
    table = pd.read_csv(out / "comparison.csv").set_index("cell")
    assert table.loc["rnn", "failed"] == 1 and table.loc["rnn", "complete"] == 0


def test_report_to_an_unwritable_folder(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    build_known(url)
    assert main(["report", "--storage", url, "--out", "/proc/harness-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "cannot create folder" in err[0]


@pytest.mark.slow
def test_a_one_study_report_leaves_the_full_reports_notes_whole(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna_dashboard

    build_known(url)
    build_known(url, "other")
    base = ["report", "--storage", url, "--artifacts", str(tmp_path / "a"), "--device", "cpu", "--retrain"]
    assert main([*base, "--study", "other", "--out", str(tmp_path / "first")]) == 0
    first = optuna_dashboard.get_note(optuna.load_study(study_name="other", storage=url))
    assert first.startswith("_Written by `harness report --study other` on ")  # no full note yet: written
    assert main([*base, "--out", str(tmp_path / "full")]) == 0
    notes = {n: optuna_dashboard.get_note(optuna.load_study(study_name=n, storage=url)) for n in ("known", "other")}
    assert all(note.startswith("_Written by `harness report` on ") for note in notes.values())
    capsys.readouterr()
    assert main([*base, "--study", "known", "--out", str(tmp_path / "one")]) == 0
    assert optuna_dashboard.get_note(optuna.load_study(study_name="known", storage=url)) == notes["known"]
    assert optuna_dashboard.get_note(optuna.load_study(study_name="other", storage=url)) == notes["other"]
    assert "notes of known were written by the full report and are left" in capsys.readouterr().err
