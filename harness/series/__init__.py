"""Series: where values come from and how they are cut (layer 1, just above `constraints`
and `errors`, which are all it may import).

`signals` makes the sines (registry, noise); `data` turns a series into windows and the
chronological train/validation/test splits, on the device, as one tensor. Pure numpy and
torch: never Optuna, never a model.
"""
