"""The report on disk and in the dashboard: report.md, its CSV tables and PNG figures, the
findings as each study's note and the figures as study artifacts."""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from harness.errors import ConfigError
from harness.race.race import startup_warnings
from harness.report.figure_data import MSE_UNITS, STANDARDISED, HorizonInfo, PredictionsInfo
from harness.report.markdown import markdown_table, md_escape, slug
from harness.report.tables import (
    CELL_ORDER,
    StudyData,
    best_so_far_info,
    cell_summary,
    comparison_table,
    horizon_info,
    importances,
    learning_curves_info,
    param_scatter_info,
    pareto_info,
    predictions_info,
    side_by_side,
)
from harness.search.confirm import replicate_frame
from harness.search.optuna_internals import study_artifacts
from harness.search.storage import DEFAULT_STORAGE
from harness.search.study import COMPANION_SUFFIX
from harness.stats import findings, replicates


def study_header(search: StudyData) -> dict[str, Any]:
    """What produced a study's numbers: budget, training settings, machine."""
    env = search.studies[0].user_attrs.get("environment", {})
    training, study = search.spec.training, search.spec.study
    budgets = search.budgets()
    equal = len(set(budgets.values())) == 1
    shares = ", ".join(f"{cell} {count}" for cell, count in budgets.items())
    budget = f"{next(iter(budgets.values()))} per cell" if equal else shares
    return {"study": search.name, "signal": search.signal_label, "protocol": training.protocol,
            "epochs": training.epochs, "trials": len(search.trials), "budget": budget, "sampler": study.sampler,
            "pruner": study.pruner,
            "cpu": env.get("cpu"), "gpus": ", ".join(env.get("gpus", [])) or "none",
            "torch": env.get("torch_version"), "git": (env.get("git_commit") or "")[:10]}  # fmt: skip


# ---------------------------------------------------------------- the report
class Drawings:
    """The report's figures, queued while its tables are made and drawn together at the end on
    every core: each is about a second of matplotlib (constrained layout, PNG encoding), most
    of a report's time, and none depends on another."""

    def __init__(self) -> None:
        self._queued: list[tuple[Callable[..., Path], tuple[Any, ...]]] = []

    def add(self, plot: Callable[..., Path], *args: Any) -> Path:
        """Queue `plot(*args)`, one of `figures.plot_*`; returns the path it writes (its last argument)."""
        self._queued.append((plot, args))
        return Path(args[-1])

    def draw(self) -> None:
        queued, self._queued = self._queued, []
        workers = min(len(queued), os.cpu_count() or 1)
        if workers < 2 or sys.platform != "linux":  # fork is safe enough on Linux alone (macOS: spawn by default)
            for job in queued:
                _draw(job)
            return
        # Forked: the children start with matplotlib imported (each job's data is sent to them)
        # and use neither torch nor the storage, whose connection they inherit unused.
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            for _ in pool.map(_draw, queued):
                pass


def _draw(job: tuple[Callable[..., Path], tuple[Any, ...]]) -> None:
    plot, args = job
    plot(*args)


def draw_figures(
    search: StudyData, out: Path, preds: PredictionsInfo, horizon: HorizonInfo | None, drawings: Drawings
) -> list[Path]:
    """Queue one search's figures; returns their paths."""
    from harness.report import figures

    stem = slug(search.name)
    title = search.name if search.name == search.signal_label else f"{search.name} ({search.signal_label})"
    queued: list[tuple[Callable[..., Path], Any, str, str]] = []  # (plot, its data, title ends, file ends)
    if horizon is not None and not horizon.frame.empty:  # a real series: its table beside the figure
        _integers(horizon.frame).to_csv(out / f"{stem}-error-by-horizon.csv", index=False)
        queued.append((figures.plot_error_by_horizon, horizon, ": error by horizon", "error-by-horizon"))
    if not preds.frame.empty:
        queued.append((figures.plot_predictions, preds, ", test region", "predictions"))
        if horizon is None:  # a real series has its error by horizon instead
            queued.append((figures.plot_rollout_error, preds, ": free-running error", "rollout-error"))
    scatter = param_scatter_info(search)
    if not scatter.frame.empty:
        queued += [(figures.plot_param_scatter, scatter, ": search space", "params"),
                   (figures.plot_best_so_far, best_so_far_info(search), ": best so far", "best-so-far"),
                   (figures.plot_learning_curves, learning_curves_info(search), ": learning curves", "learning-curves"),
                   (figures.plot_pareto, pareto_info(search), ": error vs cost", "pareto")]  # fmt: skip
    return [drawings.add(plot, info, title + what, out / f"{stem}-{name}.png") for plot, info, what, name in queued]


