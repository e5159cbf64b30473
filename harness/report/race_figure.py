"""The search race's figure: per method, the best validation MSE so far against seconds or
trials, as a step line with its bootstrap band (`stats.race_stats` computes the curves)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.report.figure_data import MSE_UNITS
from harness.report.figures import _figure, _legend, _positive, _save

RACE_COLORS = ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")


@dataclass(frozen=True)
class _RaceStyle:
    width: float
    dashes: str
    marker: str
    hatch: str | None


# Wide and solid first, then narrower and dashed: a line drawn later over an identical one
# leaves the earlier one showing around it.
RACE_STYLES = (_RaceStyle(3.2, "-", "o", None), _RaceStyle(2.2, "--", "s", "//"), _RaceStyle(1.4, ":", "^", "\\\\"),
               _RaceStyle(1.0, "-.", "v", "xx"))  # fmt: skip


def _draw_race(frame: pd.DataFrame, xlabel: str, target: float, title: str, units: str = MSE_UNITS) -> Figure:
    fig = _figure(9, 4)
    ax = fig.subplots()
    methods = list(dict.fromkeys(frame["method"]))
    handles: list[Artist] = []
    for i, method in enumerate(methods):
        f = frame[frame["method"] == method].sort_values("x", kind="stable")
        c = RACE_COLORS[i % len(RACE_COLORS)]
        style = RACE_STYLES[i % len(RACE_STYLES)]
        ax.fill_between(f["x"], _positive(f["low"]), _positive(f["high"]), color=c, alpha=0.15, lw=0, step="post",
                        hatch=style.hatch)  # fmt: skip
        few = len(f) <= 60  # few points (trials): mark each, or the last one would not show
        # Methods that search alike (the same random start-up) draw the same curve: a dash
        # pattern, marker and width of their own keep each one visible on top of the others.
        (line,) = ax.step(f["x"], _positive(f["iqm"]), where="post", color=c, lw=style.width, ls=style.dashes,
                          marker=style.marker if few else None, markersize=4)  # fmt: skip
        handles.append(line)
    labels = [f"{m}: IQM, 95% bootstrap band" for m in methods]
    if np.isfinite(target) and target > 0:
        handles.append(ax.axhline(target, color="black", ls="--", lw=1))
        labels.append("target: random+none's median final best")
    ax.set_yscale("log")
    ax.set_xlim(left=0)
    if "axis" in frame and (frame["axis"] == "trials").all():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"best validation MSE so far ({units}, log scale)")
    ax.set_title(title)
    _legend(fig, handles, labels)
    return fig


def plot_race(frame: pd.DataFrame, xlabel: str, target: float, title: str, path: Path, units: str = MSE_UNITS) -> Path:
    """The search race: per method, the interquartile mean over repeats of the best validation
    MSE so far as a step line with its bootstrap band, against seconds or trials, and the target.

    Columns: method, x, iqm, low, high (NaN where not every repeat has a complete trial yet), and
    optionally axis ("seconds" or "trials": integer ticks for trials). `units`: what the MSE is
    measured in (`figure_data.STANDARDISED` for a race on a real series)."""
    return _save(_draw_race(frame, xlabel, target, title, units), path)
