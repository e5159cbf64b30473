"""A collection's section of the report: each cell's best configuration against the
competition's benchmarks on the same series, the published figures beside them, ranks across
the series with a critical-difference diagram, and the verdicts in words.

The cells' numbers are the test scores their best trial (lowest mean validation sMAPE) kept
per series; the benchmarks' are fitted on the same training parts (`series.competition`,
computed once and kept under the cache folder the caller names). One search and one training
seed per cell: the section says so beside its verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scikit_posthocs  # noqa: E402

from harness.report.markdown import markdown_table, md_escape, slug  # noqa: E402
from harness.report.tables import StudyData  # noqa: E402
from harness.series import competition, published  # noqa: E402
from harness.series.collections import COLLECTIONS  # noqa: E402
from harness.stats import ranks  # noqa: E402

# The competitions' benchmarks read against, as the verdicts name them; the others rank too.
REFERENCES = ("theta", "ets", "naive2")
SHOWN = ("naive", "snaive", "naive2", "ses", "holt", "damped", "theta", "ets")


@dataclass(frozen=True)
class CollectionData:
    """One collection search's per-series test scores: cells' best trials and benchmarks."""

    search: StudyData
    smape: pd.DataFrame  # series id x method (cells by name, benchmarks by theirs)
    mase: pd.DataFrame
    chosen: dict[str, dict[str, Any]]  # cell -> its best trial's params (scope, hidden_size, ...) and number
    horizon: int  # test values per series


def collection_data(search: StudyData, cache_dir: Path) -> CollectionData | None:
    """The scores of `search` (a collection spec's), or None before any trial is complete."""
    assert search.spec.collection is not None
    done = search.trials[search.trials["state"] == "COMPLETE"]
    if done.empty:
        return None
    bench = competition.benchmark_table(search.spec.collection, cache_dir)
    smape = bench.pivot(index="id", columns="method", values="smape")
    mase = bench.pivot(index="id", columns="method", values="mase")
    chosen: dict[str, dict[str, Any]] = {}
    for cell, trials in done.groupby("cell", sort=False):
        best = trials.loc[trials["value"].idxmin()]
        trial = search.trial(best["study"], int(best["number"]))
        per_series = trial.user_attrs["per_series"]
        ids = per_series["id"]
        smape[cell] = pd.Series(per_series["test_smape"], index=ids)
        mase[cell] = pd.Series(per_series["test_mase"], index=ids, dtype=float)
        # the scope the trial trained with, searched or fixed
        chosen[str(cell)] = {"trial": trial.number, "scope": trial.user_attrs["config"]["scope"], **trial.params}
    config = search.spec.collection
    return CollectionData(
        search, smape, mase, chosen, COLLECTIONS[config.collection].categories[config.category].horizon
    )


def methods_of(data: CollectionData) -> list[str]:
    """The cells, then the benchmarks shown beside them."""
    return [*data.chosen, *[m for m in SHOWN if m in data.smape.columns]]


def summary_table(data: CollectionData, ranked: ranks.Ranks) -> pd.DataFrame:
    """Mean test sMAPE and MASE per method, OWA against Naive2, average rank (sMAPE), and the
    published or recomputed sMAPE where the literature has one for this category."""
    config = data.search.spec.collection
    assert config is not None
    methods = methods_of(data)
    naive2 = (data.smape["naive2"].mean(), data.mase["naive2"].mean())
    figures = published.figures(config.collection)
    figures = figures[(figures["category"] == config.category) & (figures["metric"] == "smape")]
    rows = []
    for method in methods:
        s, m = float(data.smape[method].mean()), float(np.nanmean(data.mase[method]))
        cell = data.chosen.get(method)
        literature = figures[figures["method"] == method]
        rows.append({
            "method": method,
            "kind": "cell" if cell else "benchmark",
            "scope": cell["scope"] if cell else "",
            "test_smape": s,
            "test_mase": m,
            "owa": float(competition.owa(s, m, *naive2)),
            "avg_rank": float(ranked.average[method]),
            "literature_smape": float(literature["value"].iloc[0]) if len(literature) else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows).sort_values("avg_rank", ignore_index=True)


def verdicts(data: CollectionData) -> list[str]:
    """Each cell against Theta, ETS and Naive2 in words, one line a cell: the ratio of its mean
    test sMAPE to the reference's, and the Wilcoxon signed-rank test over the series,
    Holm-adjusted over every comparison made here."""
    pairs = [(cell, ref) for cell in data.chosen for ref in REFERENCES if ref in data.smape.columns]
    found = [ranks.versus(data.smape, cell, ref) for cell, ref in pairs]
    adjusted = ranks.holm([v.p for v in found])
    by_cell: dict[str, list[str]] = {}
    for v, p in zip(found, adjusted, strict=True):
        word = ("beats it" if v.ratio < 1 else "worse") if p < ranks.ALPHA else "cannot be told apart"
        by_cell.setdefault(v.method, []).append(f"{v.ratio:.3g}x {v.reference}'s ({word}, p = {p:.2g}, "
                                                f"better on {v.wins}/{v.series})")  # fmt: skip
    lines = [f"- **{cell}** ({data.chosen[cell]['scope']}): mean test sMAPE " + "; ".join(parts)
             for cell, parts in by_cell.items()]  # fmt: skip
    return [*lines, f"(Wilcoxon signed-rank test over the series, Holm-adjusted over {len(found)} comparisons.)"]


def plot_critical_difference(ranked: ranks.Ranks, title: str, path: Path) -> Path:
    """Average ranks on an axis, methods joined where the pairwise tests cannot tell them apart."""
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.25 * len(ranked.average)), layout="constrained")
    try:
        scikit_posthocs.critical_difference_diagram(ranked.average, ranked.pairwise_p, ax=ax, alpha=ranks.ALPHA)
        ax.set_title(title, fontsize=10)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def findings_lines(data: CollectionData, table: pd.DataFrame, diagram: str) -> list[str]:
    """The collection's verdicts as the findings say them: the best cell's test sMAPE beside the
    references' (and the literature's figure in brackets), then each comparison in words."""
    config = data.search.spec.collection
    assert config is not None
    rows = table.set_index("method")
    cells = rows[rows["kind"] == "cell"].sort_values("test_smape")
    best = cells.index[0]

    def shown(method: str) -> str:
        row = rows.loc[method]
        literature = "" if np.isnan(row["literature_smape"]) else f" (literature {row['literature_smape']:.4g})"
        return f"{method} {row['test_smape']:.4g}{literature}"

    references = ", ".join(shown(m) for m in REFERENCES if m in rows.index)
    head = (f"**{config.label}** ({len(data.smape)} series): best cell {best} ({cells.loc[best, 'scope']}), "
            f"mean test sMAPE {cells.loc[best, 'test_smape']:.4g} (OWA {cells.loc[best, 'owa']:.3g}); {references}; "
            f"ranks: {diagram}.")  # fmt: skip
    return [head, "", *verdicts(data)]