def upload_figures(studies: Sequence[optuna.Study], paths: list[Path], artifact_dir: Path) -> list[str]:
    """Attach the figures to the study as Optuna artifacts so optuna-dashboard shows them.

    A figure an earlier report uploaded keeps its artifact id and gets the new content, so
    reports never pile up copies. (Optuna 5's `get_all_artifact_meta` cannot read the null
    marker that the dashboard's delete button leaves, so entries are read here directly.)
    """
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifact_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    ids = []
    for study in studies:  # each per-cell study shows the whole search's figures
        existing = {meta["filename"]: meta["artifact_id"] for meta in study_artifacts(study)}
        for path in paths:
            if path.name in existing:
                with path.open("rb") as figure:
                    store.write(existing[path.name], figure)
                ids.append(existing[path.name])
            else:
                ids.append(upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study))
    return ids


INTEGER_COLUMNS = ("budget", "complete", "pruned", "failed", "trial", "window", "hidden_size", "n_params", "runs",
                   "pairs", "trials", "epochs", "number")  # fmt: skip


def _integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Count and size columns as integers (nullable, so a missing value stays empty in CSV)."""
    frame = frame.copy()
    for column in frame.columns:
        if column in INTEGER_COLUMNS or str(column).endswith((": window",)):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    return frame


def study_facts(search: StudyData, comparison: pd.DataFrame, storage: str = "") -> findings.StudyFacts:
    """What the findings need of one study; its references come from the comparison table,
    which has already fitted them (hundreds of least-squares fits on the long signal).
    `storage`: the database's (redacted) URL, named in a printed command unless it is the default."""
    max_window = search.spec.largest_window()
    storage = "" if storage in ("", DEFAULT_STORAGE) else storage
    if search.spec.signal.real:
        rows = comparison[comparison["study"] == search.name]
        best = rows[rows["best"].fillna(False).astype(bool)].iloc[0]
        cells = rows[rows["cell"].isin(CELL_ORDER)].set_index("cell")["test_mase"]
        return findings.StudyFacts(name=search.name, signal=search.signal_label, noise_std=0.0,
                                   persistence_mse=np.nan, floor_mse=np.nan, budgets=search.budgets(), real=True,
                                   baseline=str(best["model"]), baseline_mase=float(best["test_mase"]),
                                   search_mase={str(c): float(v) for c, v in cells.items()},
                                   max_window=max_window, storage=storage)  # fmt: skip
    refs = comparison[comparison["study"] == search.name].set_index("cell")["test_mse"]
    return findings.StudyFacts(name=search.name, signal=search.spec.signal.name, noise_std=search.spec.signal.noise_std,
                               persistence_mse=float(refs["ref: persistence"]),
                               floor_mse=float(refs["ref: linear-ar"]), budgets=search.budgets(),
                               max_window=max_window, storage=storage)  # fmt: skip


NOTE_ATTR = "note_written_by"  # which report wrote a study's dashboard note: "harness report" or "... --study X"
FULL_REPORT = "harness report"


