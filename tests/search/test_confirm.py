from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy import stats

from harness.cli import main
from harness.search.confirm import replicate_frame, replicate_seeds
from harness.search.spec import load_spec
from harness.search.storage import open_storage
from harness.search.study import COMPANION_SUFFIX as SUFFIX
from harness.stats import replicates

from conftest import assert_figures_shown

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"


def test_replicate_seeds_are_deterministic_and_distinct() -> None:
    spec = load_spec(SMOKE)
    seeds = replicate_seeds(spec, 5)
    assert seeds == replicate_seeds(spec, 5) and len(set(seeds)) == 5
    assert replicate_seeds(spec, 3) == seeds[:3]
    assert replicate_seeds(load_spec(SMOKE, ["training.seed=1"]), 5) != seeds


@pytest.mark.slow
def test_confirm_runs_paired_replicates_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "5", "--no-progress"]) == 0
    assert main(["confirm", "--storage", url, "--seeds", "2", "--top", "1", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    companion = optuna.load_study(study_name="smoke" + SUFFIX, storage=url)
    trials = companion.get_trials(states=(TrialState.COMPLETE,))
    cells = {t.user_attrs["config"]["cell"] for t in trials}
    search = optuna.load_study(study_name="smoke", storage=url)
    assert cells == {t.params["cell"] for t in search.trials}
    assert len(trials) == 2 * len(cells)
    spec = load_spec(SMOKE)
    for cell in cells:
        assert sorted(t.user_attrs["seed"] for t in trials if t.user_attrs["config"]["cell"] == cell) == sorted(
            replicate_seeds(spec, 2)
        )
    for t in trials:
        assert t.user_attrs["replicate_of_study"] == "smoke"
        original = search.trials[t.user_attrs["replicate_of"]]
        assert t.params == original.params and t.user_attrs["rank"] == 0
        assert t.user_attrs["config"] | {"seed": 0} == original.user_attrs["config"] | {"seed": 0}
        assert t.user_attrs["config"]["seed"] == t.user_attrs["seed"]
    assert f"{2 * len(cells)} new runs" in err
    # a second confirm trains nothing new
    assert main(["confirm", "--storage", url, "--seeds", "2", "--device", "cpu"]) == 0
    assert "0 new runs" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="smoke" + SUFFIX, storage=url).trials) == len(trials)
    # and the report shows the replicates
    out = tmp_path / "r"
    assert main(["report", "--storage", url, "--out", str(out)]) == 0
    assert "Replicates" in (out / "report.md").read_text() and (out / "replicates.png").exists()
    assert_figures_shown(out)


