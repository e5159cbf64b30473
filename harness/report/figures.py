"""Drawing the report's figures from the records `report.py` computes (`harness.report.figure_data`).

Named as Optuna's visualization modules name theirs: `report.pareto_info(...)` computes a
typed record, `figures.plot_pareto(record, ...)` draws it. Each `plot_*` function writes one
PNG: titled, axes labelled with units, the legend outside the data area, readable at 100 dpi.
Each one draws through a private `_draw_*` function that returns the `Figure` (tests inspect
it), then `_save` writes and closes it. A legend is drawn only when there is something labelled to put in it, so drawing
never warns.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, NullLocator  # noqa: E402

from harness.report.figure_data import (  # noqa: E402
    MSE_UNITS,
    STANDARDISED,
    BestSoFarInfo,
    HorizonInfo,
    LearningCurvesInfo,
    ParamScatterInfo,
    ParetoInfo,
    PredictionsInfo,
)
from harness.search.spec import Range  # noqa: E402
from harness.training.evaluate import HORIZON_TOLERANCE  # noqa: E402

DPI = 100
COLORS = {"rnn": "tab:blue", "lstm": "tab:orange", "lstm-fb1": "tab:red", "gru": "tab:green"}
_SPARE_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
# Trials of one cell in the learning curves: the cell's colour, a line style and a marker
# each; 4 styles x 5 markers give 20 distinct pairs before one repeats.
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v")
LEGEND_FONTSIZE = 8
MASE_LABEL = "test MASE (1 = in-sample naive forecast, log scale)"  # a real series' scale-free test error
PRUNED_MARKER = "x"  # a pruned trial's best reported value; complete trials are filled circles


# ---------------------------------------------------------------- helpers
def color(cell: object) -> str:
    """A cell's colour, the same in every figure; a cell outside the three gets a fixed spare."""
    name = str(cell)
    return COLORS.get(name) or _SPARE_COLORS[zlib.crc32(name.encode()) % len(_SPARE_COLORS)]


def _cells(values: Iterable[object]) -> list[str]:
    """The cells present, rnn/lstm/gru first in that order, any others after in order seen."""
    seen = [str(v) for v in dict.fromkeys(values) if isinstance(v, str) or pd.notna(v)]
    return [c for c in COLORS if c in seen] + [c for c in seen if c not in COLORS]


def _positive(values: pd.Series | np.ndarray | Sequence[float]) -> np.ndarray:
    """Values for a log axis: non-positive ones become NaN (not drawn) instead of being clipped
    to a tiny number that would stretch the axis."""
    a = np.asarray(values, dtype=float)
    return np.where(a > 0, a, np.nan)


def _floor(*arrays: pd.Series | np.ndarray | Sequence[float]) -> float:
    """The smallest positive finite value among those shown; NaN when there is none."""
    parts = [np.asarray(a, dtype=float).ravel() for a in arrays]
    values = np.concatenate(parts) if parts else np.array([])
    values = values[np.isfinite(values) & (values > 0)]
    return float(values.min()) if len(values) else math.nan


def _log_yerr(center: np.ndarray, low: np.ndarray, high: np.ndarray, floor: float) -> np.ndarray:
    """Error bar lengths for a log axis: a lower end at or below zero (or missing) is drawn at
    `floor`, the smallest positive value shown, never below it; no negative lengths."""
    low = np.where(np.isfinite(low) & (low > 0), low, floor if np.isfinite(floor) else center)
    low = np.minimum(low, center)
    high = np.where(np.isfinite(high), np.maximum(high, center), center)
    return np.vstack([center - low, high - center])


def _legend_rows(fig: Figure) -> int:
    """How many legend entries fit in one column beside the axes at LEGEND_FONTSIZE."""
    return max(3, int(fig.get_figheight() * 72 / (LEGEND_FONTSIZE * 1.9)) - 1)


def _legend(
    fig: Figure,
    handles: Sequence[Artist],
    labels: Sequence[str],
    title: str | None = None,
    loc: Literal["outside right upper", "outside right lower"] = "outside right upper",
) -> Legend | None:
    """One legend for the whole figure, to the right of every axes (constrained layout makes
    room for it), at their top or their foot; nothing when nothing is labelled."""
    if not handles:
        return None
    ncol = max(1, math.ceil(len(handles) / _legend_rows(fig)))
    return fig.legend(handles, labels, loc=loc, fontsize=LEGEND_FONTSIZE, ncol=ncol, title=title,
                      title_fontsize=LEGEND_FONTSIZE)  # fmt: skip


