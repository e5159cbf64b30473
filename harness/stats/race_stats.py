"""Statistics over `harness race` repeats: anytime curves, time to target, ranking, verdict.

Pure functions on the repeats' histories handed to them (`RepeatHistory`: plain arrays) and
on a repeat's clock (`spent_seconds` over its segments); `harness.race.read` reads both from
a storage and `harness.race.race` runs the races. Data first, drawing elsewhere
(`race_figure.plot_race`), as Optuna's visualization modules do: each function returns typed
records (`*Info`), and `*_frame` turns them into tables.

- **Best so far** of a repeat: the lowest validation MSE among its COMPLETE trials finished
  by then (pruned trials stopped early and are not a finished model), against the seconds
  the race spent on the repeat (`spent_seconds` at the trial's `datetime_complete`) or
  against the number of finished (complete or pruned) trials. After a repeat's last trial
  its value stays as it ended. Which trials a budget keeps is the history's
  (`harness.race.read.history`).
- **IQM**: the interquartile mean over repeats, scipy's `trim_mean(x, 0.25)` (the mean of
  the middle half; with fewer than 4 repeats nothing is cut, so it is the mean). It is taken
  of log10 MSE and shown as 10**IQM, like every MSE summary in the harness: MSE over seeds
  spans orders of magnitude. A curve has a value only where every repeat has one.
- **Band**: a percentile bootstrap over repeats (`N_BOOTSTRAP` resamples with replacement of
  the repeats, the same resamples at every point of the curve, generator seeded with
  `BOOTSTRAP_SEED`), the 2.5 and 97.5 percentiles of the resampled IQMs.
- **Target**: the median final best of the baseline (random+none) over its repeats.
- **Time to target** of a method: the time by which half of its repeats (rounded up) had
  reached the target, i.e. the lower median of the repeats' times, a repeat that never
  reached it counting as slower than any that did; infinite (not reached) when fewer than
  half reached it. The baseline always reaches it (its target is its own median).
- **Speed-up**: the baseline's time to target divided by the method's.
- **Rank**: by time to target, then by IQM final best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

BASELINE = "random+none"
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
CURVE_POINTS = 200  # points of the elapsed-seconds grid
SURE_P = 0.05


# ---------------------------------------------------------------- a repeat's clock
def close_segments(segs: Sequence[Sequence[str | None]], completions: Sequence[datetime]) -> list[list[str | None]]:
    """Segments with every open one (a session killed by kill -9, or one running now) ended at
    its last finished trial, the last moment known to have been spent on the repeat."""
    out: list[list[str | None]] = []
    for start, end in segs:
        if end is None:
            begin = datetime.fromisoformat(str(start))
            after = [c for c in completions if c >= begin]
            end = max(after).isoformat() if after else start
        out.append([start, end])
    return out


def spent_seconds(segs: Sequence[Sequence[str | None]], until: datetime | None = None) -> float:
    """Seconds covered by the union of the segments, up to `until` (all of it when None); an
    open segment runs to `until` (or now). Overlaps (two sessions at once) count once."""
    stop = until or datetime.now()
    spans = sorted(
        (datetime.fromisoformat(str(s)), min(datetime.fromisoformat(str(e)) if e else stop, stop)) for s, e in segs
    )
    total, reach = 0.0, None
    for start, end in spans:
        if reach is not None:
            start = max(start, reach)
        if end > start:
            total += (end - start).total_seconds()
            reach = end
    return total


# ---------------------------------------------------------------- histories
@dataclass(frozen=True)
class RepeatHistory:
    """One repeat's finished (complete or pruned) trials in the order they finished."""

    name: str  # the race: the spec's study name
    method: str
    repeat: int
    elapsed: np.ndarray  # seconds spent on the repeat when each trial finished
    values: np.ndarray  # each trial's validation MSE; NaN for a pruned trial
    seconds: float  # seconds spent on the repeat in all

    @property
    def best_so_far(self) -> np.ndarray:
        return np.fmin.accumulate(self.values) if len(self.values) else self.values

    @property
    def final_best(self) -> float:
        best = self.best_so_far
        return float(best[-1]) if len(best) else math.nan


def methods(histories: Sequence[RepeatHistory]) -> list[str]:
    """The methods, the baseline first, then in the order first seen."""
    seen = list(dict.fromkeys(h.method for h in histories))
    return sorted(seen, key=lambda m: m != BASELINE)


