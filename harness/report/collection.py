"""A collection's section of the report: each cell's best configuration against the
competition's benchmarks on the same series, the published figures beside them, ranks across
the series with a critical-difference diagram, and the verdicts in words.

The cells' numbers are the test scores their best trial (lowest mean validation sMAPE) kept
per series, or, once `harness confirm` has re-trained that configuration on several seeds, each
series' mean over those seeds; the benchmarks' are fitted on the same training parts
(`series.competition`, computed once and kept under the cache folder the caller names). Each
verdict says how many of the seeds alone give the same verdict, and a p-value near the
threshold is marked fragile. Searches of one spec that differ only in their sampler seed
(`--set study.sampler_seed=N --set study.name=...`) are read as repeats of one search: the
findings say how often they agree on the best cell and on each verdict.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import scikit_posthocs  # noqa: E402

from harness.report.markdown import markdown_table, md_escape, slug  # noqa: E402
from harness.report.tables import StudyData  # noqa: E402
from harness.search.collection_replicates import SCORES, best_runs, replicate_scores, seed_means  # noqa: E402
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
    by_seed: dict[int, pd.DataFrame]  # replicate seed -> its sMAPE table (every cell re-trained on it)

    @property
    def seeds(self) -> int:
        """Training seeds behind each cell's scores: 1 before `harness confirm`."""
        return max(len(self.by_seed), 1)

    @cached_property
    def ranked(self) -> ranks.Ranks:
        """Ranks over the series of the cells and benchmarks shown: the table's and the diagram's."""
        return ranks.ranks(self.smape[methods_of(self)])

    @cached_property
    def table(self) -> pd.DataFrame:
        return summary_table(self, self.ranked)


def collection_data(search: StudyData, cache_dir: Path, storage: optuna.storages.BaseStorage) -> CollectionData | None:
    """The scores of `search` (a collection spec's), or None before any trial is complete."""
    assert search.spec.collection is not None
    done = search.trials[search.trials["state"] == "COMPLETE"]
    if done.empty:
        return None
    bench = competition.benchmark_table(search.spec.collection, cache_dir)
    smape = bench.pivot(index="id", columns="method", values="smape")
    mase = bench.pivot(index="id", columns="method", values="mase")
    chosen: dict[str, dict[str, Any]] = {}
    found: dict[str, pd.DataFrame] = {}  # cell -> its best trial's own scores, per series
    keys: dict[str, tuple[str, int]] = {}  # cell -> its best trial: study and number
    for cell, trials in done.groupby("cell", sort=False):
        best = trials.loc[trials["value"].idxmin()]
        trial = search.trial(best["study"], int(best["number"]))
        per_series = trial.user_attrs["per_series"]
        found[str(cell)] = pd.DataFrame({k: per_series[k] for k in SCORES}, index=per_series["id"])
        keys[str(cell)] = (str(best["study"]), trial.number)
        # the scope the trial trained with, searched or fixed
        chosen[str(cell)] = {"trial": trial.number, "scope": trial.user_attrs["config"]["scope"], **trial.params}
    runs = best_runs(replicate_scores(storage, search.name), keys)
    # Replicates stand for the search's own run once every cell has them, over the seeds all share
    seeds = sorted(set.intersection(*(set(run["seed"]) for run in runs.values()))) if len(runs) == len(found) else []
    by_seed: dict[int, pd.DataFrame] = {}
    for cell, own in found.items():
        scores = seed_means(runs[cell], seeds) if seeds else own
        smape[cell], mase[cell] = scores["test_smape"], scores["test_mase"].astype(float)
    for seed in seeds:
        by_seed[seed] = smape.drop(columns=list(found)).assign(
            **{cell: run[run["seed"] == seed].set_index("id")["test_smape"] for cell, run in runs.items()}
        )
    config = search.spec.collection
    horizon = COLLECTIONS[config.collection].categories[config.category].horizon
    return CollectionData(search, smape, mase, chosen, horizon, by_seed)


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


def _pairs(data: CollectionData, smape: pd.DataFrame) -> list[tuple[str, str]]:
    return [(cell, ref) for cell in data.chosen for ref in REFERENCES if ref in smape.columns]


def verdicts(data: CollectionData) -> list[str]:
    """Each cell against Theta, ETS and Naive2 in words, one line a cell: the ratio of its mean
    test sMAPE to the reference's, and the Wilcoxon signed-rank test over the series,
    Holm-adjusted over every comparison made here; with replicates, on how many seeds alone the
    verdict is the same; a p-value near the threshold marked fragile."""
    pairs = _pairs(data, data.smape)
    found = ranks.verdicts(data.smape, pairs)
    per_seed = [ranks.verdicts(table, pairs) for table in data.by_seed.values()]
    by_cell: dict[str, list[str]] = {}
    for i, v in enumerate(found):
        notes = [f"better on {v.versus.wins}/{v.versus.series}"]
        if per_seed:
            notes.append(f"the same on {sum(seed[i].word == v.word for seed in per_seed)}/{len(per_seed)} seeds alone")
        if v.fragile:
            notes.append(f"fragile: near the {ranks.ALPHA:.0%} threshold")
        by_cell.setdefault(v.versus.method, []).append(f"{v.versus.ratio:.3g}x {v.versus.reference}'s ({v.word}, "
                                                       f"p = {v.p:.2g}, {', '.join(notes)})")  # fmt: skip
    lines = [f"- **{cell}** ({data.chosen[cell]['scope']}): mean test sMAPE " + "; ".join(parts)
             for cell, parts in by_cell.items()]  # fmt: skip
    over = f" of the mean over {data.seeds} seeds" if data.seeds > 1 else ""
    return [*lines, f"(Wilcoxon signed-rank test over the series{over}, Holm-adjusted over {len(found)} comparisons.)"]


