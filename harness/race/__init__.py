"""Race: which search method finds a good model soonest (layer 4; may import `search`, `stats`,
`training`, `series`, `constraints` and `errors`, never `report` or `cli`).

`race` (methods x repeats raced live through the launcher, each repeat on its own clock),
`record` (`harness record`: learning curves recorded once into `<name>/curves`), `curves`
(that study read as a table), `replay` (`harness race --simulate`: a race replayed from the
table on a simulated clock) and `read` (race studies and replays read back from a storage as
the histories `stats.race_stats` takes). It reads and writes its own studies only.
"""
