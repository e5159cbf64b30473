"""Statistics: tables in, numbers and sentences out (layer 2, beside `training`; may import
`series`, `constraints` and `errors`).

`replicates` (intervals and paired tests over the replicate runs and the window sweep),
`findings` (the notebook's questions answered in words from those tests), `ranks` (methods
across a collection's series: average ranks, Friedman, Holm-adjusted Wilcoxon, verdicts),
`significance` (the one threshold, and when a p-value is fragile), `race_stats` (a
search race's anytime curves, time to target, ranking and verdict, from the histories
`harness.race.read` hands it) and `faithfulness` (a replayed race against its live race).
They read frames and values handed to them; they never train, run a study or open a storage.
"""
