"""Regenerate tests/data/notebook_losses.json: the notebook's own per-step loop
(`tests/notebook_port.py`) on every run in `harness.reproduce.NOTEBOOK_RUNS`, with the
notebook's settings (hidden 30, lr 0.01, 33 epochs, seed 42), summed loss of every epoch.

    .venv/bin/python tests/regenerate_notebook_losses.py

About 6-12 s per run on this project's 2-core CPU (a minute in all), which is why the suite
compares the harness with this file instead of running the loop six times
(`tests/training/test_train.py`). One run of the loop is still compared live there, so the file
cannot drift from `notebook_port.py` unnoticed. Re-run this after changing
`notebook_port.py`, `NOTEBOOK_RUNS` or the signals, and commit the result.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # for notebook_port, as conftest.py does for the tests

from harness.series.signals import SignalConfig, make_signal  # noqa: E402
from harness.training.reproduce import NOTEBOOK_RUNS  # noqa: E402

from notebook_port import REFERENCE_PATH, notebook_losses  # noqa: E402

COMMAND = "python tests/regenerate_notebook_losses.py"
# The notebook's settings, written out here rather than taken from the harness, so that a
# change to the harness's defaults shows up as a failing comparison, not a new reference.
SETTINGS = {"hidden_size": 30, "lr": 0.01, "epochs": 33, "seed": 42}


def main() -> None:
    torch.set_num_threads(1)  # as the tests run (tests/conftest.py)
    runs = []
    for cell, signal, window in NOTEBOOK_RUNS:
        start = time.perf_counter()
        losses = notebook_losses(cell, make_signal(SignalConfig(signal)), window, **SETTINGS)
        print(f"{cell} {signal} W{window}: {time.perf_counter() - start:.1f} s, loss@32 {losses[-1]:.6g}")
        runs.append({"cell": cell, "signal": signal, "window": window, "summed_loss_by_epoch": losses})
    data = {
        "metadata": {
            "what": "summed training loss per epoch of the notebook's per-step loop (tests/notebook_port.py)",
            "command": COMMAND,
            "date": datetime.date.today().isoformat(),
            "torch_version": torch.__version__,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "settings": SETTINGS,
        },
        "runs": runs,
    }
    REFERENCE_PATH.parent.mkdir(exist_ok=True)
    REFERENCE_PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {REFERENCE_PATH}")


if __name__ == "__main__":
    main()
