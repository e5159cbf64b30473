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
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from harness.report import figures
from harness.report.figure_data import BestSoFarInfo, LearningCurvesInfo, ParamScatterInfo, ParetoInfo, PredictionsInfo
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
            if "MSE" in label:
                assert "signal units²" in label


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
