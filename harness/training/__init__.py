"""Training: one run of one configuration (layer 2; may import `series`, `constraints` and
`errors`, never Optuna, `search`, `stats` or `report`).

`models` (the cells by name), `train` (`RunConfig`, `run`: the seed and window protocols),
`evaluate` (one-step, free-running and reference errors), `rollout_kernels` (a small model's
free-running rollout in one compiled loop), `device` (device choice, precision, denormals
flushed, peak memory), `fused` (the CPU recurrence of one model), `loop` (one run's epochs:
curves, divergence, the best epoch, the slow-epoch guard, the caller's callback), `collection`
(a configuration on every series of a collection) with `members` and `group_kernels` (many
models as one batched module), `work` (a run's rough cost, for ordering) and `reproduce` (the
notebook's own runs).

Importing it changes nothing in the process: a run sets the torch flags it needs for its own
length and puts them back (`device.held_numerics`); its weights are drawn from a fork of
torch's generator, its minibatches from its own. Flushing denormals is the process's choice
(the command line makes it at start, `device.flush_denormals`).
"""