def companions(storage: optuna.storages.BaseStorage, searches: list[StudyData]) -> list[optuna.Study]:
    """The replicate studies (`harness confirm`) of `searches` that exist."""
    names = set(optuna.get_all_study_names(storage=storage))
    wanted = [search.name + COMPANION_SUFFIX for search in searches]
    return [optuna.load_study(study_name=n, storage=storage) for n in wanted if n in names]


def save_notes(studies: Sequence[optuna.Study], text: str, out: Path, scope: list[str] | None = None) -> list[str]:
    """The findings as each study's note, so optuna-dashboard opens on the verdict; each note
    says which report wrote it. A one-study report (`scope`) answers fewer questions than the
    full one (no long vs short period), so it leaves a note the full report wrote as it is;
    returns the names of the studies whose notes it left."""
    import optuna_dashboard

    writer = FULL_REPORT if scope is None else f"{FULL_REPORT} --study {' '.join(scope)}"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = f"_Written by `{writer}` on {stamp} into {out}._\n\n{text}"
    kept = []
    for study in studies:
        if scope is not None and study.user_attrs.get(NOTE_ATTR) == FULL_REPORT:
            kept.append(study.study_name)
            continue
        optuna_dashboard.save_note(study, note)
        study.set_user_attr(NOTE_ATTR, writer)
    return kept


def _no_horizon(frame: pd.DataFrame, real: set[str]) -> pd.DataFrame:
    """Blank the horizon columns of a real series' rows: steps within 0.1 of a standardised
    noisy series say nothing (0 for the Nile at every window); its free-running MSE does."""
    cols = [c for c in frame.columns if c.startswith("horizon_")]
    return frame.assign(**{c: frame[c].where(~frame["study"].isin(real)) for c in cols})


