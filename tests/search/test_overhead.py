"""What `overhead_seconds` counts: the objective's time outside training, storage writes
of the trial's record included."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from harness.report.tables import rerun_device
from harness.search import study as study_module
from harness.search.launch import launch
from harness.search.spec import load_spec

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
SLOW_WRITE = 0.3


@pytest.mark.slow
def test_overhead_includes_the_record_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = study_module.record_trial

    def slow_record(*args: Any, **kwargs: Any) -> None:
        time.sleep(SLOW_WRITE)  # a slow database
        real(*args, **kwargs)

    monkeypatch.setattr(study_module, "record_trial", slow_record)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    launch(load_spec(SMOKE, ["study.pruner=none"]), url, trials=2, progress=False)
    for trial in optuna.load_study(study_name="smoke", storage=url).trials:
        assert trial.user_attrs["overhead_seconds"] >= SLOW_WRITE


def test_report_reruns_on_the_recorded_device_class() -> None:
    assert rerun_device("cpu") == "cpu"
    assert rerun_device("cpu", "cuda:0") == "cuda:0"  # an explicit --device wins
    # a GPU trial re-runs on a GPU where there is one, else on the CPU
    assert rerun_device("cuda:1") == ("cuda" if torch.cuda.is_available() else "cpu")
