"""Every benchmark scored on every series of a collection, computed once and kept.

`score` forecasts each series' test part h steps from the end of its training part with each
method of `harness.series.benchmarks` and scores it as the competitions do
(`harness.series.competition_metrics`): one row per series and method with sMAPE, MASE, MAPE
and OWA against that series' Naive2, the values ranks are computed from later. `summarise`
averages them per category and over the whole collection ("all", every series weighing the
same) and takes each OWA from those averages, as M4 does. `side_by_side` sets the averages
beside the published figures of `harness.series.published`.

`benchmark_table` keeps a category's table in a CSV under a folder the caller names,
`<collection>-<category>-<identity[:16]>-v<SCORES_VERSION>.csv`, keyed by the SHA-256 of the
selected series' ids and values (`collections.identity`): the same selection of the same data
is read back instead of being fitted again (M3 takes minutes), a changed copy of the data or
a new version of the benchmarks gets a file of its own. A file is written whole under a
temporary name and renamed into place, so a reader never sees half of one.

The metrics are importable from here too (`smape`, `mase`, `mape`, `owa`, defined in
`competition_metrics`), so a caller scoring its own forecasts needs one module.

With `workers` > 1 the series are fitted in that many processes (forked, so the workers
start with this process's imports); the table is the same, in the same order.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from harness.series import benchmarks, collections, published
from harness.series.collections import CollectionConfig, CompetitionSeries
from harness.series.competition_metrics import mape, mase, owa, smape

__all__ = ["COLUMNS", "SCORES_VERSION", "benchmark_table", "cache_path", "collection_table", "main", "mape", "markdown",
           "mase", "owa", "read_table", "score", "score_series", "side_by_side", "smape", "summarise"]  # fmt: skip
SCORES_VERSION = 1  # raise when a benchmark or metric changes, so no kept table is read as current
COLUMNS = ["collection", "category", "id", "method", "smape", "mase", "mape", "owa", "model"]
METRICS = ("smape", "mase", "mape")


def score_series(series: CompetitionSeries, methods: tuple[str, ...] = benchmarks.METHODS) -> list[dict[str, Any]]:
    """One row per method: the series' scores of that method's forecast of its test part."""
    simple = tuple(m for m in methods if m != "ets")
    wanted = simple if "naive2" in simple else (*simple, "naive2")  # every OWA needs Naive2
    forecasts = benchmarks.forecast_all(series.x, series.h, series.period, wanted)
    model = {name: "" for name in methods}
    if "ets" in methods:
        forecasts["ets"], model["ets"] = benchmarks.ets_auto(series.x, series.h, series.period)
    naive2 = forecasts["naive2"]
    base_smape, base_mase = smape(naive2, series.xx), mase(naive2, series.xx, series.x, series.period)
    rows = []
    for name in methods:
        f = forecasts[name]
        s, m = smape(f, series.xx), mase(f, series.xx, series.x, series.period)
        rows.append({"collection": series.collection, "category": series.category, "id": series.id, "method": name,
                     "smape": s, "mase": m, "mape": mape(f, series.xx),
                     "owa": float(owa(s, m, base_smape, base_mase)), "model": model[name]})  # fmt: skip
    return rows


def _score_chunk(args: tuple[list[CompetitionSeries], tuple[str, ...]]) -> list[dict[str, Any]]:
    chunk, methods = args
    return [row for s in chunk for row in score_series(s, methods)]


def score(
    series: list[CompetitionSeries], methods: tuple[str, ...] = benchmarks.METHODS, workers: int = 1
) -> pd.DataFrame:
    """The per-series table of `series` (in their order), fitted in `workers` processes."""
    if workers > 1 and len(series) > 1 and "fork" in multiprocessing.get_all_start_methods():
        size = max(1, min(16, len(series) // (4 * workers)))
        chunks = [(series[i : i + size], methods) for i in range(0, len(series), size)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            rows = [row for part in pool.map(_score_chunk, chunks) for row in part]
    else:
        rows = _score_chunk((series, methods))
    return pd.DataFrame(rows, columns=COLUMNS)


def cache_path(config: CollectionConfig, cache_dir: str | os.PathLike[str]) -> Path:
    """Where the table of `config`'s selection is kept under `cache_dir`."""
    identity = collections.identity(collections.load(config))
    return Path(cache_dir) / f"{config.collection}-{config.category}-{identity[:16]}-v{SCORES_VERSION}.csv"