def write_report(
    storage: optuna.storages.BaseStorage,
    storage_label: str,
    out: Path,
    searches: list[StudyData],
    artifact_dir: Path | None = None,
    device: str = "auto",
    retrain: bool = False,
    races: list[str] | None = None,
    cache_dir: Path = Path("results/collections"),
) -> Path:
    """Write report.md, the CSV tables and the figures of `searches` (from `load_studies`), and
    the race section of the races named in `races` (all races in the storage when None: the
    full report; a list is a one-study report's `--study` names). A collection's search has a
    section of its own (`report.collection`), its benchmarks kept under `cache_dir`."""
    from harness.report import figures
    from harness.report.collection import collection_section

    out.mkdir(parents=True, exist_ok=True)
    collected = [search for search in searches if search.spec.collection is not None]
    searches = [search for search in searches if search.spec.collection is None]
    drawings = Drawings()
    comparison = comparison_table(searches)
    side = side_by_side(cell_summary(searches))
    imp = importances(searches)
    reps = replicate_frame(storage, [search.name for search in searches])
    cis, tests, sweep = replicates.ci_table(reps), replicates.paired_tests(reps), replicates.sweep_table(reps)
    real = {search.name for search in searches if search.spec.signal.real}
    cis, sweep = _no_horizon(cis, real), _no_horizon(sweep, real)
    found = findings.findings([study_facts(search, comparison, storage_label) for search in searches], reps)
    verdict = findings.markdown(found)
    tables = {"comparison": comparison, "side_by_side": side, "importances": imp, "replicates": cis,
              "paired_tests": tests, "window_sweep": sweep}  # fmt: skip
    if searches:  # a race-only report has no search tables or findings: no empty files
        for name, frame in tables.items():
            _integers(frame).to_csv(out / f"{name}.csv", index=False)
        (out / "findings.md").write_text(verdict, encoding="utf-8")

    lines = ["# Harness report", ""]
    if not searches:  # a storage holding only races or collections: their sections alone
        lines += [f"Storage: {md_escape(storage_label)}", ""]
    else:
        lines += ["## Findings", "", verdict, f"Storage: {md_escape(storage_label)}", ""]
        lines += _search_sections(searches, comparison, side, imp)
    replicate_figures: list[Path] = []
    if not cis.empty:
        lines += ["", "## Replicates (`harness confirm`)", "",
                  "Each cell's best configuration re-trained on the same seeds: the geometric mean of test and "
                  "free-running MSE with a 95% interval computed on log10 values (Student's t), and the "
                  "mean horizon with its interval clipped to the possible range (not for a real series: "
                  "within 0.1 of its standardised values it is about 0 everywhere). A real series' rows add its "
                  "test MASE, RMSSE and MAE (in its own units), summarised alike; its test MSE is on the "
                  "standardised series, and its panel in the figure shows its test MASE.", "",
                  markdown_table(_integers(cis)), "",
                  "Pair by pair on the same seeds: `ratio` = geometric-mean test MSE of `cell_a` over `cell_b`, "
                  "with a paired t-test on log10 test MSE (`p_log_t`), and the Wilcoxon signed-rank test "
                  "(`p_wilcoxon`; with 5 seeds its smallest two-sided p-value is 0.0625).", "",
                  markdown_table(_integers(tests)), ""]  # fmt: skip
        per_seed = "test MSE per seed" + (" (real series: test MASE)" if real & set(cis["study"]) else "")
        drawings.add(figures.plot_replicates, replicates.best_config_only(reps), cis, per_seed,
                     out / "replicates.png")  # fmt: skip
        lines += ["![replicates](replicates.png)"]
        replicate_figures.append(out / "replicates.png")
    if sweep["window"].nunique() > 1:
        lines += ["", "## Window sweep (`harness confirm --windows`)", "",
                  "Each cell's best configuration re-trained at each window on the same seeds.", "",
                  markdown_table(_integers(sweep)), ""]  # fmt: skip
        signals = {search.name: search.signal_label for search in searches}
        swept_real = sweep["study"].isin(real)
        title = "test MSE and horizon against window" + (" (real series: test MASE and free-running MSE)"
                                                         * bool(swept_real.any()))  # fmt: skip
        drawings.add(figures.plot_window_sweep, sweep.assign(signal=sweep["study"].map(signals), real=swept_real),
                     title, out / "window-sweep.png")  # fmt: skip
        lines += ["![window sweep](window-sweep.png)"]
        replicate_figures.append(out / "window-sweep.png")
    replicate_studies = companions(storage, searches)
    # uploaded once drawn: the replicate studies show theirs in the dashboard
    uploads: list[tuple[Sequence[optuna.Study], list[Path]]] = [(replicate_studies, replicate_figures)]
    for search in searches:
        preds = predictions_info(search, artifact_dir, device, retrain)
        horizon = horizon_info(search, artifact_dir, device, retrain) if search.spec.signal.real else None
        paths = draw_figures(search, out, preds, horizon, drawings)
        uploads.append((search.studies, paths))
        lines += ["", f"## {md_escape(search.name)}: figures", ""]
        lines += [f"![{md_escape(path.stem)}]({path.name})" for path in paths]
        if preds.missing:
            note = (
                f"{search.name}: no stored weights for the best {', '.join(preds.missing)} trial (recorded before "
                "trials kept their weights); their prediction figures are left out (`--retrain` re-trains them)"
            )
            print(f"harness report: {note}", file=sys.stderr)
            lines += [f"_{md_escape(note)}_", ""]
    collection_lines, collection_found = collection_section(collected, out, cache_dir, storage)
    if collection_found:  # their findings beside the series' (README.md quotes both)
        (out / "collection-findings.md").write_text("\n".join(collection_found), encoding="utf-8")
        at = lines.index("## Studies") if "## Studies" in lines else len(lines)
        lines[at:at] = ["## Findings on a collection", "", *collection_found, ""]
    lines += collection_lines
    lines += race_section(storage, out, races, drawings)
    drawings.draw()
    for studies, paths in uploads:
        if artifact_dir is not None and paths:
            upload_figures(studies, paths, artifact_dir)
    kept = save_notes([s for search in searches for s in search.studies] + replicate_studies, verdict, out, races)
    if kept:
        print(f"harness report: the dashboard notes of {', '.join(kept)} were written by the full report and are "
              "left as they are (a one-study report answers fewer questions); `harness report` refreshes them",
              file=sys.stderr)  # fmt: skip
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def _search_sections(
    searches: list[StudyData], comparison: pd.DataFrame, side: pd.DataFrame, imp: pd.DataFrame
) -> list[str]:
    """The studies, the cells against the references, side by side, and parameter importances."""
    lines = ["## Studies", "", markdown_table(pd.DataFrame([study_header(search) for search in searches]))]
    lines += ["## Cells and references", "",
              "Best trial per cell (by validation MSE; one seed each, so read the replicates below before "
              "ranking cells) and the references on the same splits. `budget` is the number of search trials "
              "the cell got. `x_floor` is the test MSE divided by the linear autoregression's, which predicts a "
              "noiseless sine exactly, so it is given only for a noisy signal (where that floor is about the noise "
              "variance).", "",
              markdown_table(_integers(comparison.drop(columns=["signal"], errors="ignore"))), ""]  # fmt: skip
    if any(search.spec.signal.real for search in searches):
        lines[-2:-2] = [
            "For a real series the references are forecasting's baselines (`baseline: ...`, `model` says "
            "which), fitted on the training part only and scored one step ahead on the cells' own "
            "validation and test targets; `test_mase` and `test_rmsse` are test MAE and RMSE over the "
            "in-sample MAE and RMSE of seasonal naive (naive without a season) on the training part, "
            "`test_mae`, `test_rmse` and `test_mse_units` are in the series' own units, and "
            "`x_best_baseline` is test MASE over that of the baseline best on validation (`best`). "
            "`best_val_mse` and `test_mse` are on the standardised series the cells train on.",
            "",
        ]
    lines += ["## Side by side", "", markdown_table(_integers(side)), "", "## Parameter importances", "",
              markdown_table(imp)]  # fmt: skip
    return lines