def repeats(datas: list[CollectionData], unfinished: Sequence[str] = ()) -> list[str]:
    """How far the verdicts depend on the search that chose the configurations: searches of one
    spec with other sampler seeds, compared on their best cell and on each verdict's word
    (`unfinished`: repeats with no complete trial yet, named, not counted)."""
    if len(datas) < 2:
        return []
    words: dict[tuple[str, str], list[str]] = {}
    best: list[str] = []
    for data in datas:
        pairs = _pairs(data, data.smape)
        for pair, v in zip(pairs, ranks.verdicts(data.smape, pairs), strict=True):
            words.setdefault(pair, []).append(v.word)
        best.append(str(data.smape[list(data.chosen)].mean().idxmin()))
    n = len(datas)
    same = [pair for pair, said in words.items() if len(said) == n and len(set(said)) == 1]
    top = max(set(best), key=best.count)
    differ = "; ".join(f"{cell} vs {ref}: " + ", ".join(f"{w} {said.count(w)}x" for w in dict.fromkeys(said))
                       for (cell, ref), said in words.items() if (cell, ref) not in same)  # fmt: skip
    names = ", ".join(f"{d.search.name} (seed {d.search.spec.study.sampler_seed})" for d in datas)
    waiting = f" ({', '.join(unfinished)}: no complete trial yet)" if unfinished else ""
    return [f"**Searched {n} times** with other sampler seeds ({names}){waiting}: the best cell was {top} in "
            f"{best.count(top)}/{n}; {len(same)} of {len(words)} verdicts the same in all {n}"
            + (f" (the others: {differ})." if differ else ".")]  # fmt: skip


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


def findings_lines(data: CollectionData, diagram: str) -> list[str]:
    """The collection's verdicts as the findings say them: the best cell's test sMAPE beside the
    references' (and the literature's figure in brackets), then each comparison in words."""
    config = data.search.spec.collection
    assert config is not None
    rows = data.table.set_index("method")
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


def collection_section(
    searches: list[StudyData], out: Path, cache_dir: Path, storage: optuna.storages.BaseStorage
) -> tuple[list[str], list[str]]:
    """The report's lines for every collection search, and their findings; writes the CSV
    tables and diagrams."""
    lines: list[str] = []
    found: list[str] = []
    groups: dict[str, list[StudyData]] = {}  # searches of one spec but for the sampler seed
    for search in searches:
        groups.setdefault(_search_of(search), []).append(search)
    for group in groups.values():
        datas: list[CollectionData] = []
        for search in group:
            data = collection_data(search, cache_dir, storage)
            lines += _section(search, data, out)
            if data is not None:
                if not datas:  # the findings speak for the first of repeated searches; the others: `repeats`
                    found += [*findings_lines(data, f"[{slug(search.name)}-cd.png]({slug(search.name)}-cd.png)"), ""]
                datas.append(data)
        if said := repeats(datas, [s.name for s in group if s.name not in {d.search.name for d in datas}]):
            lines += [*said, ""]
            found += [*said, ""]
    if found and any(len(group) == 1 for group in groups.values()):
        lines += [ONE_SEARCH, ""]
        found += [ONE_SEARCH, ""]
    return lines, found


def _section(search: StudyData, data: CollectionData | None, out: Path) -> list[str]:
    """One search's section of the report; writes its CSV table and diagram."""
    config = search.spec.collection
    assert config is not None
    lines = ["", f"## {md_escape(search.name)}: {config.label}", ""]
    if data is None:
        return [*lines, "No complete trial yet.", ""]
    stem = slug(search.name)
    table = data.table
    table.to_csv(out / f"{stem}-collection.csv", index=False)
    title = f"{config.label}: average rank of test sMAPE over {data.ranked.series} series"
    diagram = plot_critical_difference(data.ranked, title, out / f"{stem}-cd.png")
    chosen = "; ".join(
        f"{cell}: trial {c['trial']}, " + ", ".join(f"{k}={_fmt(v)}" for k, v in c.items() if k != "trial")
        for cell, c in data.chosen.items()
    )
    return [
        *lines,
        f"{data.ranked.series} series, each forecast {data.horizon} steps ahead from the "
        "end of its training part. Cells: the best trial of each (lowest mean validation sMAPE on the last "
        f"values of the training parts), {_seeds(data)}; {chosen}. Benchmarks: the competition's, fitted "
        "on the same training parts (docs/series.md). `owa`: M4's, against Naive2 (below 1 beats it); "
        "`literature_smape`: the published or recomputed figure for this category (docs/series.md).",
        "",
        markdown_table(table),
        "",
        f"Friedman's test over the {len(data.ranked.average)} methods: p = {data.ranked.friedman_p:.2g}. "
        f"Methods joined by a bar cannot be told apart (Wilcoxon signed-rank, Holm-adjusted, {ranks.ALPHA:.0%}):",
        "",
        f"![critical difference]({diagram.name})",
        "",
        *verdicts(data),
        "",
    ]


ONE_SEARCH = ("_One search per collection: how far its verdicts depend on the search that chose the configurations "
              "is measured by repeating it with other sampler seeds (docs/guide.md)._")  # fmt: skip


def _seeds(data: CollectionData) -> str:
    if data.seeds > 1:
        return f"re-trained on {data.seeds} seeds by `harness confirm`, each series' mean over them"
    return "one training seed (`harness confirm` re-trains it on several)"


def _search_of(search: StudyData) -> str:
    """What a search is, but for its name and sampler seed: repeats of one search share it."""
    spec = search.spec.to_dict()
    spec["study"] = {k: v for k, v in spec["study"].items() if k not in ("name", "sampler_seed")}
    return json.dumps(spec, sort_keys=True, default=str)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
