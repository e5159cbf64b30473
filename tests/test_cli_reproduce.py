from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from harness.cli import main

# A GPU index this machine does not have, whatever it has: one past the last.
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"


def test_reproduce_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["reproduce", "--cell", "rnn", "--signal", "short-period", "--epochs", "2", "--json", "--device", "cpu"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    for key in (
        "cell",
        "signal",
        "window",
        "epochs",
        "seed",
        "device",
        "summed_loss_by_epoch",
        "eval_mse_zero_state",
        "eval_mse_stateful",
        "train_seconds",
    ):
        assert key in row
    assert row["cell"] == "rnn" and row["window"] == 5 and row["device"] == "cpu"
    assert row["summed_loss_by_epoch"][0] == pytest.approx(650.13, rel=1e-4) and len(row["summed_loss_by_epoch"]) == 2


def test_reproduce_table_lists_every_notebook_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--epochs", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "loss@0" in out and "eval_zero_state" in out and "eval_stateful" in out
    assert out.count("short-period") == 3 and out.count("long-period") == 3


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--cell", "transformer"], "--cell"),
        (["--signal", "square"], "--signal"),
        (["--window", "0"], "--window"),
        (["--window", "1000"], "--window"),
        (["--hidden-size", "0"], "--hidden-size"),
        (["--lr", "0"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--epochs", "0"], "--epochs"),
        (["--device", MISSING_GPU], "--device"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and captured.out == ""


@pytest.mark.slow
def test_bad_input_through_the_real_entry_point_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "reproduce", "--lr", "0"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "harness reproduce: --lr: must be a finite number > 0, got 0.0"
