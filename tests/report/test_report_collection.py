"""A collection's study end to end, as a user runs it: `harness launch` a tiny sample of M3's
"other" series, `harness report`, and the report's collection section: the cells beside the
benchmarks and the literature's figure, the diagram, the verdicts; the benchmarks kept."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pandas as pd
import pytest

from harness.cli import main

ROOT = Path(__file__).parents[2]
SPEC = ROOT / "studies" / "m3_other.toml"
TINY = ["--set", "collection.sample=6", "--set", "training.epochs=2", "--set", 'search.cell=["gru", "lstm-fb1"]',
        "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('collection') / 'h.db'}"
    assert main(["launch", str(SPEC), "--storage", url, "--trials", "4", *TINY]) == 0
    return url


def test_each_trial_records_its_series_scores_and_the_objective(launched: str) -> None:
    study = optuna.load_study(study_name="m3-other/gru", storage=launched)
    assert study.metric_names == ["val_smape"]
    for trial in study.trials:
        attrs = trial.user_attrs
        assert len(attrs["per_series"]["id"]) == 6 and len(attrs["per_series"]["test_smape"]) == 6
        assert trial.value == pytest.approx(sum(attrs["per_series"]["val_smape"]) / 6)
        assert attrs["series"]["name"] == "m3 other" and len(attrs["series"]["sha256"]) == 64
        assert attrs["config"]["collection"]["sample"] == 6 and attrs["config"]["scope"] in ("local", "global")


def test_the_report_sets_the_cells_beside_the_benchmarks(launched: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert main(["report", "--storage", launched, "--out", str(tmp_path / "r"), "--cache", str(cache)]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "## m3-other: m3 other" in text and "![critical difference](m3-other-cd.png)" in text
    assert (tmp_path / "r" / "m3-other-cd.png").stat().st_size > 0
    table = pd.read_csv(tmp_path / "r" / "m3-other-collection.csv")
    assert {"gru", "lstm-fb1", "theta", "ets", "naive2"} <= set(table["method"])
    assert table.loc[table["method"] == "naive2", "owa"].item() == pytest.approx(1.0)
    lines = [row for row in text.splitlines() if row.startswith("- **gru** (")]  # in the findings and the section
    assert len(lines) == 2 and lines[0] == lines[1]
    line = lines[0]  # the GRU's verdicts, one line
    assert all(f"x {reference}'s (" in line for reference in ("theta", "ets", "naive2")), line
    kept = list(cache.glob("m3-other-*.csv"))
    assert len(kept) == 1  # computed once, kept: a second report reads it back
    before = kept[0].stat().st_mtime_ns
    assert main(["report", "--storage", launched, "--out", str(tmp_path / "r2"), "--cache", str(cache)]) == 0
    assert kept[0].stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "override,key",
    [
        ('search.scope=["regional"]', "search.scope"),
        ('search.cell=["transformer"]', "search.cell"),
        ("collection.category=hourly", "collection.category"),
        ("collection.sample=9999", "collection.sample"),
    ],
)
def test_a_bad_scope_cell_or_category_is_one_line_exit_2(
    override: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SPEC), "--storage", url, "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0], err
    assert not (tmp_path / "h.db").exists()  # nothing written


def test_confirm_re_trains_each_cells_best_and_the_verdicts_count_seeds_and_searches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    small = ["--set", "collection.sample=5", "--set", "training.epochs=1", "--set", 'search.cell=["gru", "rnn"]',
             "--no-progress"]  # fmt: skip
    assert main(["launch", str(SPEC), "--storage", url, "--trials", "2", *small]) == 0
    repeat = ["--set", "study.sampler_seed=1", "--set", "study.name=m3-other-s1"]
    assert main(["launch", str(SPEC), "--storage", url, "--trials", "2", *small, *repeat]) == 0
    capsys.readouterr()
    assert main(["confirm", "--storage", url, "--seeds", "2", "--top", "2", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "m3-other: 4 new runs" in out.err and "m3-other-s1: 4 new runs" in out.err  # 2 cells x 2 seeds, rank 0 only
    summary = out.out.split("m3-other\n")[1].split("\n\n")[0].splitlines()
    assert summary[0].split()[:3] == ["cell", "runs", "test_smape"] and [r.split()[:2] for r in summary[1:]] == [
        ["gru", "2"], ["rnn", "2"]]  # fmt: skip
    runs = optuna.load_study(study_name="m3-other/confirm", storage=url).trials
    best = optuna.load_study(study_name="m3-other/gru", storage=url).best_trial
    mine = [t for t in runs if t.user_attrs["config"]["cell"] == "gru"]
    assert len({t.user_attrs["seed"] for t in mine}) == 2
    for run in mine:  # the best trial's configuration, another seed, every series scored
        assert run.user_attrs["replicate_of"] == best.number and run.params == best.params | {"cell": "gru"}
        config = dict(run.user_attrs["config"], seed=best.user_attrs["config"]["seed"])
        assert config == best.user_attrs["config"] and len(run.user_attrs["per_series"]["test_smape"]) == 5
        assert run.value == pytest.approx(sum(run.user_attrs["per_series"]["val_smape"]) / 5)
    assert main(["confirm", "--storage", url, "--seeds", "2", "--no-progress"]) == 0
    assert "m3-other: 0 new runs" in capsys.readouterr().err  # found, not trained again
    assert main(["confirm", "--storage", url, "--windows", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--windows" in err[0] and "collections only" in err[0]

    out_dir = tmp_path / "r"
    assert main(["report", "--storage", url, "--out", str(out_dir), "--cache", str(tmp_path / "c")]) == 0
    table = pd.read_csv(out_dir / "m3-other-collection.csv").set_index("method")
    seed_mean = [sum(t.user_attrs["per_series"]["test_smape"][i] for t in mine) / 2 for i in range(5)]
    assert table.loc["gru", "test_smape"] == pytest.approx(sum(seed_mean) / 5)  # each series' mean over the seeds
    found = (out_dir / "collection-findings.md").read_text()
    verdict = next(line for line in found.splitlines() if line.startswith("- **gru** ("))
    assert re.findall(r"the same on (\d)/(\d) seeds alone", verdict) and all(
        int(k) <= int(n) == 2 for k, n in re.findall(r"the same on (\d)/(\d) seeds alone", verdict))  # fmt: skip
    assert verdict.count(" seeds alone") == 3  # theta, ets, naive2
    assert "over the series of the mean over 2 seeds" in found
    assert "**Searched 2 times** with other sampler seeds (m3-other (seed 0), m3-other-s1 (seed 1))" in found
    assert found.count("- **gru** (") == 1  # the findings speak for the first search; the report has both
    report = (out_dir / "report.md").read_text()
    assert report.count("- **gru** (") == 3
    # the repeats' line closes their group: after the second search's section
    assert report.index("## m3-other-s1: ") < report.rindex("**Searched 2 times**")
