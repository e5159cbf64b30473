"""Training: one run of one configuration (layer 2; may import `series`, `constraints` and
`errors`, never Optuna, `search`, `stats` or `report`).

`models` (the cells by name), `train` (`RunConfig`, `run`: the seed and window protocols),
`evaluate` (one-step, free-running and reference errors), `rollout_kernels` (a small model's
free-running rollout in one compiled loop), `device` (device choice, precision, denormals
flushed, peak memory), `fused` (the CPU recurrence of one model), `group` and `group_kernels`
(fused trials: many members as one batched model) and `reproduce` (the notebook's own runs).

Importing it changes nothing in the process: a run sets the torch flags it needs for its own
length and puts them back (`device.held_numerics`); its weights are drawn from a fork of
torch's generator, its minibatches from its own. Flushing denormals is the process's choice
(the command line makes it at start, `device.flush_denormals`).
"""
