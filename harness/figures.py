"""Drawing the report's figures from the DataFrames `report.py` computes.

Each function takes data and a path and writes one PNG: titled, axes labelled with units,
a legend, readable at 100 dpi.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from harness.spec import Range  # noqa: E402

DPI = 100
COLORS = {"rnn": "tab:blue", "lstm": "tab:orange", "gru": "tab:green"}


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _finish(fig: Figure, ax: Axes, xlabel: str, ylabel: str, title: str, path: Path, **legend: Any) -> Path:
    """The ending every single-panel figure shares: log error axis, labels, title, legend."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**legend)
    return _save(fig, path)


def predictions(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """Figure 1: truth against one-step and free-running predictions, a panel per cell."""
    cells = list(dict.fromkeys(frame["cell"]))
    fig, axes = plt.subplots(len(cells), 1, figsize=(10, 2.6 * len(cells)), sharex=True, squeeze=False)
    for ax, cell in zip(axes[:, 0], cells, strict=True):
        f = frame[frame["cell"] == cell]
        ax.plot(f["t"], f["truth"], color="black", lw=2, label="truth")
        ax.plot(f["t"], f["one_step"], color=COLORS.get(cell), ls="--", label="one step ahead")
        ax.plot(f["t"], f["free_running"], color="tab:red", ls=":", lw=2, label="free-running")
        ax.set_ylabel("y (signal units)")
        ax.set_title(f"{cell}: best trial on the test region")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("t (samples)")
    fig.suptitle(title)
    return _save(fig, path)


def param_scatter(frame: pd.DataFrame, ranges: dict[str, Range], title: str, path: Path) -> Path:
    """Figure 2: validation MSE against each searched parameter, coloured by cell; the x axis
    spans the search range, so a best value sitting on an edge is plain to see."""
    params = list(ranges)
    fig, axes = plt.subplots(1, max(len(params), 1), figsize=(4.2 * max(len(params), 1), 3.6), squeeze=False)
    for ax, param in zip(axes[0], params, strict=False):
        for cell, f in frame.groupby("cell"):
            ax.scatter(f[param], f["value"], s=18, color=COLORS.get(str(cell)), label=str(cell), alpha=0.8)
        ax.set_yscale("log")
        r = ranges[param]
        if r.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(r.low, r.high)
        ax.set_xlabel(f"{param} (search range{', log axis' if r.log else ''})")
        ax.set_ylabel("best validation MSE")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def best_so_far(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """Figure 3: best validation MSE so far against trial number, a line per cell."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for cell, f in frame.groupby("cell"):
        ax.step(f["number"], f["best_so_far"], where="post", color=COLORS.get(str(cell)), label=str(cell))
    return _finish(fig, ax, "trial number", "best validation MSE so far", title, path)


def learning_curves(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """Figure 4: validation MSE per epoch of the top trials of each cell."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for (cell, number), f in frame.groupby(["cell", "number"]):
        ax.plot(f["epoch"], f["val_mse"], color=COLORS.get(str(cell)), alpha=0.8, label=f"{cell} #{number}")
    return _finish(fig, ax, "epoch", "validation MSE", title, path, fontsize=7, ncol=3)


def pareto(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """Figure 5: validation MSE against training cost, the Pareto front joined."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for cell, f in frame.groupby("cell"):
        ax.scatter(f["train_seconds"], f["value"], s=18, color=COLORS.get(str(cell)), label=str(cell))
    front = frame[frame["on_front"]].sort_values("train_seconds")
    ax.step(front["train_seconds"], front["value"], where="post", color="black", lw=1, label="Pareto front")
    ax.set_xscale("log")
    return _finish(fig, ax, "train time (s)", "best validation MSE", title, path)


def rollout_error(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """Figure 6: absolute free-running error against steps ahead, a line per cell."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for cell, f in frame.groupby("cell", sort=False):
        ax.plot(f["step"], f["free_error"], color=COLORS.get(str(cell)), label=str(cell))
    ax.axhline(0.1, color="grey", ls="--", lw=1, label="horizon tolerance 0.1")
    return _finish(fig, ax, "steps ahead (samples)", "|free-running error| (signal units)", title, path)


def replicates(frame: pd.DataFrame, cis: pd.DataFrame, title: str, path: Path) -> Path:
    """Per-seed test MSE of each cell's best configuration, a panel per study: the points, their
    mean and its 95% confidence interval."""
    studies = list(dict.fromkeys(frame["study"]))
    fig, axes = plt.subplots(1, len(studies), figsize=(4.5 * len(studies), 4), squeeze=False)
    for ax, study in zip(axes[0], studies, strict=True):
        f, c = frame[frame["study"] == study], cis[cis["study"] == study].set_index("cell")
        cells = [cell for cell in COLORS if cell in set(f["cell"])]
        for x, cell in enumerate(cells):
            pts = f[f["cell"] == cell]["test_mse"]
            ax.scatter([x + 0.15] * len(pts), pts, s=16, color=COLORS[cell], alpha=0.7, label=f"{cell} seeds")
            mean, low, high = c.loc[cell, ["test_mse_mean", "test_mse_ci_low", "test_mse_ci_high"]]
            ax.errorbar([x - 0.15], [mean], yerr=[[mean - low], [high - mean]], fmt="o", color="black", capsize=4,
                        label="mean, 95% CI" if x == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(cells)), cells)
        ax.set_yscale("log")
        ax.set_xlabel("cell")
        ax.set_ylabel("test MSE")
        ax.set_title(str(study))
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)
