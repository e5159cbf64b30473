"""`training.precision` and `training.deterministic`: applied to torch for every run, and
recorded with every trial."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

from harness.cli import main
from harness.training.device import apply_numerics, flushing_denormals, numerics_tf32
from harness.training.train import RunConfig, run

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"


@pytest.fixture(autouse=True)
def restore_defaults() -> Iterator[None]:
    yield
    apply_numerics("fp32", True)


@pytest.mark.parametrize("precision,deterministic", [("tf32", False), ("fp32", True), ("tf32", True)])
def test_each_run_applies_its_settings(precision: str, deterministic: bool) -> None:
    """Read while the run trains (its epoch callback); after it, the caller's own are back."""
    # start from the opposite settings, so a run that set nothing would leave them wrong
    apply_numerics("fp32" if precision == "tf32" else "tf32", not deterministic)
    torch.backends.cudnn.benchmark = True
    seen: list[tuple[bool, bool, bool, bool, str | None]] = []

    def read(epoch: int, metrics: dict[str, float]) -> None:
        seen.append((numerics_tf32(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                     torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG")))  # fmt: skip

    config = RunConfig(hidden_size=4, window=3, epochs=1, precision=precision, deterministic=deterministic)
    run(config, "cpu", read)
    tf32, det, cudnn_det, benchmark, workspace = seen[0]
    assert tf32 == (precision == "tf32") and det == deterministic and cudnn_det == deterministic and not benchmark
    if deterministic:
        assert workspace  # what deterministic cuBLAS needs
    assert numerics_tf32() == (precision != "tf32")
    assert torch.are_deterministic_algorithms_enabled() == (not deterministic)
    assert torch.backends.cudnn.benchmark


def test_precision_is_validated() -> None:
    with pytest.raises(Exception, match="precision"):
        RunConfig(precision="bf16")


@pytest.mark.slow
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


FLUSHED = """
import torch
{imports}
torch.set_num_threads(2)
# The smallest denormal float32 (bit pattern 1), made without float arithmetic, in a tensor
# both threads work on; its product with 1 read back as bits (a compare would flush too)
x = torch.ones(1 << 20, dtype=torch.int32).view(torch.float32)
assert torch.get_num_threads() == 2
print(int(((x * 1.0).view(torch.int32) != 0).sum()))
"""


@pytest.mark.slow
def test_denormals_are_flushed_in_every_thread() -> None:
    """A denormal times one is zero once flushed, in every torch thread (each thread keeps its
    own mode: set after the threads started, it reaches only the calling one, and about half
    the values would stay). Importing the library keeps every denormal."""
    import subprocess
    import sys

    def nonzero(imports: str) -> int:
        script = FLUSHED.format(imports=imports)
        return int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)

    assert nonzero("import harness.training  # changes nothing in the process") == 1 << 20
    # What the command line's processes (and the workers' fork server) run before any OpenMP thread starts
    assert nonzero("from harness.training.device import flush_denormals; flush_denormals()") == 0


def test_flushing_denormals_changes_no_number_of_a_saturating_trial() -> None:
    """The trial that meets denormals (an LSTM whose activations saturate) gives the same
    losses and validation curve with them flushed as with them kept, to every digit; a run
    leaves the caller's mode as it was either way."""
    config = RunConfig(cell="lstm", hidden_size=233, window=24, lr=0.0854, seed=0, epochs=2)
    try:
        torch.set_flush_denormal(True)
        flushed = run(config, "cpu")
        torch.set_flush_denormal(False)
        kept = run(config, "cpu")  # one thread (conftest): the mode reaches every thread there is
        assert not flushing_denormals()
    finally:
        torch.set_flush_denormal(True)
    assert flushed.losses == kept.losses and flushed.val_mse_by_epoch == kept.val_mse_by_epoch
    assert flushed.metrics == kept.metrics


@pytest.mark.slow
def test_a_workers_threads_bound_torch_and_the_blas_under_numbas_kernels() -> None:
    """`set_threads` reaches the OpenBLAS that numba's np.dot calls (scipy's, which numba loads
    only at its first product: set before any, it must still hold after one) as well as torch,
    and what it returns puts both back. In a fresh interpreter, where nothing has loaded it."""
    script = """
import torch
from threadpoolctl import threadpool_info
from harness.training import fused
from harness.training.device import set_threads

blas = lambda: sorted((p["filepath"], p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas")
restore = set_threads(1)
before = blas()
fused.compile_kernels()  # numba's first products
after = blas()
assert torch.get_num_threads() == 1 and after and all(n == 1 for _, n in after), after
restore()
assert torch.get_num_threads() == 2 and all(n == 2 for _, n in blas()), blas()
print(len(before), len(after))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
