"""The figures: each draws from a small synthetic frame (edge cases included) without a single
warning, writes a PNG, and keeps its legend outside the data area."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from harness.report import figures
from harness.report.figure_data import (
    STANDARDISED,
    BestSoFarInfo,
    HorizonInfo,
    LearningCurvesInfo,
    ParamScatterInfo,
    ParetoInfo,
    PredictionsInfo,
)
from harness.search.spec import Range
from harness.training.evaluate import HORIZON_TOLERANCE

RANGES = {"lr": Range(1e-4, 1e-1, log=True), "hidden_size": Range(4, 64, log=True), "window": Range(2, 40)}


# ---------------------------------------------------------------- frames
def scatter_frame() -> pd.DataFrame:
    """Complete and pruned trials; gru only pruned, one pruned trial that never reported (NaN)."""
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4, 5, 6],
            "cell": ["rnn", "rnn", "lstm", "lstm", "gru", "gru", "rnn"],
            "state": ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE", "PRUNED", "PRUNED", "PRUNED"],
            "value": [0.02, 0.5, 0.01, 0.03, 0.4, 0.3, np.nan],
            "lr": [1e-3, 1e-2, 1e-4, 5e-2, 2e-3, 1e-1, 3e-3],
            "hidden_size": [8, 16, 64, 4, 32, 16, 8],
            "window": [2, 10, 40, 20, 5, 7, 3],
        }
    )


def best_frame() -> pd.DataFrame:
    """As report.best_so_far_info gives it: gru only pruned (best_so_far all NaN), a closing row per
    cell at the last trial number, a NaN value."""
    rows = [
        ("rnn", 0, "PRUNED", 0.5, np.nan),
        ("rnn", 1, "COMPLETE", 0.05, 0.05),
        ("lstm", 2, "COMPLETE", 0.02, 0.02),
        ("gru", 3, "PRUNED", 0.3, np.nan),
        ("rnn", 4, "COMPLETE", 0.08, 0.05),
        ("lstm", 5, "PRUNED", np.nan, 0.02),
        ("rnn", 6, "COMPLETE", 0.01, 0.01),
        ("lstm", 6, None, np.nan, 0.02),
        ("gru", 6, None, np.nan, np.nan),
    ]
    return pd.DataFrame(rows, columns=["cell", "number", "state", "value", "best_so_far"])


def curves_frame(trials_per_cell: int = 3, epochs: int = 7) -> pd.DataFrame:
    rows = []
    for c, cell in enumerate(("rnn", "lstm", "gru")):
        for k in range(trials_per_cell):
            number = 10 * c + k
            rows += [{"cell": cell, "number": number, "epoch": e, "val_mse": 0.5 / (e + 1 + k)} for e in range(epochs)]
    return pd.DataFrame(rows)


def pareto_frame(on_front: list[bool]) -> pd.DataFrame:
    n = len(on_front)
    return pd.DataFrame(
        {
            "number": range(n),
            "cell": (["rnn", "lstm", "gru"] * n)[:n],
            "value": [0.01 * (i + 1) for i in range(n)],
            "train_seconds": [1.0 + 2 * (n - i) for i in range(n)],
            "on_front": on_front,
        }
    )


def rollout_frame() -> pd.DataFrame:
    steps = np.arange(1, 151)
    return pd.concat(
        [
            pd.DataFrame({"cell": cell, "step": steps, "free_error": 1e-3 * np.exp(steps / s)})
            for cell, s in (("rnn", 20), ("lstm", 40), ("gru", 60))
        ],
        ignore_index=True,
    ).assign(free_error=lambda f: f["free_error"].where(f["step"] != 1, 0.0))  # an exact zero: not on a log axis


def predictions_frame() -> pd.DataFrame:
    t = np.arange(850, 1000)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "cell": cell,
                    "t": t,
                    "truth": np.sin(t / 8),
                    "one_step": np.sin(t / 8) + 0.01,
                    "free_running": np.sin(t / 8.1),
                }
            )  # fmt: skip
            for cell in ("rnn", "gru")
        ],
        ignore_index=True,
    )


def dated_predictions_frame() -> pd.DataFrame:
    """A real series' test region in its own units, each value's year beside its index."""
    frame = predictions_frame().assign(truth=lambda f: 900 + 100 * f["truth"], one_step=lambda f: 900 + f["one_step"])
    return frame.assign(date=pd.to_datetime((frame["t"] + 1000).astype(str), format="%Y"))


def horizon_frame() -> pd.DataFrame:
    """MASE at h = 1..14 of two cells and six baselines, as `report.horizon_info` gives it."""
    rows = []
    names = [("naive", "naive (last value)"), ("seasonal-naive", "seasonal naive (m = 12)"), ("drift", "drift"),
             ("mean", "training mean"), ("linear-ar", "linear AR(11)"),
             ("ets", "ETS(A,Ad,A) from statsmodels")]  # fmt: skip
    steps = range(1, 15)
    for i, (name, model) in enumerate(names):
        rows += [{"name": name, "kind": "baseline", "model": model, "h": h, "mase": 0.2 * i + 0.1 * h} for h in steps]
    for cell in ("rnn", "gru"):
        rows += [{"name": cell, "kind": "cell", "model": cell, "h": h, "mase": 3 + 0.2 * h} for h in steps]
    return pd.DataFrame(rows)


# A CSV series' error by horizon under a long name: the title ran under the legend
LONG_TITLE = "my-monthly-sales (my_monthly_sales_2010_2017.csv:sales): error by horizon"


def replicate_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame(
        {
            "study": ["short"] * 6 + ["long"] * 2,
            "cell": ["rnn", "rnn", "rnn", "lstm", "lstm", "lstm", "gru", "gru"],
            "seed": [0, 1, 2, 0, 1, 2, 0, 1],
            "test_mse": [1e-3, 2e-3, 4e-3, 1e-4, 1e-4, 1e-4, 1e-2, 3e-2],
        }
    )
    cis = pd.DataFrame(
        {
            "study": ["short", "short", "long"],
            "cell": ["rnn", "lstm", "gru"],
            # an arithmetic interval through zero (old style) and a NaN one must not break the axis
            "test_mse_gmean": [2e-3, 1e-4, 2e-2],
            "test_mse_ci_low": [-1e-3, np.nan, 5e-3],
            "test_mse_ci_high": [5e-3, np.nan, 4e-2],
        }
    )
    return frame, cis


def sweep_frame(windows: tuple[int, ...] = (4, 8, 16, 32, 64)) -> pd.DataFrame:
    rows = []
    for study, signal in (("short", "short-period"), ("long", "long-period")):
        for cell in ("rnn", "lstm", "gru"):
            for w in windows:
                g = 1e-3 * w ** (-0.5) * (2 if cell == "rnn" else 1)
                h = min(150.0, 5.0 * w)
                rows.append({"study": study, "signal": signal, "cell": cell, "window": w, "runs": 5,
                             "test_mse_gmean": g, "test_mse_ci_low": g / 2, "test_mse_ci_high": g * 2,
                             "horizon_mean": h, "horizon_ci_low": max(0.0, h - 10),
                             "horizon_ci_high": min(150.0, h + 10)})  # fmt: skip
    frame = pd.DataFrame(rows)
    # a window with no finished replicate for one cell: NaN everywhere
    frame.loc[0, ["test_mse_gmean", "test_mse_ci_low", "test_mse_ci_high", "horizon_mean"]] = np.nan
    return frame


# ---------------------------------------------------------------- helpers
@pytest.fixture
def strict() -> Iterator[None]:
    """Any warning (matplotlib's empty legend, pandas, numpy) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.fixture
def drawn() -> Iterator[Callable[[Figure], Figure]]:
    """Draws a figure's canvas (so extents are final) and closes it after the test."""
    figs: list[Figure] = []

    def draw(fig: Figure) -> Figure:
        figs.append(fig)
        fig.canvas.draw()
        return fig

    yield draw
    for fig in figs:
        plt.close(fig)


def legends(fig: Figure) -> list[Legend]:
    return [*fig.legends, *(leg for ax in fig.axes if (leg := ax.get_legend()) is not None)]


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for leg in legends(fig) for t in leg.get_texts()]