def benchmark_table(
    config: CollectionConfig, cache_dir: str | os.PathLike[str], workers: int | None = None
) -> pd.DataFrame:
    """The per-series table of every benchmark on `config`'s series: read from `cache_dir` when
    it was kept there, else computed (in `workers` processes, default one per CPU) and kept."""
    path = cache_path(config, cache_dir)
    if path.exists():
        return read_table(path)
    table = score(collections.load(config), workers=workers or os.cpu_count() or 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(partial, index=False, float_format="%.17g")  # every float read back bit for bit
    os.replace(partial, path)
    return table


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"id": str, "model": str}, keep_default_na=False, na_values=[""])
    table["model"] = table["model"].fillna("")
    return table[COLUMNS]


def collection_table(collection: str, cache_dir: str | os.PathLike[str], workers: int | None = None) -> pd.DataFrame:
    """Every category of a collection (each kept as its own file), one table."""
    parts = [benchmark_table(CollectionConfig(collection, category), cache_dir, workers)
             for category in collections.COLLECTIONS[collection].categories]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean sMAPE, MASE and MAPE per (category, method), with "all" for every series of the
    table, and OWA from those means against Naive2's (M4's definition)."""
    groups = [table, table.assign(category="all")] if table["category"].nunique() > 1 else [table]
    both = pd.concat(groups, ignore_index=True)
    means = both.groupby(["category", "method"], sort=False)[list(METRICS)].mean()
    means.insert(0, "series", both.groupby(["category", "method"], sort=False)["id"].nunique())
    naive2 = means.xs("naive2", level="method")
    base = naive2.reindex(means.index.get_level_values("category"))
    means["owa"] = owa(means["smape"].to_numpy(), means["mase"].to_numpy(), base["smape"].to_numpy(),
                       base["mase"].to_numpy())  # fmt: skip
    return means


def side_by_side(summary: pd.DataFrame, collection: str) -> pd.DataFrame:
    """Each published or recomputed figure of `collection` with ours beside it: columns
    category, method, metric, kind ("published" or "recomputed"), figure, ours, difference
    (ours - figure), source; only the methods we compute."""
    figures = published.figures(collection)
    rows = []
    for f in figures.itertuples():
        key = (f.category, f.method)
        if key not in summary.index:
            continue
        ours = float(summary.loc[key, f.metric])
        rows.append({"category": f.category, "method": f.method, "metric": f.metric, "kind": f.kind,
                     "figure": f.value, "ours": ours, "difference": ours - f.value, "source": f.source})  # fmt: skip
    return pd.DataFrame(rows, columns=["category", "method", "metric", "kind", "figure", "ours", "difference",
                                       "source"])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.series.competition <collection> <cache folder>`: fit (or read back)
    every category, then print the averages and the published figures beside them."""
    import argparse
    import sys

    from harness.errors import ConfigError

    parser = argparse.ArgumentParser(prog="python -m harness.series.competition", description=main.__doc__)
    parser.add_argument("collection", help=f"one of {', '.join(collections.COLLECTIONS)}")
    parser.add_argument("cache", help="the folder the per-series tables are kept in")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    args = parser.parse_args(argv)
    try:
        CollectionConfig(args.collection)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    table = collection_table(args.collection, args.cache, args.workers)
    seconds = time.perf_counter() - start
    summary = summarise(table)
    print(f"{args.collection}: {table['id'].nunique()} series, {seconds:.1f} s (0 when every table was kept)\n")
    print(markdown(summary.reset_index()) + "\n")
    print(markdown(side_by_side(summary, args.collection)))
    return 0


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A table as Markdown, numbers rounded to `digits` (what docs/series.md shows)."""

    def cell(v: Any) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