def collection_section(searches: list[StudyData], out: Path, cache_dir: Path) -> tuple[list[str], list[str]]:
    """The report's lines for every collection search, and their findings; writes the CSV
    tables and diagrams."""
    lines: list[str] = []
    found: list[str] = []
    for search in searches:
        data = collection_data(search, cache_dir)
        config = search.spec.collection
        assert config is not None
        lines += ["", f"## {md_escape(search.name)}: {config.label}", ""]
        if data is None:
            lines += ["No complete trial yet.", ""]
            continue
        stem = slug(search.name)
        methods = methods_of(data)
        ranked = ranks.ranks(data.smape[methods])  # once: the table's ranks and the diagram's
        table = summary_table(data, ranked)
        table.to_csv(out / f"{stem}-collection.csv", index=False)
        diagram = plot_critical_difference(
            ranked, f"{config.label}: average rank of test sMAPE over {ranked.series} series", out / f"{stem}-cd.png"
        )
        chosen = "; ".join(f"{cell}: trial {c['trial']}, " + ", ".join(f"{k}={_fmt(v)}" for k, v in c.items()
                                                                         if k != "trial")
                           for cell, c in data.chosen.items())  # fmt: skip
        lines += [
            f"{ranked.series} series, each forecast {data.horizon} steps ahead from the "
            "end of its training part. Cells: the best trial of each (lowest mean validation sMAPE on the last "
            f"values of the training parts), one training seed; {chosen}. Benchmarks: the competition's, fitted "
            "on the same training parts (docs/series.md). `owa`: M4's, against Naive2 (below 1 beats it); "
            "`literature_smape`: the published or recomputed figure for this category (docs/series.md).",
            "",
            markdown_table(table),
            "",
            f"Friedman's test over the {len(methods)} methods: p = {ranked.friedman_p:.2g}. "
            "Methods joined by a bar cannot be told apart (Wilcoxon signed-rank, Holm-adjusted, 5%):",
            "",
            f"![critical difference]({diagram.name})",
            "",
            *verdicts(data),
            "",
            CAVEAT,
            "",
        ]
        found += [*findings_lines(data, table, f"[{diagram.name}]({diagram.name})"), "", CAVEAT, ""]
    return lines, found


CAVEAT = "_One search and one training seed per cell: how far the verdicts depend on them is not measured._"


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
