"""A real series may be searched on validation MASE (scale-free, in its own units): each
epoch reports it to the pruner, the trial's value is it; a sine may not (it has no units)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from harness.cli import main

ROOT = Path(__file__).parents[2]
FAST = ["--set", "training.epochs=3", "--set", 'search.cell=["gru"]', "--no-progress"]


def test_a_real_series_searched_on_validation_mase(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["launch", str(ROOT / "studies" / "nile.toml"), "--storage", url, "--trials", "2", *FAST]
    assert main([*argv, "--set", 'study.objectives=["val_mase"]']) == 0
    study = optuna.load_study(study_name="nile/gru", storage=url)
    assert study.metric_names == ["val_mase"]
    for trial in study.trials:
        assert trial.value == pytest.approx(trial.user_attrs["val_mase"])
        assert len(trial.intermediate_values) == 3  # each epoch's validation MASE, for the pruner
        # its value is the MASE of the epoch it kept (the best validation MSE): one of those reported
        assert any(trial.value == pytest.approx(v, rel=1e-9) for v in trial.intermediate_values.values())


def test_a_sine_cannot_be_searched_on_mase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["launch", str(ROOT / "studies" / "smoke.toml"), "--storage", url, "--set", 'study.objectives=["val_mase"]']
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "study.objectives" in line and "val_mse" in line
    assert not (tmp_path / "h.db").exists()
