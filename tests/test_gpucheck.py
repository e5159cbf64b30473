"""The GPU check's rehearsal on the CPU: the same code, so it cannot rot between GPU runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness import gpucheck


@pytest.mark.slow
def test_the_gpu_check_runs_on_the_cpu_and_writes_its_files(tmp_path: Path) -> None:
    assert gpucheck.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["environment"]["device"] == "cpu" and report["quick"] is True
    (numerics,) = report["numerics"]
    assert numerics["epochs"] == 33 and numerics["max_relative_difference"] == 0.0  # CPU against itself
    (solo,) = report["solo"]
    assert solo["device_train_seconds"] > 0 and solo["cpu_train_seconds"] > 0
    assert [(r["workers"], r["trials"]) for r in report["workers"]] == [(1, 2), (2, 4)]
    assert all(r["trials_per_minute"] > 0 and r["failed"] == 0 for r in report["workers"])
    (local,) = report["collection"]  # the group and the same models one by one, on the same series
    assert (local["series"], local["plain_series"]) == (48, 3)
    assert local["max_relative_forecast_difference"] < 1e-3  # float32: the same forecasts either way
    summary = (tmp_path / "gpu-check.md").read_text()
    assert "local trial, M3 monthly" in summary
    assert "trials per minute" in summary and "max relative difference" in summary


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: `make gpu-check` runs the real check")
def test_a_missing_gpu_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpucheck.main(["--device", "cuda", "--out", str(tmp_path / "x")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()  # one line: no traceback, no measurement started
    assert line.startswith("harness.gpucheck: --device: ") and "cuda" in line and "cpu" in line, line
    assert not (tmp_path / "x").exists()  # nothing written
