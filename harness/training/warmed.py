"""Imported for its effect: the fork server that worker and study processes are forked from
(`search.launch.worker_context`) preloads it, so that each fork starts with the one-time costs
of training paid: torch's first-call imports (`FIRST_CALL_IMPORTS`), the fused kernels compiled
(seconds of numba on a fresh clone, which each study would otherwise pay at once) and oneDNN's
first LSTM; and denormals flushed, as the command line's own process flushes them.

Nothing here runs a backward pass: where torch sees a GPU, autograd starts a thread per device
on its first backward and refuses to run in any process forked after that. And one thread
while it warms, so that no OpenMP thread team exists to be forked (a fork keeps only the
calling thread); the forks then start with torch's default threads, and set their own.
"""

from __future__ import annotations

import importlib

import torch

from harness.training import fused, rollout_kernels
from harness.training.device import FIRST_CALL_IMPORTS, flush_denormals

flush_denormals()  # a process of the command line's: every fork and every thread it starts copies the mode
_threads = torch.get_num_threads()
torch.set_num_threads(1)
importlib.import_module(FIRST_CALL_IMPORTS)
fused.compile_kernels()
rollout_kernels.compile_kernels()
with torch.no_grad():
    torch.nn.LSTM(1, 4, batch_first=True)(torch.zeros(2, 3, 1))  # oneDNN's first LSTM, forward only
torch.set_num_threads(_threads)
