"""The library leaves the caller's process as it found it: importing it changes no torch or
numpy setting, and `harness.run` puts back every flag it sets and draws from its own generators."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import torch

import harness
from harness.training.device import flushing_denormals


def _flags() -> dict[str, object]:
    backends = torch.backends
    return {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "fill": torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
        "cudnn_deterministic": backends.cudnn.deterministic,
        "cudnn_benchmark": backends.cudnn.benchmark,
        "fp32": [f.fp32_precision for f in (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn)],
        "flush": flushing_denormals(),
        "threads": torch.get_num_threads(),
    }


def test_importing_the_package_changes_no_torch_or_numpy_setting() -> None:
    """In a fresh interpreter, as a user's script starts: the flags and generator states read
    before `import harness; import harness.training` are the ones read after."""
    probe = """
import random, numpy as np, torch
from torch import backends
def state():
    tiny = torch.tensor([1e-20])
    return (torch.are_deterministic_algorithms_enabled(), backends.cudnn.deterministic, backends.cudnn.benchmark,
            backends.cuda.matmul.fp32_precision, bool((tiny * tiny).item() == 0.0), torch.get_num_threads(),
            torch.get_rng_state().sum().item(), str(np.random.get_state()[1][:4]), random.getstate()[1][:3],
            np.geterr()["over"])
before = state()
import harness, harness.training, harness.training.train, harness.search.study
after = state()
print(before == after, before, after)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.startswith("True"), out


def test_run_restores_flags_and_generators_and_its_numbers_do_not_depend_on_them() -> None:
    config = harness.RunConfig(cell="gru", hidden_size=6, window=4, epochs=2, seed=3)
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    torch.set_flush_denormal(False)
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(11)
    flags = _flags()
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    try:
        first = harness.run(config, "cpu")
        assert _flags() == flags
        assert torch.equal(torch.get_rng_state(), states[0])
        assert np.array_equal(np.random.get_state()[1], states[1])
        assert random.getstate() == states[2]
        # The caller's generators drawn from in between change nothing in the run.
        torch.rand(5)
        np.random.rand(5)
        random.random()
        second = harness.run(config, "cpu")
    finally:
        torch.backends.cudnn.benchmark = False
        torch.set_flush_denormal(True)  # the test process's (conftest)
    assert first.losses == second.losses
    assert first.metrics == second.metrics
    # And the run did train with the flags it needs, whatever the caller had.
    assert first.losses[-1] < first.losses[0]