# ---------------------------------------------------------------- the search race
def race_section(
    storage: optuna.storages.BaseStorage, out: Path, names: list[str] | None, drawings: Drawings
) -> list[str]:
    """`harness race`'s results per signal: the table (race.csv), the anytime figures (queued in
    `drawings`) and the verdict in words; nothing when the storage holds no race."""
    from harness.race import read
    from harness.report import race_figure
    from harness.stats import race_stats

    histories = read.load_histories(storage, names) | read.load_simulated(storage, names)
    if not histories:
        return []
    tables = {name: race_stats.table(h) for name, h in histories.items()}
    frame = pd.concat([race_stats.table_frame(t) for t in tables.values()], ignore_index=True)
    frame.to_csv(out / "race.csv", index=False)
    lines = ["", "## Search race (`harness race`)", "",
             "Which search method (sampler+pruner) reaches a good validation MSE soonest. Each method ran its "
             "repeats with different sampler seeds (the same seeds for every method). Curves: best validation MSE "
             "so far, the interquartile mean (IQM) over repeats of log10 MSE with a 95% bootstrap band, against "
             "the seconds spent on the repeat and against finished trials. `target`: random+none's median final "
             "best; `time_to_target`: the time by which half of the repeats reached it (lower median, a repeat "
             "that never did counting as slowest; empty when fewer than half did); `reached`: the fraction that "
             "did; `speedup`: random+none's time to target over the method's; `rank`: by time to target, then "
             "IQM final best; `p_improvement`: the probability that a repeat of the method reaches the target "
             "sooner than one of random+none (ties count half, rliable's probability of improvement); "
             "`p_mann_whitney`: the one-sided Mann-Whitney U p-value of the same comparison. A race marked "
             f"`{read.SIMULATED_MARK.strip()}` was replayed from recorded curves on a simulated clock "
             "(`harness race --simulate`; docs/guide.md), not run.", ""]  # fmt: skip
    lines += [f"- {race_stats.verdict(t, name)}" for name, t in tables.items()]
    lines += [f"- _Warning: {md_escape(w)}._" for t in tables.values() for w in startup_warnings(t)]
    lines += ["", markdown_table(frame), ""]
    real = read.on_real_series(storage)
    for name, h in histories.items():
        target = tables[name][0].target
        for axis, label in (("seconds", "seconds spent on the repeat"), ("trials", "finished trials")):
            curves = race_stats.curves_frame(race_stats.curves(h, axis))
            path = out / f"{slug(name)}-race-{axis}.png"
            repeats = max(r.repeats for r in tables[name])
            title = f"{name}: best so far, {repeats} repeats per method"
            units = STANDARDISED if name in real else MSE_UNITS
            drawings.add(race_figure.plot_race, curves, label, target, title, path, units)
            lines.append(f"![{md_escape(path.stem)}]({path.name})")
    for simulated in (False, True):  # each kind of race ranked across its tasks (signals, series)
        kind = {n: t for n, t in tables.items() if n.endswith(read.SIMULATED_MARK) == simulated}
        if len(kind) > 1:
            ranks = race_stats.average_ranks(kind)
            ranks.to_csv(out / f"race-average-rank{'-simulated' if simulated else ''}.csv", index=False)
            lines += ["", f"Average rank over the {'replayed' if simulated else 'live'} races (1 = first):", "",
                      markdown_table(ranks), ""]  # fmt: skip
    return lines + faithfulness_section(storage, histories, out, names)


