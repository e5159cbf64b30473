"""Statistics: tables in, numbers and sentences out (layer 2, beside `training`; may import
`series`, `constraints` and `errors`).

`replicates` (intervals and paired tests over the replicate runs and the window sweep),
`findings` (the notebook's questions answered in words from those tests) and `race_stats`
(a search race's anytime curves, time to target, ranking and verdict). They read frames and
Optuna trials handed to them; they never train and never run a study.
"""
