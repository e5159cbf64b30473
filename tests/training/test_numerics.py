"""`training.precision` and `training.deterministic`: applied to torch for every run, and
recorded with every trial."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

from harness.cli import main
from harness.training.device import apply_numerics, numerics_tf32
from harness.training.train import RunConfig, run

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"


@pytest.fixture(autouse=True)
def restore_defaults() -> Iterator[None]:
    yield
    apply_numerics("fp32", True)


@pytest.mark.parametrize("precision,deterministic", [("tf32", False), ("fp32", True), ("tf32", True)])
def test_each_run_applies_its_settings(precision: str, deterministic: bool) -> None:
    # start from the opposite settings, so a run that set nothing would leave them wrong
    apply_numerics("fp32" if precision == "tf32" else "tf32", not deterministic)
    config = RunConfig(hidden_size=4, window=3, epochs=1, precision=precision, deterministic=deterministic)
    run(config, "cpu")
    assert numerics_tf32() == (precision == "tf32")
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.backends.cudnn.deterministic == deterministic and not torch.backends.cudnn.benchmark
    if deterministic:
        assert os.environ.get("CUBLAS_WORKSPACE_CONFIG")  # what deterministic cuBLAS needs


def test_precision_is_validated() -> None:
    with pytest.raises(Exception, match="precision"):
        RunConfig(precision="bf16")


def test_trials_record_their_numerics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["launch", str(SMOKE), "--storage", url, "--trials", "2", "--no-progress"]
    assert main([*argv, "--set", 'training.precision="tf32"', "--set", "training.deterministic=false"]) == 0
    study = optuna.load_study(study_name="smoke", storage=url)
    for trial in study.trials:
        config = trial.user_attrs["config"]
        assert config["precision"] == "tf32" and config["deterministic"] is False
        assert RunConfig.from_dict(config).precision == "tf32"  # a re-run uses the same settings
    assert study.user_attrs["spec"]["training"]["precision"] == "tf32"