def area(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def assert_legends_outside(fig: Figure) -> None:
    """Every legend lies inside the figure and covers none of any axes' data area."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    found = legends(fig)
    assert found, "the figure has no legend"
    for leg in found:
        box = leg.get_window_extent(renderer)
        assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, "legend cut off the figure"
        assert fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1, "legend cut off the figure"
        for ax in fig.axes:
            assert area(box, ax.get_window_extent(renderer)) == 0, f"legend covers the axes {ax.get_title()!r}"


def assert_labelled(fig: Figure) -> None:
    """A title; every axis labelled (a shared axis may carry its label on one panel); every
    quantity with units names them (counts such as epochs and trial numbers are their own unit)."""
    assert fig.get_suptitle() or all(ax.get_title() for ax in fig.axes), "untitled figure"
    for ax in fig.axes:
        xlabel = next(a.get_xlabel() for a in [ax, *ax.get_shared_x_axes().get_siblings(ax)] if a.get_xlabel())
        ylabel = next(a.get_ylabel() for a in [ax, *ax.get_shared_y_axes().get_siblings(ax)] if a.get_ylabel())
        for label in (xlabel, ylabel):
            if any(q in label for q in ("MSE", "error", "time", " y ", "t ", "window")):
                assert "(" in label and ")" in label, f"no units: {label!r}"
            if "MSE" in label:  # a sine's in its units; a real series' on what the model sees
                assert "signal units²" in label or STANDARDISED in label


def assert_png(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 1000
    image = plt.imread(path)
    assert image.shape[1] >= 600 and image.shape[0] >= 300  # readable at 100 dpi


def line_ys(ax: Axes) -> list[np.ndarray]:
    return [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]


# ---------------------------------------------------------------- every figure: file, no warnings, legend outside
CASES: dict[str, Callable[[Path], Path]] = {
    "predictions": lambda p: figures.plot_predictions(PredictionsInfo(predictions_frame()), "t", p),
    "rollout": lambda p: figures.plot_rollout_error(PredictionsInfo(rollout_frame()), "t", p),
    "params": lambda p: figures.plot_param_scatter(ParamScatterInfo(scatter_frame(), RANGES), "t", p),
    "params-no-ranges": lambda p: figures.plot_param_scatter(ParamScatterInfo(scatter_frame(), {}), "t", p),
    "best": lambda p: figures.plot_best_so_far(BestSoFarInfo(best_frame()), "t", p),
    "best-single": lambda p: figures.plot_best_so_far(BestSoFarInfo(best_frame().iloc[[1]]), "t", p),
    "curves": lambda p: figures.plot_learning_curves(LearningCurvesInfo(curves_frame()), "t", p),
    "curves-single": lambda p: figures.plot_learning_curves(LearningCurvesInfo(curves_frame(1, 1)), "t", p),
    "pareto": lambda p: figures.plot_pareto(ParetoInfo(pareto_frame([True, True, False, True])), "t", p),
    "pareto-one": lambda p: figures.plot_pareto(ParetoInfo(pareto_frame([True])), "t", p),
    "replicates": lambda p: figures.plot_replicates(*replicate_frames(), "t", p),
    "sweep": lambda p: figures.plot_window_sweep(sweep_frame(), "t", p),
    "sweep-one-window": lambda p: figures.plot_window_sweep(sweep_frame((16,)), "t", p, max_horizon=100),
    "predictions-dated": lambda p: figures.plot_predictions(
        PredictionsInfo(dated_predictions_frame(), values="flow (10⁸ m³ a year)", time="date (yearly values)"), "t", p
    ),
    "error-by-horizon": lambda p: figures.plot_error_by_horizon(HorizonInfo(horizon_frame(), 12), LONG_TITLE, p),
}

DRAWERS: dict[str, Callable[[], Figure]] = {
    "predictions": lambda: figures._draw_predictions(predictions_frame(), "title"),
    "rollout": lambda: figures._draw_rollout_error(rollout_frame(), "title"),
    "params": lambda: figures._draw_param_scatter(scatter_frame(), RANGES, "title"),
    "best": lambda: figures._draw_best_so_far(best_frame(), "title"),
    "curves": lambda: figures._draw_learning_curves(curves_frame(5, 30), "title"),
    "pareto": lambda: figures._draw_pareto(pareto_frame([True, False, True]), "title"),
    "pareto-one": lambda: figures._draw_pareto(pareto_frame([True, False]), "title"),
    "replicates": lambda: figures._draw_replicates(*replicate_frames(), "title"),
    "sweep": lambda: figures._draw_window_sweep(sweep_frame(), "title"),
    "sweep-linear": lambda: figures._draw_window_sweep(sweep_frame((8, 10, 12)), "title"),
    "predictions-dated": lambda: figures._draw_predictions(
        dated_predictions_frame(), "title", "flow (10⁸ m³ a year)", "date (yearly values)"
    ),
    "error-by-horizon": lambda: figures._draw_error_by_horizon(horizon_frame(), 12, LONG_TITLE),
    "params-real": lambda: figures._draw_param_scatter(scatter_frame(), RANGES, "title", STANDARDISED),
}


@pytest.mark.parametrize("case", CASES)
def test_each_figure_writes_a_png_without_warnings(case: str, tmp_path: Path, strict: None) -> None:
    path = CASES[case](tmp_path / f"{case}.png")
    assert path == tmp_path / f"{case}.png"
    assert_png(path)
    assert plt.get_fignums() == []  # closed after saving


@pytest.mark.parametrize("case", DRAWERS)
def test_each_legend_is_outside_every_data_area(case: str, strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(DRAWERS[case]())
    assert_legends_outside(fig)
    assert_labelled(fig)


def test_the_frames_report_gives_before_the_new_columns_still_draw(tmp_path: Path, strict: None) -> None:
    """best_so_far without state/value, param_scatter without state: lines/complete points only."""
    old_best = best_frame().dropna(subset=["best_so_far"])[["cell", "number", "best_so_far"]]
    assert_png(figures.plot_best_so_far(BestSoFarInfo(old_best), "t", tmp_path / "best.png"))
    old_scatter = scatter_frame().query("state == 'COMPLETE'").drop(columns="state")
    assert_png(figures.plot_param_scatter(ParamScatterInfo(old_scatter, RANGES), "t", tmp_path / "params.png"))


def test_empty_frames_draw_without_a_legend_or_a_warning(tmp_path: Path, strict: None) -> None:
    """Nothing labelled: no legend at all (never matplotlib's 'No artists with labels')."""
    empty_best = pd.DataFrame(columns=["cell", "number", "state", "value", "best_so_far"])
    empty_curves = pd.DataFrame(columns=["cell", "number", "epoch", "val_mse"])
    empty_pareto = pd.DataFrame(columns=["number", "cell", "value", "train_seconds", "on_front"])
    for name, fig in {
        "best": figures._draw_best_so_far(empty_best, "t"),
        "curves": figures._draw_learning_curves(empty_curves, "t"),
        "pareto": figures._draw_pareto(empty_pareto, "t"),
    }.items():
        try:
            fig.canvas.draw()
            assert legends(fig) == [], name
        finally:
            plt.close(fig)
    assert_png(figures.plot_pareto(ParetoInfo(empty_pareto), "t", tmp_path / "pareto.png"))


# ---------------------------------------------------------------- figure by figure
def test_param_scatter_tells_pruned_from_complete(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_param_scatter(scatter_frame(), RANGES, "t"))
    texts = legend_texts(fig)
    assert {"rnn", "lstm", "gru", "complete trial", "pruned trial (best reported value)"} <= set(texts)
    ax = fig.axes[0]
    # gru has only pruned trials, drawn all the same in gru's colour (the NaN one is not drawn)
    green = to_rgba("tab:green", 0.8)
    gru = [np.asarray(c.get_offsets(), dtype=float) for c in ax.collections
           if len(np.asarray(c.get_facecolor())) and np.allclose(np.asarray(c.get_facecolor())[0], green)]  # fmt: skip
    assert sum(int(np.isfinite(o).all(axis=1).sum()) for o in gru) == 2, "a cell with only pruned trials is drawn"
    assert ax.get_xlim() == pytest.approx((RANGES["lr"].low, RANGES["lr"].high))


def test_param_scatter_without_pruned_trials_has_no_pruned_entry(strict: None, drawn: Callable[[Figure], Figure]):
    frame = scatter_frame()
    fig = drawn(figures._draw_param_scatter(frame[frame["state"] == "COMPLETE"], RANGES, "t"))
    assert "pruned trial (best reported value)" not in legend_texts(fig)


def test_best_so_far_steps_to_the_last_trial_and_shows_every_trial(
    strict: None, drawn: Callable[[Figure], Figure]
) -> None:
    fig = drawn(figures._draw_best_so_far(best_frame(), "t"))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    rnn = [line for line in ax.get_lines() if line.get_color() == "tab:blue"]
    assert len(rnn) == 1
    assert np.nanmax(np.asarray(rnn[0].get_xdata(), dtype=float)) == 6  # runs to the last trial
    # every trial with a value is a point: 7 finite values across the three cells
    points = sum(int(np.isfinite(np.asarray(c.get_offsets(), dtype=float)).all(axis=1).sum()) for c in ax.collections)
    assert points == int(best_frame()["value"].notna().sum())
    assert "pruned trial (best reported value)" in legend_texts(fig)


def test_learning_curves_tell_the_trials_of_one_cell_apart(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_learning_curves(curves_frame(5, 30), "t"))
    ax = fig.axes[0]
    by_cell: dict[str, list[Line2D]] = {}
    for line in ax.get_lines():
        by_cell.setdefault(str(line.get_label()).split(" #")[0], []).append(line)
    assert set(by_cell) == {"rnn", "lstm", "gru"}
    for cell, lines in by_cell.items():
        assert len({line.get_color() for line in lines}) == 1, f"{cell}: one colour family"
        styles = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}
        assert len(styles) == len(lines) == 5, f"{cell}: trials drawn alike"
    assert set(legend_texts(fig)) >= {"rnn #0", "lstm #10", "gru #24"}


@pytest.mark.parametrize("epochs", [1, 3, 7, 30])
def test_epoch_ticks_are_integers(epochs: int, strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_learning_curves(curves_frame(2, epochs), "t"))
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)
    labels = [t.get_text().replace("−", "-") for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(label.lstrip("-").isdigit() for label in labels)


@pytest.mark.parametrize("rows", [[1], [0, 1, 2, 3, 4, 5, 6, 7, 8]])
def test_trial_number_ticks_are_integers(rows: list[int], strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_best_so_far(best_frame().iloc[rows], "t"))
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_rollout_tolerance_line_is_the_horizon_tolerance(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_rollout_error(rollout_frame(), "t"))
    ax = fig.axes[0]
    flat = [ys for ys in line_ys(ax) if len(ys) == 2 and ys[0] == ys[1]]
    assert [ys[0] for ys in flat] == [HORIZON_TOLERANCE]
    assert f"horizon tolerance {HORIZON_TOLERANCE:g}" in legend_texts(fig)
    low, _ = ax.get_ylim()
    assert low > 0  # the exact zero error is not drawn on the log axis
    other = drawn(figures._draw_rollout_error(rollout_frame(), "t", tolerance=0.25))
    assert "horizon tolerance 0.25" in legend_texts(other)


def test_pareto_front_entry_only_with_a_line(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    line = drawn(figures._draw_pareto(pareto_frame([True, False, True]), "t"))
    assert "Pareto front" in legend_texts(line)
    assert len(line.axes[0].get_lines()) == 1
    one = drawn(figures._draw_pareto(pareto_frame([True, False]), "t"))
    assert "Pareto front" not in legend_texts(one)
    assert "only non-dominated trial" in legend_texts(one)
    assert one.axes[0].get_lines() == []
    none = drawn(figures._draw_pareto(pareto_frame([False, False]), "t"))
    assert not {"Pareto front", "only non-dominated trial"} & set(legend_texts(none))


def test_replicate_bars_never_go_below_the_smallest_value_shown(
    strict: None, drawn: Callable[[Figure], Figure]
) -> None:
    frame, cis = replicate_frames()
    fig = drawn(figures._draw_replicates(frame, cis, "t"))
    smallest = float(frame["test_mse"].min())
    for ax in fig.axes:
        assert ax.get_yscale() == "log"
        low, _ = ax.get_ylim()
        assert low > 0
        for line in ax.get_lines():  # the error bars' caps and the centres
            ys = np.asarray(line.get_ydata(), dtype=float)
            assert np.all(ys[np.isfinite(ys)] >= smallest * (1 - 1e-9))
        for coll in ax.collections:  # the bars themselves
            for seg in getattr(coll, "get_segments", list)():
                assert np.all(np.asarray(seg)[:, 1] >= smallest * (1 - 1e-9))
    assert "geometric mean, 95% CI" in legend_texts(fig)
    assert {"rnn: one seed", "lstm: one seed", "gru: one seed"} <= set(legend_texts(fig))


def test_replicates_keep_a_cell_outside_the_three(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    frame, cis = replicate_frames()
    frame.loc[len(frame)] = ["long", "mycell", 0, 1e-3]
    fig = drawn(figures._draw_replicates(frame, cis, "t", interval_label="mean, 95% CI"))
    assert "mycell" in [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert "mean, 95% CI" in legend_texts(fig)


@pytest.mark.parametrize("windows", [(4, 8, 16, 32, 64), (8, 10, 12), (16,)])
def test_window_sweep_panels(windows: tuple[int, ...], strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_window_sweep(sweep_frame(windows), "t", max_horizon=150))
    assert len(fig.axes) == 4  # two studies, two panels each
    for mse_ax, hor_ax in zip(fig.axes[0::2], fig.axes[1::2], strict=True):
        assert mse_ax.get_yscale() == "log" and hor_ax.get_yscale() == "linear"
        assert hor_ax.get_ylim()[0] == 0 and hor_ax.get_ylim()[1] > 150  # the ceiling's markers stay in view
        for ax in (mse_ax, hor_ax):
            low, high = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ticks == list(windows)
            assert [t.get_text() for t in ax.get_xticklabels()] == [str(w) for w in windows]
            assert ax.get_xlabel().startswith("window (samples")
        assert (mse_ax.get_xscale() == "log") == (len(windows) > 1 and windows[-1] / windows[0] >= 4)
        # error bars stay above zero on the log axis
        for coll in mse_ax.collections:
            for seg in getattr(coll, "get_segments", list)():
                if len(seg):
                    assert np.all(np.asarray(seg)[:, 1] > 0)
    assert {"rnn", "lstm", "gru"} <= set(legend_texts(fig))
    assert fig.axes[0].get_title().startswith("short (short-period)")


def test_a_real_series_sweeps_free_running_mse_not_a_horizon(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    frame = sweep_frame((2, 5, 10, 20))
    frame = frame.assign(
        real=frame["study"].eq("long"),
        rollout_mse_gmean=frame["test_mse_gmean"] * 3,
        rollout_mse_ci_low=frame["test_mse_gmean"],
        rollout_mse_ci_high=frame["test_mse_gmean"] * 9,
    )
    fig = drawn(figures._draw_window_sweep(frame, "t"))
    sine, real = fig.axes[1], fig.axes[3]
    assert sine.get_yscale() == "linear" and "horizon" in sine.get_title()
    assert real.get_yscale() == "log" and "free-running MSE" in real.get_title() and "horizon" not in real.get_title()
    marked = [line for line in real.get_lines() if line.get_marker() == "o"]
    centres = np.concatenate([np.asarray(line.get_ydata(), float) for line in marked])
    want = frame.loc[frame["study"].eq("long"), "rollout_mse_gmean"].to_numpy(float)
    assert np.allclose(np.sort(centres[np.isfinite(centres)]), np.sort(want[np.isfinite(want)]))


def test_a_window_one_cell_alone_ran_at_is_labelled_too(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    frame = sweep_frame((4, 8, 16))
    extra = frame[(frame["cell"] == "gru") & (frame["window"] == 8)].assign(window=23)  # the gru's searched window
    fig = drawn(figures._draw_window_sweep(pd.concat([frame, extra], ignore_index=True), "t"))
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8", "16"]
        assert [t.get_text() for t in ax.get_xticklabels(minor=True)] == ["23"]


# ---------------------------------------------------------------- a real series in its own terms
def test_a_real_series_is_drawn_against_its_dates_in_its_units(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    frame = dated_predictions_frame()
    fig = drawn(figures._draw_predictions(frame, "t", "flow (10⁸ m³ a year)", "date (yearly values)"))
    for ax in fig.axes:
        assert ax.get_ylabel() == "flow (10⁸ m³ a year)"
        x = np.asarray(ax.get_lines()[0].get_xdata())
        assert x.dtype.kind == "M" and pd.Timestamp(x[0]).year == 1850  # the dates, not the sample index
    assert fig.axes[-1].get_xlabel() == "date (yearly values)"
    assert all(label.get_text().isdigit() and len(label.get_text()) == 4 for label in fig.axes[-1].get_xticklabels()
               if label.get_text())  # fmt: skip  # years
    # a series without dates keeps the index, and says so
    bare = drawn(figures._draw_predictions(frame.drop(columns="date"), "t", "y (the file's units)",
                                           "t (sample index: the series has no dates)"))  # fmt: skip
    assert np.asarray(bare.axes[0].get_lines()[0].get_xdata()).dtype.kind in "iuf"
    assert bare.axes[-1].get_xlabel() == "t (sample index: the series has no dates)"


@pytest.mark.parametrize("draw", [
    lambda units: figures._draw_param_scatter(scatter_frame(), RANGES, "t", units),
    lambda units: figures._draw_best_so_far(best_frame(), "t", units),
    lambda units: figures._draw_learning_curves(curves_frame(), "t", units),
    lambda units: figures._draw_pareto(pareto_frame([True, False, True]), "t", units),
])  # fmt: skip
def test_a_real_series_mse_is_labelled_as_on_the_standardised_series(
    draw: Callable[[str], Figure], strict: None, drawn: Callable[[Figure], Figure]
) -> None:
    fig = drawn(draw(STANDARDISED))
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels and all("validation MSE (standardised series" in label for label in labels)
    assert not any("signal units" in label for label in labels)


def test_the_records_carry_what_their_values_are_measured_in(tmp_path: Path) -> None:
    from harness.report.tables import value_label
    from harness.series.signals import SignalConfig

    assert ParetoInfo(pareto_frame([True])).units == "signal units²"  # a sine's, as before
    assert value_label(SignalConfig()) == "y (signal units)"
    assert value_label(SignalConfig(source="builtin", name="nile")) == "flow (10⁸ m³ a year)"
    write = tmp_path / "sales.csv"
    pd.DataFrame({"sales": np.arange(40.0) + 1}).to_csv(write, index=False)
    assert value_label(SignalConfig(source="file", path=str(write), column="sales")) == "sales (the file's units)"


def test_a_real_series_replicates_show_its_test_mase(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    frame, cis = replicate_frames()
    frame = frame.assign(test_mase=np.where(frame["study"] == "long", frame["test_mse"] * 50, np.nan))
    cis = cis.assign(test_mase_gmean=[np.nan, np.nan, 1.0], test_mase_ci_low=[np.nan, np.nan, 0.5],
                     test_mase_ci_high=[np.nan, np.nan, 1.5])  # fmt: skip
    fig = drawn(figures._draw_replicates(frame, cis, "t"))
    sine, real = fig.axes
    assert "signal units²" in sine.get_ylabel() and real.get_ylabel() == figures.MASE_LABEL
    scatters = [c for c in real.collections if isinstance(c, PathCollection)]  # the seeds, not the bars
    points = np.concatenate([np.asarray(c.get_offsets(), float)[:, 1] for c in scatters])
    assert np.allclose(np.sort(points), np.sort(frame.loc[frame["study"] == "long", "test_mase"]))


def test_a_real_series_sweeps_its_test_mase_where_it_has_it(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    frame = sweep_frame((2, 5, 10, 20))
    long = frame["study"].eq("long")
    frame = frame.assign(real=long, rollout_mse_gmean=frame["test_mse_gmean"] * 3,
                         rollout_mse_ci_low=frame["test_mse_gmean"], rollout_mse_ci_high=frame["test_mse_gmean"] * 9,
                         test_mase_gmean=np.where(long, 0.8, np.nan), test_mase_ci_low=np.where(long, 0.6, np.nan),
                         test_mase_ci_high=np.where(long, 1.1, np.nan))  # fmt: skip
    fig = drawn(figures._draw_window_sweep(frame, "t"))
    sine, real, real_right = fig.axes[0], fig.axes[2], fig.axes[3]
    assert "signal units²" in sine.get_ylabel() and "test MSE" in sine.get_title()
    assert real.get_ylabel() == figures.MASE_LABEL and "test MASE" in real.get_title()
    assert STANDARDISED in real_right.get_ylabel() and "signal units" not in real_right.get_ylabel()
    marked = [line for line in real.get_lines() if line.get_marker() == "o"]
    centres = np.concatenate([np.asarray(line.get_ydata(), float) for line in marked])
    assert np.allclose(centres[np.isfinite(centres)], 0.8)


# ---------------------------------------------------------------- labels and titles that print over others
def _visible_lines(fig: Figure, ax: Axes) -> list[tuple[str, Bbox]]:
    """Each x tick label's printed line and where it lies: a staggered label starts with empty
    lines, so its text is the last of its lines, at the bottom of its box."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    out = []
    for label in [*ax.get_xticklabels(), *ax.get_xticklabels(minor=True)]:
        if not label.get_text().strip() or not label.get_visible():
            continue
        box = label.get_window_extent(renderer)
        lines = label.get_text().count("\n") + 1
        out.append((label.get_text().strip(), Bbox.from_extents(box.x0, box.y0, box.x1, box.y0 + box.height / lines)))
    return out


@pytest.mark.parametrize(("grid", "alone"), [((2, 5, 16, 32, 64), (20, 23, 25)), ((2, 23, 25, 64), ()),
                                             ((4, 8, 16), (23,))])  # fmt: skip
def test_window_labels_never_print_over_each_other(
    grid: tuple[int, ...], alone: tuple[int, ...], strict: None, drawn: Callable[[Figure], Figure]
) -> None:
    """The short-period sweep printed its searches' windows 23 and 25 as "2325"."""
    frame = sweep_frame(grid)
    cells = ("rnn", "lstm", "gru")
    extra = [frame[(frame["cell"] == cells[i % 3]) & (frame["window"] == grid[0])].assign(window=w)
             for i, w in enumerate(alone)]  # fmt: skip
    fig = drawn(figures._draw_window_sweep(pd.concat([frame, *extra], ignore_index=True), "t"))
    for ax in fig.axes:
        shown = _visible_lines(fig, ax)
        assert sorted(int(text) for text, _ in shown) == sorted({*grid, *alone})  # every window named
        for i, (a, box_a) in enumerate(shown):
            for b, box_b in shown[i + 1 :]:
                assert area(box_a, box_b) == 0, f"{a} and {b} print over each other"
        xlabel = ax.xaxis.label.get_window_extent(fig.canvas.get_renderer())  # type: ignore[attr-defined]
        assert all(area(box, xlabel) == 0 for _, box in shown), "a window label prints over the axis label"


def test_error_by_horizon_title_clears_the_legend(strict: None, drawn: Callable[[Figure], Figure]) -> None:
    fig = drawn(figures._draw_error_by_horizon(horizon_frame(), 12, LONG_TITLE))
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    titles = [t for t in (fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)) if t]
    assert LONG_TITLE in titles and any("12 rolling origins" in t for t in titles)
    suptitle = next(t for t in fig.texts if t.get_text() == fig.get_suptitle())
    texts = [t for t in (suptitle, *(ax.title for ax in fig.axes)) if t.get_text()]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, f"{text.get_text()!r} runs off the figure"
        for leg in legends(fig):
            assert area(box, leg.get_window_extent(renderer)) == 0, f"{text.get_text()!r} runs under the legend"
