"""Report: tables, figure data and figures from a storage (layer 5; may import every layer
but `cli`). It reads studies and stored weights and never trains, except a pre-weights study
re-run when asked.

`tables` (the study frames, comparison tables and the records each figure is drawn from),
`figure_data` (those records' types), `figures` and `race_figure` (drawing only),
`collection` (a collection's section: cells against the benchmarks, ranks, the diagram, the
verdicts), `markdown` (tables as markdown), `write` (report.md, its CSVs and PNGs, the
dashboard notes and artifacts) and `results_page` (docs/results.md from the benchmarks' JSON).
"""
