"""`equal_cells`: one study per cell with an equal budget; the window sweep; one-study reports."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from harness.cli import main
from harness.report import tables
from harness.search.confirm import replicate_frame, replicate_seeds
from harness.search.spec import load_spec
from harness.search.storage import open_storage
from harness.search.study import COMPANION_SUFFIX, PER_CELL_ATTR

pytestmark = pytest.mark.slow  # every test launches and confirms real studies

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
GROUP = ["--set", "study.equal_cells=true", "--set", "training.epochs=1", "--no-progress"]


def finished(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=url)
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_each_cell_gets_an_equal_budget_and_its_own_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "7", *GROUP]) == 0
    out, err = capsys.readouterr()
    # said before it starts: the rounding, and why
    assert "smoke: 7 trials over 3 cells rounds up to 9 (3 per cell), so every cell gets the same search" in err
    for cell in ("rnn", "lstm", "gru"):
        name = f"smoke/{cell}"
        assert f"{name}: 3 finished" in out  # 7 trials over 3 cells: 3 each, rounded up
        trials = finished(url, name)
        assert len(trials) == 3 and all(t.user_attrs["config"]["cell"] == cell for t in trials)
        assert all("cell" not in t.params for t in trials)  # the cell is fixed, not searched
        study = optuna.load_study(study_name=name, storage=url)
        assert study.user_attrs[PER_CELL_ATTR]["name"] == "smoke" and study.user_attrs[PER_CELL_ATTR]["cell"] == cell
        assert study.user_attrs["spec"]["study"]["trials"] == 3
        assert study.metric_names == ["val_mse"]  # the dashboard labels the value
    (data,) = tables.load_studies(open_storage(url))
    assert data.name == "smoke" and data.budgets() == {"rnn": 3, "lstm": 3, "gru": 3}
    assert tables.comparison_table([data]).set_index("cell").loc["gru", "budget"] == 3
    # a resume to more trials tops every cell up equally and records the new target
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "12", *GROUP]) == 0
    assert "rounds up" not in capsys.readouterr().err  # 12 over 3 cells needs no rounding
    for cell in ("rnn", "lstm", "gru"):
        assert len(finished(url, f"smoke/{cell}")) == 4
        study = optuna.load_study(study_name=f"smoke/{cell}", storage=url)
        assert study.user_attrs["spec"]["study"]["trials"] == 4
    assert tables.load_studies(open_storage(url))[0].budgets() == {"rnn": 4, "lstm": 4, "gru": 4}


def test_window_sweep_shares_seeds_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "3", *GROUP]) == 0
    argv = ["confirm", "--storage", url, "--seeds", "2", "--windows", "3,9", "--device", "cpu"]
    assert main(argv) == 0
    assert "new runs" in capsys.readouterr().err
    runs = optuna.load_study(study_name="smoke" + COMPANION_SUFFIX, storage=url).get_trials(
        states=(TrialState.COMPLETE,)
    )
    seeds = replicate_seeds(load_spec(SMOKE), 2)
    by_cell: dict[str, dict[int, list[int]]] = {}
    for t in runs:
        config = t.user_attrs["config"]
        by_cell.setdefault(config["cell"], {}).setdefault(config["window"], []).append(t.user_attrs["seed"])
        assert t.user_attrs["seed"] == config["seed"]
    assert set(by_cell) == {"rnn", "lstm", "gru"}
    for cell, windows in by_cell.items():
        assert {3, 9} <= set(windows), cell  # the sweep's windows, besides the one the search found
        assert all(sorted(s) == sorted(seeds) for s in windows.values())  # the same seeds everywhere
    # a second confirm trains nothing again
    assert main(argv) == 0
    assert "smoke: 0 new runs" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="smoke" + COMPANION_SUFFIX, storage=url).trials) == len(runs)
    # the report draws the sweep and states the window finding without any library warning
    out = tmp_path / "r"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["report", "--storage", url, "--out", str(out)]) == 0
    assert [str(w.message) for w in caught] == []
    assert capsys.readouterr().err == ""
    md = (out / "report.md").read_text()
    assert md.index("## Findings") < md.index("## Studies") and "the LSTM, window " in md and " vs 3: " in md
    assert (out / "window-sweep.png").exists()
    sweep = pd.read_csv(out / "window_sweep.csv")
    assert sweep["window"].dtype.kind == "i" and sweep["runs"].dtype.kind == "i"  # integers stay integers


def test_one_confirm_sweeps_each_study_at_the_windows_its_search_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several searches in one confirm share its workers; each is swept at the windows its own
    space holds (the Nile's up to 20 in the main job, the sines' up to 64), and a window that
    no chosen study's space holds is refused before anything trains."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    one_cell = ["--trials", "2", "--set", 'search.cell=["rnn"]', *GROUP]
    assert main(["launch", str(SMOKE), "--storage", url, *one_cell]) == 0  # windows 2-16
    narrow = ["--set", "study.name=narrow", "--set", "search.window={low=2, high=4}"]
    assert main(["launch", str(SMOKE), "--storage", url, *one_cell, *narrow]) == 0
    capsys.readouterr()
    argv = ["confirm", "--storage", url, "--seeds", "2", "--device", "cpu", "--workers", "2"]
    assert main([*argv, "--windows", "32"]) == 2
    assert "--windows: window 32 is beyond every chosen study's windows (smoke up to 16, narrow up to 4)" in (
        capsys.readouterr().err
    )
    assert optuna.get_all_study_names(url) == ["smoke/rnn", "narrow/rnn"]  # nothing written
    assert main([*argv, "--windows", "3,9"]) == 0
    err = capsys.readouterr().err
    assert "narrow: no sweep at window 9: its search's windows go up to 4" in err
    assert "smoke:" in err and "narrow:" in err
    for name, swept in (("smoke", {3, 9}), ("narrow", {3})):
        runs = optuna.load_study(study_name=name + COMPANION_SUFFIX, storage=url).get_trials(
            states=(TrialState.COMPLETE,)
        )
        found = {t.user_attrs["found_window"] for t in runs}
        assert {t.user_attrs["config"]["window"] for t in runs} == swept | found, name
        assert len(runs) == 2 * len(swept | found)  # each window on both seeds, once
        assert all(t.user_attrs["replicate_of_study"] == f"{name}/rnn" for t in runs)
    # recorded as they finished, the largest first; read in one order (the findings list cells in it)
    frame = replicate_frame(open_storage(url), ["narrow", "smoke"])
    assert list(frame["study"].unique()) == ["narrow", "smoke"]
    assert frame[["window", "seed"]].equals(frame.sort_values(["study", "window", "seed"], key=lambda c: c.map(
        {"narrow": 0, "smoke": 1}) if c.name == "study" else c)[["window", "seed"]].reset_index(drop=True))  # fmt: skip


def test_a_one_study_report_leaves_the_full_report_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    for name in ("a", "b"):
        argv = ["launch", str(SMOKE), "--storage", url, "--trials", "1", "--set", f'study.name="{name}"']
        assert main([*argv, "--set", "training.epochs=1", "--no-progress"]) == 0
    assert main(["report", "--storage", url, "--device", "cpu"]) == 0
    full = tmp_path / "results" / "report" / "report.md"
    before = full.read_text()
    assert main(["report", "--storage", url, "--study", "b", "--device", "cpu"]) == 0
    assert "results/report/b/report.md" in capsys.readouterr().out
    assert full.read_text() == before and (tmp_path / "results" / "report" / "b" / "report.md").exists()
    assert sorted(p.name for p in (tmp_path / "results" / "report").glob("a-*.png"))  # a's figures are still there


def test_empty_tables_keep_their_header(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "1", "--no-progress"]) == 0
    out = tmp_path / "r"
    assert main(["report", "--storage", url, "--out", str(out)]) == 0
    for name in ("replicates", "paired_tests", "window_sweep"):
        frame = pd.read_csv(out / f"{name}.csv")
        assert frame.empty and "cell" in " ".join(frame.columns), name
