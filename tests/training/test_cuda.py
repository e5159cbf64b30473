"""The CUDA path, run by the GPU check (`make gpu-check`, `pytest -m cuda`) where there is a
GPU; on a machine without one these are skipped with that reason."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from harness.cli import main
from harness.series.data import make_windows
from harness.series.signals import make_signal
from harness.training import fused
from harness.training.device import numerics_tf32
from harness.training.train import RunConfig, build_model, run

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run by make gpu-check)"),
]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_run_keeps_its_data_on_the_gpu_and_uses_cudnn(cell: str) -> None:
    config = RunConfig(cell=cell, hidden_size=16, window=8, epochs=2)
    data = make_windows(make_signal(config.signal), config.window, "cuda")
    assert data.x.is_cuda and data.y.is_cuda
    model = build_model(config, torch.device("cuda"))
    assert not fused.supports(model.rnn, data.x[:4].unsqueeze(-1))  # the CPU kernels never run here
    assert torch.backends.cudnn.enabled and torch.backends.cudnn.is_available()
    result = run(config, "cuda")
    assert result.device.startswith("cuda") and result.run_memory_bytes > 0 and result.process_peak_bytes > 0
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_precision_is_applied_on_the_gpu(precision: str) -> None:
    run(RunConfig(hidden_size=8, window=4, epochs=1, precision=precision), "cuda")
    assert numerics_tf32() == (precision == "tf32")
    torch.use_deterministic_algorithms(False)


def test_deterministic_runs_repeat_exactly_on_the_gpu() -> None:
    config = RunConfig(cell="lstm", hidden_size=32, window=16, epochs=3)
    assert run(config, "cuda").losses == run(config, "cuda").losses


def test_reproduce_and_launch_on_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--device", "cuda", "--cell", "rnn", "--epochs", "3"]) == 0
    assert "device cuda" in capsys.readouterr().out
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "3", "--device", "cuda", "--no-progress"]) == 0
    trials = optuna.load_study(study_name="smoke", storage=url).trials
    assert all(t.state.name == "COMPLETE" and t.user_attrs["device"].startswith("cuda") for t in trials)
    assert all(t.user_attrs["run_memory_bytes"] > 0 for t in trials)