def _axes_legend(ax: Axes) -> Legend | None:
    """A legend for one axes, outside it on the right; nothing when nothing is labelled."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                     fontsize=LEGEND_FONTSIZE)  # fmt: skip


def _marker_key(pruned: bool = True) -> tuple[list[Artist], list[str]]:
    """Legend entries that explain the trial markers, drawn in grey (the colour says the cell)."""
    handles: list[Artist] = [Line2D([], [], ls="none", marker="o", color="grey", markersize=6)]
    labels = ["complete trial"]
    if pruned:
        handles.append(Line2D([], [], ls="none", marker=PRUNED_MARKER, color="grey", markersize=6, mew=1.5))
        labels.append("pruned trial (best reported value)")
    return handles, labels


def _figure(width: float, height: float) -> Figure:
    return plt.figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    try:
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[np.isfinite(pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float))]


# ---------------------------------------------------------------- figure 1: predictions
def _draw_predictions(
    frame: pd.DataFrame, title: str, values: str = "y (signal units)", time: str = "t (samples)"
) -> Figure:
    cells = _cells(frame["cell"]) or ["(none)"]
    fig = _figure(11, 1.2 + 2.4 * len(cells))
    axes = fig.subplots(len(cells), 1, sharex=True, squeeze=False)
    x = "date" if "date" in frame and frame["date"].notna().all() else "t"  # a real series' dates, where it has them
    for ax, cell in zip(axes[:, 0], cells, strict=True):
        f = frame[frame["cell"] == cell]
        ax.plot(f[x], f["truth"], color="black", lw=2, label="truth")
        ax.plot(f[x], f["one_step"], color=color(cell), ls="--", label="one step ahead")
        ax.plot(f[x], f["free_running"], color="tab:red", ls=":", lw=2, label="free-running")
        ax.set_ylabel(values)
        ax.set_title(f"{cell}: best trial on the test region")
        _axes_legend(ax)
    if x == "t" and time.startswith("date"):  # no date to draw against
        time = "t (samples)"
    axes[-1, 0].set_xlabel(time)
    fig.suptitle(title)
    return fig


def plot_predictions(info: PredictionsInfo, title: str, path: Path) -> Path:
    """Figure 1: truth against one-step and free-running predictions, a panel per cell, against
    the date where the frame has one (a real series with dates), else the sample index.

    Columns used: cell, t, truth, one_step, free_running; date if there."""
    return _save(_draw_predictions(info.frame, title, info.values, info.time), path)


# ---------------------------------------------------------------- figure 6: rollout error
def _draw_rollout_error(frame: pd.DataFrame, title: str, tolerance: float = HORIZON_TOLERANCE) -> Figure:
    fig = _figure(9, 4)
    ax = fig.subplots()
    for cell in _cells(frame["cell"]):
        f = frame[frame["cell"] == cell]
        ax.plot(f["step"], _positive(f["free_error"]), color=color(cell), label=cell)
    ax.axhline(tolerance, color="grey", ls="--", lw=1, label=f"horizon tolerance {tolerance:g}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("steps ahead (samples)")
    ax.set_ylabel("|free-running error| (signal units, log scale)")
    ax.set_title(title)
    _legend(fig, *ax.get_legend_handles_labels())
    return fig


def plot_rollout_error(info: PredictionsInfo, title: str, path: Path, tolerance: float = HORIZON_TOLERANCE) -> Path:
    """Figure 6: absolute free-running error against steps ahead, a line per cell, and the
    tolerance the horizon is counted against.

    Columns used: cell, step, free_error."""
    return _save(_draw_rollout_error(info.frame, title, tolerance), path)


# ---------------------------------------------------------------- figure 2: parameters
def _draw_param_scatter(frame: pd.DataFrame, ranges: dict[str, Range], title: str, units: str = MSE_UNITS) -> Figure:
    params = list(ranges)
    n = max(len(params), 1)
    fig = _figure(max(7.0, 2.0 + 3.6 * n), 3.8)
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    state = frame["state"] if "state" in frame else pd.Series("COMPLETE", index=frame.index)
    cells = _cells(frame["cell"])
    for ax, param in zip(axes, params, strict=False):
        for cell in cells:
            f = frame[frame["cell"] == cell]
            done, pruned = f[state[f.index] == "COMPLETE"], f[state[f.index] == "PRUNED"]
            ax.scatter(done[param], _positive(done["value"]), s=20, color=color(cell), alpha=0.8, clip_on=False)
            ax.scatter(pruned[param], _positive(pruned["value"]), s=24, marker=PRUNED_MARKER, color=color(cell),
                       alpha=0.8, linewidths=1.2, clip_on=False)  # fmt: skip
        r = ranges[param]
        if r.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(r.low, r.high)
        ax.set_xlabel(f"{param} (search range{', log axis' if r.log else ''})")
    for ax in axes:
        ax.set_yscale("log")
    axes[0].set_ylabel(f"validation MSE ({units}, log scale)")
    if not params:
        axes[0].set_xlabel("(no numeric parameter searched)")
    fig.suptitle(title)
    handles: list[Artist] = [Line2D([], [], ls="none", marker="o", color=color(c), markersize=6) for c in cells]
    key_handles, key_labels = _marker_key(pruned=bool((state == "PRUNED").any()))
    _legend(fig, [*handles, *key_handles], [*cells, *key_labels])
    return fig


def plot_param_scatter(info: ParamScatterInfo, title: str, path: Path) -> Path:
    """Figure 2: validation MSE against each searched parameter, coloured by cell; complete
    trials filled, pruned ones (at their best reported value) as crosses. The x axis spans the
    search range, so a best value sitting on an edge is plain to see.

    Columns used: number, cell, state (COMPLETE or PRUNED), value, one per parameter in `ranges`."""
    return _save(_draw_param_scatter(info.frame, info.ranges, title, info.units), path)


# ---------------------------------------------------------------- figure 3: best so far
def _draw_best_so_far(frame: pd.DataFrame, title: str, units: str = MSE_UNITS) -> Figure:
    fig = _figure(9, 4)
    ax = fig.subplots()
    cells = _cells(frame["cell"])
    any_pruned = False
    for cell in cells:
        f = frame[frame["cell"] == cell].sort_values("number", kind="stable")
        c = color(cell)
        ax.step(f["number"], _positive(f["best_so_far"]), where="post", color=c, lw=1.8)
        if "value" not in f:
            continue  # the line only (a frame without each trial's value)
        state = f["state"] if "state" in f else pd.Series("COMPLETE", index=f.index)
        done, pruned = f[state == "COMPLETE"], f[state == "PRUNED"]
        any_pruned = any_pruned or len(pruned) > 0
        ax.scatter(done["number"], _positive(done["value"]), s=16, color=c, alpha=0.7, zorder=3)
        ax.scatter(pruned["number"], _positive(pruned["value"]), s=20, marker=PRUNED_MARKER, color=c, alpha=0.7,
                   linewidths=1.2, zorder=3)  # fmt: skip
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"validation MSE ({units}, log scale)")
    ax.set_title(title)
    handles: list[Artist] = [Line2D([], [], color=color(c), lw=1.8) for c in cells]
    labels = [f"{c}: best complete so far" for c in cells]
    key_handles, key_labels = _marker_key(pruned=any_pruned)
    if cells:
        _legend(fig, [*handles, *key_handles], [*labels, *key_labels])
    return fig


def plot_best_so_far(info: BestSoFarInfo, title: str, path: Path) -> Path:
    """Figure 3: per cell, the best complete validation MSE so far as a step line against trial
    number, and every trial's value as a point (pruned trials: their best reported value).

    Columns used: cell, number, state, value, best_so_far (NaN before a cell's first complete
    trial; a last row per cell at the study's last trial number carries the line to the end)."""
    return _save(_draw_best_so_far(info.frame, title, info.units), path)


# ---------------------------------------------------------------- figure 4: learning curves
def _draw_learning_curves(frame: pd.DataFrame, title: str, units: str = MSE_UNITS) -> Figure:
    fig = _figure(9, 4.4)
    ax = fig.subplots()
    for cell in _cells(frame["cell"]):
        f = frame[frame["cell"] == cell]
        for i, number in enumerate(dict.fromkeys(f["number"])):
            t = f[f["number"] == number].sort_values("epoch", kind="stable")
            label = f"{cell} #{int(number) if float(number).is_integer() else number}"
            ax.plot(t["epoch"], _positive(t["val_mse"]), color=color(cell), ls=_LINESTYLES[i % len(_LINESTYLES)],
                    marker=_MARKERS[i % len(_MARKERS)], markersize=4, markevery=max(1, len(t) // 10), alpha=0.85,
                    label=label)  # fmt: skip
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation MSE ({units}, log scale)")
    ax.set_title(title)
    _legend(fig, *ax.get_legend_handles_labels(), title="cell #trial")
    return fig


def plot_learning_curves(info: LearningCurvesInfo, title: str, path: Path) -> Path:
    """Figure 4: validation MSE per epoch of the top trials of each cell; a cell's trials share
    its colour and differ in line style and marker.

    Columns used: cell, number, epoch, val_mse."""
    return _save(_draw_learning_curves(info.frame, title, info.units), path)


# ---------------------------------------------------------------- figure 5: Pareto
def _draw_pareto(frame: pd.DataFrame, title: str, units: str = MSE_UNITS) -> Figure:
    fig = _figure(9, 4)
    ax = fig.subplots()
    for cell in _cells(frame["cell"]):
        f = frame[frame["cell"] == cell]
        ax.scatter(_positive(f["train_seconds"]), _positive(f["value"]), s=18, color=color(cell), label=cell)
    on_front = frame["on_front"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    front = frame[on_front]
    front = front[(_positive(front["train_seconds"]) > 0) & (_positive(front["value"]) > 0)]
    front = front.sort_values("train_seconds", kind="stable")
    if len(front) >= 2:
        ax.step(front["train_seconds"], front["value"], where="post", color="black", lw=1, label="Pareto front")
    elif len(front) == 1:
        ax.scatter(front["train_seconds"], front["value"], s=110, marker="o", facecolors="none", edgecolors="black",
                   linewidths=1.5, zorder=3, label="only non-dominated trial")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("train time (s, log scale)")
    ax.set_ylabel(f"validation MSE ({units}, log scale)")
    ax.set_title(title)
    _legend(fig, *ax.get_legend_handles_labels())
    return fig


def plot_pareto(info: ParetoInfo, title: str, path: Path) -> Path:
    """Figure 5: validation MSE against training cost, the Pareto front joined (a single
    non-dominated trial is ringed instead).

    Columns used: number, cell, value, train_seconds, on_front (bool)."""
    return _save(_draw_pareto(info.frame, title, info.units), path)


# ---------------------------------------------------------------- replicates
def _draw_replicates(
    frame: pd.DataFrame, cis: pd.DataFrame, title: str, interval_label: str = "geometric mean, 95% CI"
) -> Figure:
    studies = list(dict.fromkeys(frame["study"])) or ["(none)"]
    fig = _figure(2.2 + 4.0 * len(studies), 4.2)
    axes = fig.subplots(1, len(studies), squeeze=False)[0]
    all_cells: list[str] = []
    for ax, study in zip(axes, studies, strict=True):
        f = frame[frame["study"] == study]
        c = cis[cis["study"] == study].drop_duplicates("cell").set_index("cell")
        cells = _cells(f["cell"])
        all_cells += [cell for cell in cells if cell not in all_cells]
        # A real series' runs carry its test MASE: its own terms (its test MSE is on the
        # standardised series), drawn where its interval was computed too.
        real = "test_mase" in f and f["test_mase"].notna().any() and "test_mase_gmean" in c
        m = "test_mase" if real else "test_mse"
        points = {cell: _positive(f[f["cell"] == cell][m]) for cell in cells}
        stats = {cell: c.loc[cell, [f"{m}_gmean", f"{m}_ci_low", f"{m}_ci_high"]].to_numpy(float)
                 for cell in cells if cell in c.index}  # fmt: skip
        floor = _floor(*points.values(), *stats.values())
        for x, cell in enumerate(cells):
            pts = points[cell]
            jitter = np.linspace(-0.07, 0.07, len(pts)) if len(pts) > 1 else np.zeros(len(pts))
            ax.scatter(x + 0.15 + jitter, pts, s=16, color=color(cell), alpha=0.7)
            if cell not in stats or not (np.isfinite(stats[cell][0]) and stats[cell][0] > 0):
                continue
            mean, low, high = stats[cell]
            yerr = _log_yerr(np.array([mean]), np.array([low]), np.array([high]), floor)
            ax.errorbar([x - 0.15], [mean], yerr=yerr, fmt="o", color="black", capsize=4)
        ax.set_xticks(range(len(cells)), cells)
        ax.set_xlim(-0.6, max(len(cells), 1) - 0.4)
        ax.set_yscale("log")
        ax.set_xlabel("cell")
        ax.set_ylabel(MASE_LABEL if real else f"test MSE ({MSE_UNITS}, log scale)")
        ax.set_title(str(study))
    fig.suptitle(title)
    handles: list[Artist] = [Line2D([], [], ls="none", marker="o", color=color(c), alpha=0.7) for c in all_cells]
    labels = [f"{c}: one seed" for c in all_cells]
    if all_cells:
        handles.append(Line2D([], [], ls="-", marker="o", color="black"))
        labels.append(interval_label)
    _legend(fig, handles, labels)
    return fig


def plot_replicates(
    frame: pd.DataFrame, cis: pd.DataFrame, title: str, path: Path, interval_label: str = "geometric mean, 95% CI"
) -> Path:
    """Per-seed test MSE of each cell's best configuration, a panel per study: the points, their
    centre and its 95% confidence interval (a lower end at or below zero is drawn at the smallest
    positive value shown, never below the log axis). A study whose runs have a test MASE (a real
    series) shows that instead.

    Columns: `frame` study, cell, seed, test_mse, optionally test_mase; `cis` study, cell,
    test_mse_gmean, test_mse_ci_low, test_mse_ci_high, and the same of test_mase where `frame` has it."""
    return _save(_draw_replicates(frame, cis, title, interval_label), path)


# ---------------------------------------------------------------- window sweep
def _log2_windows(windows: list[int]) -> bool:
    """Windows spanning 4x or more read best on a log2 axis (8, 16, 32, ... evenly spaced)."""
    return bool(windows) and min(windows) > 0 and max(windows) / min(windows) >= 4


TICK_FONTSIZE = 10  # matplotlib's default tick label size ("medium")
MINOR_TICK_FONTSIZE = 7
LINE_POINTS = 1.2 * TICK_FONTSIZE  # one more row of tick labels


def _staggered(ax: Axes, windows: list[int], fontsize: float) -> list[str]:
    """The windows' tick labels, each one that would print over a neighbour moved down a row
    (a newline before it; "23" and "25" on a log2 axis to 64 sit a few points apart). Widths
    are estimated from the digits at `fontsize` and the axes' width before layout, which
    constrained layout only widens here, so the estimate errs towards another row."""
    width = ax.bbox.width * 72 / ax.figure.dpi  # points
    scale = ax.xaxis.get_transform()
    low, high = (float(v) for v in scale.transform(np.array(ax.get_xlim(), dtype=float)))
    ends: list[float] = []  # where each row's last label ends, in points from the left
    labels = []
    for w in windows:
        x = (float(scale.transform(np.array([float(w)]))[0]) - low) / (high - low) * width
        half = 0.65 * fontsize * len(str(w)) / 2 + 1.5  # half a label and a little air
        row = next((i for i, end in enumerate(ends) if end <= x - half), len(ends))
        ends[row:row + 1] = [x + half]  # fmt: skip
        labels.append("\n" * row + str(w))
    return labels


def _window_axis(ax: Axes, windows: list[int], labelled: list[int] | None = None) -> None:
    """Ticks at exactly the windows present, as integers; a log2 axis when they span 4x or more.
    The `labelled` ones (the sweep's grid) carry the main labels; a window one cell alone was
    run at (its search's own) is labelled too, smaller and on a row below, so it never prints
    over the grid's labels and is never left unnamed. Labels too close to a neighbour in their
    row go a row further down (`_staggered`)."""
    if _log2_windows(windows):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(min(windows) / 2**0.25, max(windows) * 2**0.25)
    elif windows:
        pad = max(0.5, 0.05 * (max(windows) - min(windows)))
        ax.set_xlim(min(windows) - pad, max(windows) + pad)
    shown = sorted(labelled or windows)
    ax.xaxis.set_major_locator(FixedLocator(shown))
    major = _staggered(ax, shown, TICK_FONTSIZE)
    ax.set_xticks(shown, major)
    extra = sorted(w for w in windows if w not in shown)
    ax.set_xticks(extra, _staggered(ax, extra, MINOR_TICK_FONTSIZE), minor=True)
    rows = max((label.count("\n") for label in major), default=0) + 1
    ax.tick_params(axis="x", which="minor", labelsize=MINOR_TICK_FONTSIZE, pad=14 + (rows - 1) * LINE_POINTS,
                   colors="dimgray")  # fmt: skip


def _draw_window_sweep(frame: pd.DataFrame, title: str, max_horizon: int = 150) -> Figure:
    studies = list(dict.fromkeys(frame["study"])) or ["(none)"]
    fig = _figure(12, 0.8 + 3.4 * len(studies))
    axes = fig.subplots(len(studies), 2, squeeze=False)
    all_cells: list[str] = []
    for (mse_ax, right_ax), study in zip(axes, studies, strict=True):
        f = frame[frame["study"] == study]
        # A real series has no horizon worth drawing (steps within 0.1 of a standardised noisy
        # series: 0 at every window); its right panel is the free-running MSE instead.
        real = bool("real" in f and f["real"].fillna(False).astype(bool).any())
        # ... and its left panel its test MASE where the sweep has it (its test MSE is on the
        # standardised series), as its findings read it.
        left = "test_mase" if real and "test_mase_gmean" in f and f["test_mase_gmean"].notna().any() else "test_mse"
        windows = sorted({int(w) for w in pd.to_numeric(f["window"], errors="coerce").dropna()})
        cells = _cells(f["cell"])
        all_cells += [c for c in cells if c not in all_cells]
        log2 = _log2_windows(windows)
        gap = min(np.diff(windows), default=1)
        floors = {m: _floor(f[f"{m}_gmean"], f[f"{m}_ci_low"], f[f"{m}_ci_high"])
                  for m in ("test_mse", "rollout_mse", "test_mase") if f"{m}_gmean" in f}  # fmt: skip
        for i, cell in enumerate(cells):
            g = f[f["cell"] == cell].sort_values("window", kind="stable")
            x = g["window"].to_numpy(float)
            # A small sideways shift per cell keeps the cells' bars apart; the ticks stay exact.
            shift = (i - (len(cells) - 1) / 2) * 0.04
            xs = x * 2**shift if log2 else x + shift * gap
            style = {"color": color(cell), "marker": "o", "markersize": 4, "capsize": 3, "lw": 1.5}
            for ax, m in ((mse_ax, left), *([(right_ax, "rollout_mse")] if real else [])):
                centre = _positive(g[f"{m}_gmean"])
                low, high = g[f"{m}_ci_low"].to_numpy(float), g[f"{m}_ci_high"].to_numpy(float)
                ax.errorbar(xs, centre, yerr=_log_yerr(centre, low, high, floors[m]), **style)
            if not real:
                hor = g["horizon_mean"].to_numpy(float)
                low = np.where(np.isfinite(g["horizon_ci_low"].to_numpy(float)), g["horizon_ci_low"], hor)
                high = np.where(np.isfinite(g["horizon_ci_high"].to_numpy(float)), g["horizon_ci_high"], hor)
                herr = np.vstack([np.clip(hor - low, 0, None), np.clip(high - hor, 0, None)])
                right_ax.errorbar(xs, hor, yerr=herr, clip_on=False, **style)
        label = str(study)
        signals = [str(s) for s in dict.fromkeys(f["signal"]) if pd.notna(s)] if "signal" in f else []
        if signals and signals != [label]:
            label += f" ({', '.join(signals)})"
        grid = sorted(set.intersection(*(set(g["window"]) for _, g in f.groupby("cell")))) if len(f) else []
        for ax in (mse_ax, right_ax):
            _window_axis(ax, windows, grid)
            ax.set_xlabel("window (samples" + (", log2 axis)" if ax.get_xscale() == "log" else ")"))
        mse_ax.set_yscale("log")
        mse_ax.set_ylabel(MASE_LABEL if left == "test_mase" else f"test MSE ({STANDARDISED if real else MSE_UNITS}, "
                                                                  "log scale)")  # fmt: skip
        mse_ax.set_title(f"{label}: test {'MASE' if left == 'test_mase' else 'MSE'}, geometric mean, 95% CI",
                         fontsize=10)  # fmt: skip
        if real:
            right_ax.set_yscale("log")
            right_ax.set_ylabel(f"free-running MSE ({STANDARDISED}, log scale)")
            right_ax.set_title(f"{label}: free-running MSE over the test region, geometric mean, 95% CI", fontsize=10)
            continue
        # Headroom above the ceiling, so markers and bars of runs that never left the tolerance
        # (horizon = max_horizon) stay visible instead of sitting on the frame.
        right_ax.set_ylim(0, max_horizon * 1.08)
        right_ax.axhline(max_horizon, color="gray", ls=":", lw=1)
        right_ax.text(0.01, max_horizon, f" ceiling: {max_horizon} (the whole test region)", va="bottom", fontsize=7,
                      color="gray", transform=right_ax.get_yaxis_transform())  # fmt: skip
        right_ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        right_ax.set_ylabel(f"horizon (free-running steps within {HORIZON_TOLERANCE:g})")
        right_ax.set_title(f"{label}: horizon, mean, 95% CI", fontsize=10)
    fig.suptitle(title)
    handles: list[Artist] = [Line2D([], [], color=color(c), marker="o", markersize=4, lw=1.5) for c in all_cells]
    _legend(fig, handles, all_cells, title="cell (bars: 95% CI)" if all_cells else None)
    return fig


def plot_window_sweep(frame: pd.DataFrame, title: str, path: Path, *, max_horizon: int = 150) -> Path:
    """Replicates along the window: a row per study, test MSE (left, log) and the free-running
    horizon (right, 0 to `max_horizon`) against the window, a line per cell with 95% CI bars.
    A study whose `real` is true (a real series) shows its test MASE on the left (where the frame
    has it) and the free-running MSE of its standardised series on the right instead.

    Columns: study, signal, cell, window, runs, test_mse_gmean, test_mse_ci_low,
    test_mse_ci_high, horizon_mean, horizon_ci_low, horizon_ci_high; optionally real,
    rollout_mse_gmean, rollout_mse_ci_low, rollout_mse_ci_high (needed where real) and
    test_mase_gmean, test_mase_ci_low, test_mase_ci_high."""
    return _save(_draw_window_sweep(frame, title, max_horizon), path)


# ---------------------------------------------------------------- a real series: error by horizon
def _draw_error_by_horizon(frame: pd.DataFrame, origins: int, title: str) -> Figure:
    fig = _figure(9, 4.5)
    ax = fig.subplots()
    markers = iter(["s", "^", "v", "D", "x", "P", "*"])
    for _, f in frame[frame["kind"] == "baseline"].groupby("name", sort=False):
        ax.plot(f["h"], f["mase"], color="grey", ls="--", lw=1.2, marker=next(markers, "."), ms=5,
                label=str(f["model"].iloc[0]))  # fmt: skip
    for cell in _cells(frame.loc[frame["kind"] == "cell", "name"]):
        f = frame[(frame["kind"] == "cell") & (frame["name"] == cell)]
        ax.plot(f["h"], f["mase"], color=color(cell), lw=2.2, marker="o", ms=4, label=f"{cell} (best trial)")
    ax.axhline(1.0, color="black", lw=0.8, alpha=0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("steps ahead h")
    ax.set_ylabel("MASE at h (1 = in-sample seasonal naive)")
    # The series' name (a CSV's path and column can be long) as the figure's title, centred on
    # the whole figure, the origins on a line of their own over the axes, and the legend at the
    # axes' foot: a long title no longer runs under it.
    fig.suptitle(title)
    ax.set_title(f"{origins} rolling origin{'s' * (origins != 1)} over the test part", fontsize=10)
    _legend(fig, *ax.get_legend_handles_labels(), loc="outside right lower")
    return fig


def plot_error_by_horizon(info: HorizonInfo, title: str, path: Path) -> Path:
    """MASE at each step ahead, a coloured line per cell and a grey one per baseline.

    Columns used: name, kind, model, h, mase."""
    return _save(_draw_error_by_horizon(info.frame, info.origins, title), path)
