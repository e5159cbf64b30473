from __future__ import annotations

import sys
from pathlib import Path

import torch

# Tests are small; one thread keeps them deterministic in speed and leaves the other core
# to parallel tests and worker subprocesses.
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # for notebook_port

CELLS = ("rnn", "lstm", "gru")
