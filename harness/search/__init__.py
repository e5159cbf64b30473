"""Search: specs, studies and the drivers that fill them (layer 3; may import `training`,
`stats`, `series`, `constraints` and `errors`, never `race`, `report` or `cli`).

`spec` (study specs in TOML, validated), `samplers` (sampler and pruner registries), `study`
(what a trial samples and records), `trials` and `launch` (the trial loop, workers, the exact
budget), `storage` (URLs, SQLite tuning, the claim lock), `faults` (the storage failing
mid-study), `optuna_internals` (Optuna's private API behind one door), `weights` (trained
weights as artifacts), `exits` (one mapping from errors to exit statuses; SIGTERM as Ctrl-C),
`side_by_side` (several studies at once), `confirm` (replicates and the window sweep, and the
frame that reads them back) and `collection_replicates` (a collection's replicates read back
per series). The search race lives above, in `harness.race`.
"""