def faithfulness_section(
    storage: optuna.storages.BaseStorage, histories: dict[str, Any], out: Path, names: list[str] | None
) -> list[str]:
    """A replay against the live race of the same name (where both are in the storage), and each
    recorded table's leave-one-out coverage (`harness.stats.faithfulness`)."""
    from harness.race.curves import CURVES_SUFFIX, loo_pairs, read_table
    from harness.race.read import SIMULATED_MARK
    from harness.stats import faithfulness

    lines: list[str] = []
    frames = []
    for name, live in histories.items():
        simulated = histories.get(name + SIMULATED_MARK)
        if name.endswith(SIMULATED_MARK) or simulated is None:
            continue
        agree = faithfulness.method_agreement(live, simulated)
        ranks = faithfulness.ranking_agreement(live, simulated)
        frame = faithfulness.agreement_frame(agree)
        frames.append(frame.assign(name=name))
        lines += ["", f"### {md_escape(name)}: the live race against its replay", "",
                  f"{_sentence(faithfulness.summary(agree, ranks))}. Times to target are both against the "
                  "live race's target; the band is the replay's 95% bootstrap band of the IQM final best.", "",
                  markdown_table(frame), "", markdown_table(ranks), ""]  # fmt: skip
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(out / "race-faithfulness.csv", index=False)
    rows = []
    for study in optuna.get_all_study_names(storage=storage):
        base = study.removesuffix(CURVES_SUFFIX)
        if study.endswith(CURVES_SUFFIX) and (names is None or base in names):
            try:
                table = read_table(optuna.load_study(study_name=study, storage=storage))
            except ConfigError:  # no run recorded yet
                continue
            rows.append(vars(faithfulness.coverage(study, *loo_pairs(table))) | {"runs": len(table.overhead)})
    if rows:
        lines += ["", "### Recorded curves (`harness record`): coverage", "",
                  "Each recorded configuration held out in turn: Spearman's rank correlation between its mean final "
                  "validation MSE and that of its nearest other configuration (same cell), the answer a replay "
                  "gives a trial that lands there.", "", markdown_table(pd.DataFrame(rows)), ""]  # fmt: skip
    return lines


def _sentence(text: str) -> str:
    """`text` with a capital first letter (str.capitalize would lower "IQM" and "Kendall")."""
    return text[:1].upper() + text[1:]