# ---------------------------------------------------------------- aggregates
def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """The interquartile mean: the mean of the middle half (25% cut from each end)."""
    return np.asarray(stats.trim_mean(values, 0.25, axis=axis))


def bootstrap_band(
    values: np.ndarray, n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of the IQM over the rows (repeats) of `values` (repeats x
    points): the same `n_boot` resamples of the repeats for every column."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    samples = iqm(values[index], axis=1)  # n_boot x points
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return low, high


def best_at(x: np.ndarray, at: np.ndarray, best: np.ndarray) -> np.ndarray:
    """The best-so-far step function (value at each `at` point of the trials finished at `x`)."""
    i = np.searchsorted(x, at, side="right") - 1
    return np.where(i >= 0, best[np.clip(i, 0, None)] if len(best) else np.nan, np.nan)


@dataclass(frozen=True)
class CurveInfo:
    """One method's anytime curve: 10**IQM of log10 best-so-far over repeats, and the band."""

    method: str
    axis: str  # "seconds" or "trials"
    x: np.ndarray
    iqm: np.ndarray
    low: np.ndarray
    high: np.ndarray


def curves(
    histories: Sequence[RepeatHistory], axis: str = "seconds", points: int = CURVE_POINTS,
    n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
) -> list[CurveInfo]:  # fmt: skip
    """Each method's curve against elapsed seconds (a grid of `points` from 0 to the longest
    repeat) or finished trials (1, 2, ...), each up to its own longest repeat."""
    if not histories:
        return []

    def extent(h: RepeatHistory) -> float:
        return h.seconds if axis == "seconds" else float(len(h.values))

    longest = max(extent(h) for h in histories)
    grid = np.linspace(0.0, longest, points) if axis == "seconds" else np.arange(1.0, longest + 1.0)
    out = []
    for method in methods(histories):
        runs = [h for h in histories if h.method == method]
        x = grid[grid <= max(extent(h) for h in runs)]
        rows = [best_at(h.elapsed if axis == "seconds" else np.arange(1.0, len(h.values) + 1.0), x, h.best_so_far)
                for h in runs]  # fmt: skip
        logs = np.log10(np.vstack(rows)) if rows else np.empty((0, len(x)))
        full = np.all(np.isfinite(logs), axis=0)
        center, low, high = (np.full(len(x), np.nan) for _ in range(3))
        if full.any():
            center[full] = iqm(logs[:, full], axis=0)
            low[full], high[full] = bootstrap_band(logs[:, full], n_boot, seed)
        out.append(CurveInfo(method, axis, x, 10**center, 10**low, 10**high))
    return out


def curves_frame(infos: Sequence[CurveInfo]) -> pd.DataFrame:
    rows = [
        {"method": c.method, "axis": c.axis, "x": x, "iqm": m, "low": lo, "high": hi}
        for c in infos
        for x, m, lo, hi in zip(c.x, c.iqm, c.low, c.high, strict=True)
    ]
    return pd.DataFrame(rows, columns=["method", "axis", "x", "iqm", "low", "high"])


# ---------------------------------------------------------------- the table
def times_to_target(h: RepeatHistory, target: float) -> tuple[float, float]:
    """(seconds, finished trials) at which the repeat's best so far first reached `target`;
    infinite when it never did."""
    hit = np.nonzero(h.best_so_far <= target)[0]
    if not len(hit):
        return math.inf, math.inf
    return float(h.elapsed[hit[0]]), float(hit[0] + 1)


def half_reached(times: Sequence[float]) -> float:
    """The time by which half of the repeats (rounded up) had reached the target: the lower
    median, a repeat that never did counting as slower than any (inf when fewer than half did)."""
    ordered = sorted(times)
    return float(ordered[math.ceil(len(ordered) / 2) - 1]) if ordered else math.nan


def target_of(histories: Sequence[RepeatHistory], baseline: str = BASELINE) -> float:
    """The baseline's median final best over its repeats (a repeat without a complete trial counts
    as the worst); NaN without a baseline."""
    finals = [h.final_best if math.isfinite(h.final_best) else math.inf for h in histories if h.method == baseline]
    return float(np.median(finals)) if finals else math.nan


@dataclass(frozen=True)
class MethodInfo:
    """One method's row of the race table (see the module docstring for each definition)."""

    name: str
    method: str
    repeats: int
    median_trials: float
    median_seconds: float
    final_best_median: float
    final_best_iqm: float
    target: float
    time_to_target: float  # seconds; inf: fewer than half of the repeats reached the target
    trials_to_target: float
    reached: float  # fraction of repeats that reached the target
    speedup: float  # the baseline's time to target / this method's
    rank: int
    seconds_to_target: tuple[float, ...]  # per repeat, inf where never reached
    p_improvement: float = math.nan  # P(this method's time to target < the baseline's), ties half
    p_mann_whitney: float = math.nan  # one-sided Mann-Whitney U p that its times are shorter than the baseline's


def table(histories: Sequence[RepeatHistory], baseline: str = BASELINE) -> list[MethodInfo]:
    """The race table of one race (one signal): one row per method, the baseline first."""
    if not histories:
        return []
    target = target_of(histories, baseline)
    rows = []
    for method in methods(histories):
        runs = [h for h in histories if h.method == method]
        finals = np.array([h.final_best for h in runs])
        complete = bool(np.all(np.isfinite(finals)))  # every repeat has a complete trial
        hits = [times_to_target(h, target) for h in runs] if math.isfinite(target) else []
        seconds = tuple(s for s, _ in hits)
        rows.append(
            MethodInfo(
                name=runs[0].name,
                method=method,
                repeats=len(runs),
                median_trials=float(np.median([len(h.values) for h in runs])),
                median_seconds=float(np.median([h.seconds for h in runs])),
                final_best_median=float(np.median(finals)) if complete else math.nan,
                final_best_iqm=float(10 ** iqm(np.log10(finals))) if complete else math.nan,
                target=target,
                time_to_target=half_reached(seconds) if hits else math.nan,
                trials_to_target=half_reached([t for _, t in hits]) if hits else math.nan,
                reached=float(np.mean([math.isfinite(s) for s in seconds])) if hits else math.nan,
                speedup=math.nan,
                rank=0,
                seconds_to_target=seconds,
            )
        )
    base_row = next((r for r in rows if r.method == baseline), None)
    base = base_row.time_to_target if base_row is not None else math.nan
    order = sorted(rows, key=lambda r: (_nan_last(r.time_to_target), _nan_last(r.final_best_iqm)))
    out = [replace(r, speedup=_ratio(base, r.time_to_target), rank=order.index(r) + 1) for r in rows]
    if base_row is None or not math.isfinite(target):
        return out
    b = base_row.seconds_to_target
    return [r if r.method == baseline else replace(r, p_improvement=probability_of_improvement(r.seconds_to_target, b),
                                                   p_mann_whitney=slower_p(r.seconds_to_target, b))
            for r in out]  # fmt: skip


def _nan_last(v: float) -> float:
    return math.inf if math.isnan(v) else v


def _ratio(a: float, b: float) -> float:
    """a / b; NaN (a blank cell, never a "0x faster") where either time was never reached."""
    if not (math.isfinite(a) and math.isfinite(b) and b > 0):
        return math.nan
    return a / b


TABLE_COLUMNS = ["name", "method", "rank", "repeats", "median_trials", "median_seconds", "final_best_median",
                 "final_best_iqm", "target", "time_to_target", "trials_to_target", "reached", "speedup",
                 "p_improvement", "p_mann_whitney"]  # fmt: skip


def table_frame(infos: Sequence[MethodInfo]) -> pd.DataFrame:
    """The race table as a DataFrame, by rank; a time never reached is empty (NaN)."""
    frame = pd.DataFrame([asdict(i) for i in infos], columns=[*TABLE_COLUMNS, "seconds_to_target"])
    frame = frame[TABLE_COLUMNS].sort_values(["name", "rank"]).reset_index(drop=True)
    return frame.replace([np.inf, -np.inf], np.nan)


# ---------------------------------------------------------------- the verdict
def slower_p(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value that the times `a` are shorter than `b`; a repeat that
    never reached the target counts as slower than every one that did (ties among those)."""
    both = np.array([*a, *b], dtype=float)
    cap = (np.max(both[np.isfinite(both)]) + 1.0) if np.isfinite(both).any() else 1.0
    a2, b2 = np.where(np.isfinite(a), a, cap), np.where(np.isfinite(b), b, cap)
    if len(a2) == 0 or len(b2) == 0 or np.all(np.concatenate([a2, b2]) == a2[0]):
        return 1.0
    return float(stats.mannwhitneyu(a2, b2, alternative="less").pvalue)


def probability_of_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """rliable's probability of improvement on times: P(A < B) + P(A = B) / 2 over every pair
    of a repeat of `a` and one of `b` (never reached: inf, which ties with inf); NaN when empty."""
    x, y = np.asarray(a, dtype=float)[:, None], np.asarray(b, dtype=float)[None, :]
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(np.mean((x < y) + 0.5 * (x == y)))


def average_ranks(tables: Mapping[str, Sequence[MethodInfo]]) -> pd.DataFrame:
    """Each method's mean rank over the races (tasks) it ran in, best first: columns method,
    average_rank, tasks, and one rank column per race."""
    ranks = pd.DataFrame({name: {i.method: i.rank for i in infos} for name, infos in tables.items()})
    frame = pd.DataFrame({"method": ranks.index, "average_rank": ranks.mean(axis=1).to_numpy(),
                          "tasks": ranks.notna().sum(axis=1).to_numpy()})  # fmt: skip
    frame = pd.concat([frame, ranks.reset_index(drop=True)], axis=1)
    return frame.sort_values(["average_rank", "method"]).reset_index(drop=True)


def verdict(infos: Sequence[MethodInfo], signal: str, baseline: str = BASELINE) -> str:
    """Which method to use on this signal, and how sure that is, in words from the table."""
    if not infos:
        return f"**{signal}**: no race yet."
    by_rank = sorted(infos, key=lambda i: i.rank)
    best = by_rank[0]
    base = next((i for i in infos if i.method == baseline), None)
    if base is None or not math.isfinite(best.target):
        order = sorted(infos, key=lambda i: _nan_last(i.final_best_iqm))
        if not any(math.isfinite(i.final_best_iqm) for i in infos):
            return f"**{signal}**: no method has a complete trial in every repeat yet."
        return (
            f"**{signal}**: no {baseline} baseline (or too few of its repeats with a complete trial), so no target; "
            f"by IQM final best the methods rank {', '.join(i.method for i in order)}."
        )
    if not any(math.isfinite(i.time_to_target) for i in infos):
        return f"**{signal}**: no method reached the target in half of its repeats yet."
    plural = "s" if best.repeats != 1 else ""
    head = f"**{signal}** ({best.repeats} repeat{plural} per method; target {best.target:.3g}, {baseline}'s "
    head += "median final best): "
    runner = by_rank[1] if len(by_rank) > 1 else None
    if best.method == baseline:
        text = f"no method reached the target sooner than random search ({base.time_to_target:.3g} s)"
        if runner is not None:
            text += f"; the runner-up {runner.method} {_took(runner.time_to_target)}"
        return head + text + ", so random search is as good a choice as any tried."
    assert runner is not None  # the baseline is in the table too
    text = (f"use {best.method}: half of its repeats reached the target in {best.time_to_target:.3g} s "
            f"({best.reached:.0%} of them reached it at all), {best.speedup:.3g}x faster than random search "
            f"({base.time_to_target:.3g} s). ")  # fmt: skip
    p_base = slower_p(best.seconds_to_target, base.seconds_to_target)
    p_runner = slower_p(best.seconds_to_target, runner.seconds_to_target)
    poi = probability_of_improvement(best.seconds_to_target, base.seconds_to_target)
    test = (f"one-sided Mann-Whitney U on the repeats' times to target; probability that a repeat of it reaches "
            f"the target sooner than one of random search {poi:.2f}")  # fmt: skip
    if p_base >= SURE_P:
        text += (f"But with {best.repeats} repeat{plural} it cannot be told apart from random search "
                 f"(p = {p_base:.2g}; {test}): a lead, not a verdict.")  # fmt: skip
    elif runner.method == baseline:
        text += f"It beats random search, the runner-up (p = {p_base:.2g}; {test}): a clear choice."
    elif p_runner < SURE_P:
        text += (f"It is ahead of the runner-up {runner.method} (p = {p_runner:.2g}) and of random search "
                 f"(p = {p_base:.2g}; {test}): a clear choice.")  # fmt: skip
    else:
        text += (f"It beats random search (p = {p_base:.2g}; {test}), but the runner-up {runner.method} "
                 f"({_took(runner.time_to_target)}) cannot be told apart from it (p = {p_runner:.2g}): "
                 "either will do.")  # fmt: skip
    return head + text


def _took(seconds: float) -> str:
    return f"took {seconds:.3g} s" if math.isfinite(seconds) else "did not reach it in half of its repeats"
