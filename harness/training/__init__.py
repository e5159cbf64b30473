"""Training: one run of one configuration (layer 2; may import `series`, `constraints` and
`errors`, never Optuna, `search`, `stats` or `report`).

`models` (the cells by name), `train` (`RunConfig`, `run`: the seed and window protocols),
`evaluate` (one-step, free-running and reference errors), `rollout_kernels` (a small model's
free-running rollout in one compiled loop), `device` (device choice, precision, denormals
flushed, peak memory), `fused` (the CPU recurrence of one model), `group` and `group_kernels`
(fused trials: many members as one batched model) and `reproduce` (the notebook's own runs).
"""

from harness.training.device import flush_denormals

flush_denormals()  # before torch starts its OpenMP threads, which copy the mode they start with
