"""Imported for its effect: the process that imports it pays the one-time costs of training
(`train.warm_up`) on one thread.

The fork server that worker and study processes are forked from (`search.launch.
worker_context`) preloads it, so each fork starts warm: the fused kernels compiled once (on
a fresh clone numba took 14 s, which the main job's first two studies each paid at once), and
no process's first trial pays torch's first-call imports or oneDNN's first LSTM in its clock.
One thread, so that no OpenMP thread team exists to be forked (a fork keeps only the calling
thread); each fork then sets its own threads.
"""

from __future__ import annotations

import torch

from harness.training.train import warm_up

torch.set_num_threads(1)
warm_up()