@pytest.mark.slow
def test_replicate_studies_are_first_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import optuna_dashboard

    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "3", "--no-progress",
                 "--set", "study.equal_cells=true", "--set", "training.epochs=4"]) == 0  # fmt: skip
    assert main(["confirm", "--storage", url, "--seeds", "3", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["confirm", "--storage", url, "--seeds", "2", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "tables over the 2 seeds asked for" in err
    runs = out.split("\n\n")[0].splitlines()[1:]  # the replicate table: a row per cell, "runs" its third column
    assert runs and all(row.split()[2] == "2" for row in runs)
    companion = optuna.load_study(study_name="smoke" + SUFFIX, storage=url)
    assert companion.metric_names == ["val_mse"]
    for t in companion.get_trials(states=(TrialState.COMPLETE,)):
        assert t.params["cell"] == t.user_attrs["config"]["cell"]  # the cell on every run, as a param
        took = (t.datetime_complete - t.datetime_start).total_seconds()
        assert took >= t.user_attrs["train_seconds"]  # its duration is the run's, not the time to record it
    artifacts = tmp_path / "artifacts"
    assert main(["report", "--storage", url, "--out", str(tmp_path / "r"), "--artifacts", str(artifacts)]) == 0
    figures = {m.filename for m in optuna.artifacts.get_all_artifact_meta(companion)}
    assert figures == {"replicates.png"}
    assert optuna_dashboard.get_note(companion).startswith("_Written by `harness report` on ")
    capsys.readouterr()
    assert main(["studies", "--storage", url]) == 0
    listed = capsys.readouterr().out
    assert "smoke/confirm: " in listed and all(f"): cell={c}" in listed for c in ("rnn", "lstm", "gru"))


def build_replicates(url: str, values: dict[str, list[float]]) -> optuna.storages.BaseStorage:
    storage = open_storage(url)
    study = optuna.create_study(study_name="s" + SUFFIX, storage=storage)
    for cell, xs in values.items():
        for seed, x in enumerate(xs):
            attrs = {"config": {"cell": cell}, "replicate_of": 0, "rank": 0, "seed": seed,
                     "test_mse": x, "rollout_mse": 2 * x, "horizon": seed}  # fmt: skip
            study.add_trial(create_trial(value=x, user_attrs=attrs))
    return storage


def test_confidence_intervals_and_paired_tests_match_scipy(tmp_path: Path) -> None:
    rnn = [0.30, 0.25, 0.41, 0.38, 0.29, 0.33]
    lstm = [0.10, 0.12, 0.09, 0.20, 0.11, 0.15]
    storage = build_replicates(f"sqlite:///{tmp_path / 'h.db'}", {"rnn": rnn, "lstm": lstm})
    frame = replicate_frame(storage, ["s"])
    table = replicates.ci_table(frame).set_index("cell")
    x = np.log10(rnn)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    # MSE on a log scale: the geometric mean, and an interval on log10 values
    assert table.loc["rnn", "test_mse_gmean"] == pytest.approx(10 ** x.mean())
    assert table.loc["rnn", "test_mse_ci_low"] == pytest.approx(10**low)
    assert table.loc["rnn", "test_mse_ci_high"] == pytest.approx(10**high)
    assert table.loc["rnn", "rollout_mse_gmean"] == pytest.approx(2 * 10 ** x.mean()) and table.loc["rnn", "runs"] == 6
    assert table.loc["rnn", "ci_method"] == "t"
    assert table.loc["rnn", "horizon_mean"] == pytest.approx(2.5)  # horizons 0..5
    tests = replicates.paired_tests(frame).iloc[0]
    assert (tests["cell_a"], tests["cell_b"], tests["pairs"]) == ("lstm", "rnn", 6)
    assert tests["p_wilcoxon"] == pytest.approx(stats.wilcoxon(lstm, rnn).pvalue)
    assert tests["p_log_t"] == pytest.approx(stats.ttest_rel(np.log10(lstm), x).pvalue)
    assert tests["ratio"] == pytest.approx(10 ** (np.log10(lstm) - x).mean())
    assert tests["lower"] == "lstm" and tests["median_diff"] == pytest.approx(np.median(np.array(lstm) - np.array(rnn)))


def test_few_runs_get_a_wide_t_interval_not_their_range(tmp_path: Path) -> None:
    values = [0.1, 0.2, 0.4]
    storage = build_replicates(f"sqlite:///{tmp_path / 'h.db'}", {"gru": values})
    row = replicates.ci_table(replicate_frame(storage, ["s"])).iloc[0]
    logs = np.log10(values)
    low, high = stats.t.interval(0.95, 2, loc=logs.mean(), scale=stats.sem(logs))
    assert row["ci_method"] == "t" and row["test_mse_ci_low"] == pytest.approx(10**low)
    assert row["test_mse_ci_low"] < 0.1 and row["test_mse_ci_high"] > 0.4  # wider than the three values


def test_a_new_best_replaces_the_old_one_in_the_comparison(tmp_path: Path) -> None:
    storage = build_replicates(f"sqlite:///{tmp_path / 'h.db'}", {"rnn": [0.3, 0.3], "lstm": [0.1, 0.2]})
    study = optuna.load_study(study_name="s" + SUFFIX, storage=storage)
    for seed, x in enumerate([0.05, 0.06]):  # a later confirm replicates the lstm's new best, trial 9
        attrs = {"config": {"cell": "lstm"}, "replicate_of": 9, "rank": 0, "seed": seed, "test_mse": x,
                 "rollout_mse": x, "horizon": 1}  # fmt: skip
        study.add_trial(create_trial(value=x, user_attrs=attrs))
    frame = replicate_frame(storage, ["s"])
    best = replicates.best_config_only(frame)
    assert sorted(best[best["cell"] == "lstm"]["test_mse"]) == [0.05, 0.06]
    assert len(replicates.paired_tests(frame)) == 1  # one pair, two seeds each: no broadcasting error
    assert replicates.sweep_only(frame).empty  # one window per cell is no sweep


@pytest.mark.parametrize("horizons", [[0, 0, 0, 0, 0, 10], [150, 150, 150, 150, 110]])
def test_horizon_intervals_stay_in_the_possible_range(horizons: list[float]) -> None:
    h = np.array(horizons, dtype=float)
    low, high = stats.t.interval(0.95, len(h) - 1, loc=h.mean(), scale=stats.sem(h))
    assert low < 0 or high > 150  # Student's t alone would leave the range
    mean, low, high, _ = replicates.summary(h, "horizon", upper=150)
    assert mean == pytest.approx(h.mean()) and 0 <= low <= mean <= high <= 150


def test_mse_intervals_never_reach_zero() -> None:
    mse = np.array([1e-7, 3e-5, 2e-6, 8e-4, 5e-7])
    low, _ = stats.t.interval(0.95, len(mse) - 1, loc=mse.mean(), scale=stats.sem(mse))
    assert low < 0  # the arithmetic t-interval would
    centre, low, high, _ = replicates.summary(mse, "test_mse")
    assert 0 < low < centre < high and centre == pytest.approx(10 ** np.log10(mse).mean())
