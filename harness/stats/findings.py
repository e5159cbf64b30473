"""Findings in words: the notebook's three questions answered from the numbers.

Generated from the replicate runs of `harness confirm`, never written by hand: which cell
predicts each signal best, whether the ten-times-longer period hurts, and whether a longer
window helps. Each answer states the effect (a ratio of geometric-mean test MSEs), a
reference (persistence, and the linear or noise floor), and how sure it is (the test, its
p-value, the number of seeds), and says "cannot be told apart" when that is the honest
answer. Without replicates it says which command supplies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from harness.stats.replicates import POWER, best_config_only, paired_log_t, seeds_to_settle, summary, sweep_only
from harness.stats.significance import ALPHA, FRAGILE, fragile

NOTEBOOK_WINDOWS = (5, 32)  # the notebook's two input sizes: the window question compares them
CONFIRM = "harness confirm"
SWEEP_WINDOWS = (2, 5, 10, 20, 32, 64)  # the main job's sweep (Makefile WINDOWS)


@dataclass(frozen=True)
class StudyFacts:
    """What the findings need of one study (one signal), besides its replicates."""

    name: str
    signal: str  # short-period, long-period
    noise_std: float
    persistence_mse: float  # test MSE of predicting the last value
    floor_mse: float  # test MSE of the best linear autoregression (exact on a noiseless sine)
    budgets: dict[str, int] = field(default_factory=dict)  # trials each cell's search got
    # A real series: read in MASE, against the baseline best on validation (harness.series.compare)
    real: bool = False
    baseline: str = ""  # what it is, e.g. "linear AR(4)"
    baseline_mase: float = float("nan")  # its test MASE
    search_mase: dict[str, float] = field(default_factory=dict)  # each cell's best search trial's test MASE
    max_window: int = SWEEP_WINDOWS[-1]  # the longest window the spec's search allows (a short series allows few)
    storage: str = ""  # the study's storage URL (redacted), where it is not the default one


def sweep_command(facts: StudyFacts) -> str:
    """The confirm command that would sweep this study's windows: the main job's windows that
    its search space allows (a sweep past them would refuse to start)."""
    windows = [w for w in SWEEP_WINDOWS if w <= facts.max_window] or [facts.max_window]
    storage = f" --storage {facts.storage}" if facts.storage else ""  # copied as printed, it finds the study
    return f"{CONFIRM}{storage} --study {facts.name} --windows {','.join(map(str, windows))}"


@dataclass(frozen=True)
class Finding:
    question: str  # "cells", "baseline", "period" or "window"
    study: str  # the study it is about ("" for a comparison across studies)
    text: str


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "no test possible"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _sure(p: float, settle: int | None) -> str:
    """The p-value, and for a fragile one the words that say so and the seeds that would settle it."""
    if not fragile(p):
        return _p(p)
    seeds = f"about {settle} seeds would settle it at this effect" if settle else "more seeds would settle it"
    return f"{_p(p)}; fragile: {seeds}"


def _x(ratio: float) -> str:
    """A ratio as people read one: 1.33x, 100x, 72,000x, 2.7e+21x."""
    if ratio < 100:
        return f"{ratio:.3g}x"
    if ratio < 1e6:
        return f"{float(f'{ratio:.2g}'):,.0f}x"
    return f"{ratio:.1e}x"


def _budget(budgets: dict[str, int]) -> str:
    if not budgets:
        return ""
    counts = set(budgets.values())
    if len(counts) == 1:
        n = counts.pop()
        return f"{n} search trial{'s' if n != 1 else ''} per cell"
    spread = ", ".join(f"{c} {n}" for c, n in budgets.items())
    return f"unequal search effort ({spread} trials; `equal_cells = true` in the spec makes it fair)"


def _floor(f: StudyFacts) -> str:
    if f.noise_std > 0:
        return f"noise floor {f.noise_std**2:.2g}"
    return f"linear-AR floor {f.floor_mse:.2g}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: several comparisons of one question at once, with the
    chance of any false "beats" kept at ALPHA."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [np.nan] * len(p_values), 0.0
    for rank, i in enumerate(order):
        if np.isfinite(p_values[i]):
            running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
            adjusted[i] = running
    return adjusted


def cell_finding(facts: StudyFacts, frame: pd.DataFrame) -> Finding:
    """Which cell predicts this signal best, and is it more than the luck of a seed?"""
    runs = best_config_only(frame[frame["study"] == facts.name])
    budget = _budget(facts.budgets)
    head = f"**{facts.name}**" + (f" ({budget})" if budget else "")
    if runs.empty:
        return Finding("cells", facts.name, f"{head}: no replicates yet, so the cells cannot be compared beyond one "
                                            f"lucky or unlucky seed each; run `{CONFIRM}`.")  # fmt: skip
    metric, words = ("test_mase", "test MASE") if facts.real else ("test_mse", "test MSE")
    by_cell = {cell: g.set_index("seed")[metric] for cell, g in runs.groupby("cell")}
    # ranked and compared on the seeds every cell ran, so the ratios below all point one way
    common = sorted(set.intersection(*(set(v.index) for v in by_cell.values())))
    if not common:
        return Finding("cells", facts.name, f"{head}: the cells' replicates share no seed; run `{CONFIRM}`.")
    by_cell = {cell: v.loc[common] for cell, v in by_cell.items()}
    gmeans = {cell: summary(v.to_numpy(), "test_mse")[0] for cell, v in by_cell.items()}  # geometric means
    order = sorted(gmeans, key=lambda c: gmeans[c])
    best = order[0]
    if facts.real:
        text = (f"{head}: the {best.upper()} has the lowest test MASE, {gmeans[best]:.3g} (geometric mean over "
                f"{len(common)} seeds).")  # fmt: skip
        return Finding("cells", facts.name, _versus(text, best, order, by_cell, words))
    vs_persistence = facts.persistence_mse / gmeans[best] if gmeans[best] > 0 else np.inf
    against = f"{_x(vs_persistence)} below" if vs_persistence >= 1 else f"{_x(1 / vs_persistence)} above"
    text = (f"{head}: the {best.upper()} has the lowest test MSE, {gmeans[best]:.2g} (geometric mean over "
            f"{len(common)} seeds), {against} persistence ({facts.persistence_mse:.2g}); {_floor(facts)}.")  # fmt: skip
    return Finding("cells", facts.name, _versus(text, best, order, by_cell, words))


def _versus(text: str, best: str, order: list[str], by_cell: dict[str, pd.Series], words: str) -> str:
    """The best cell against each other cell on the same seeds, Holm-adjusted."""
    tests = [paired_log_t(by_cell[other].to_numpy(), by_cell[best].to_numpy()) for other in order[1:]]
    adjusted = holm([p for _, p in tests])
    beaten: list[str] = []
    tied: list[str] = []
    for other, (ratio, _), p in zip(order[1:], tests, adjusted, strict=True):
        settle = seeds_to_settle(by_cell[other].to_numpy(), by_cell[best].to_numpy(), paired=True)
        phrase = f"the {other.upper()} ({_x(ratio)} higher, {_sure(p, settle)})"
        (beaten if p < ALPHA else tied).append(phrase)
    if beaten:
        text += f" It beats {' and '.join(beaten)}"
        text += f"; it cannot be told apart from {' or '.join(tied)}." if tied else "."
    elif tied:
        text += f" But it cannot be told apart from {' or '.join(tied)}."
    if len(order) > 1:
        text += f" (Paired t-test on log {words} over the same seeds, Holm-adjusted.)"
    return text


def baseline_finding(facts: StudyFacts, frame: pd.DataFrame) -> Finding:
    """A real series: does any cell beat forecasting's best baseline? The baseline best on
    validation, named; each cell's test MASE over the baseline's (geometric mean over seeds)
    and a t-test of log10(cell MASE / baseline MASE) against 0 over the seeds: the baseline
    is deterministic, so pairing each seed with it is a one-sample test on the log ratios."""
    head = f"**{facts.name}**: the best baseline on validation is {facts.baseline}"
    head += f" (test MASE {facts.baseline_mase:.3g})"
    runs = best_config_only(frame[frame["study"] == facts.name])
    if runs.empty:
        if not facts.search_mase:
            return Finding("baseline", facts.name, f"{head}; no cell has finished a trial yet.")
        best = min(facts.search_mase, key=lambda c: facts.search_mase[c])
        ratio = facts.search_mase[best] / facts.baseline_mase
        verdict = "below" if ratio < 1 else "above"
        article = "an" if best.upper()[0] in "AEFHILMNORSX" else "a"  # as the letters are read: an RNN, a GRU
        return Finding("baseline", facts.name, f"{head}. The best search trial, {article} {best.upper()}, has test "
                       f"MASE {facts.search_mase[best]:.3g}, {_x(ratio)} the baseline's ({verdict} it), on one seed: "
                       f"run `{CONFIRM}` for a verdict.")  # fmt: skip
    phrases, beats = [], []
    tests: dict[str, tuple[float, float, int]] = {}
    for cell, g in runs.groupby("cell", sort=False):
        mase = g["test_mase"].to_numpy(float)
        mase = mase[np.isfinite(mase) & (mase > 0)]
        logs = np.log10(mase / facts.baseline_mase)
        ratio = float(10 ** logs.mean()) if len(logs) else np.nan
        p = float(stats.ttest_1samp(logs, 0.0).pvalue) if len(logs) > 1 and np.ptp(logs) > 0 else np.nan
        tests[str(cell)] = (ratio, p, len(logs))
    cells = sorted(tests, key=lambda c: tests[c][0])
    adjusted = dict(zip(cells, holm([tests[c][1] for c in cells]), strict=True))
    for cell in cells:
        ratio, _, n = tests[cell]
        p = adjusted[cell]
        if p < ALPHA and ratio < 1:
            beats.append(cell)
            phrases.append(f"the {cell.upper()} beats it (MASE {_x(ratio)} the baseline's, {_p(p)})")
        elif p < ALPHA:
            phrases.append(f"the {cell.upper()} is worse ({_x(ratio)} the baseline's MASE, {_p(p)})")
        else:
            phrases.append(f"the {cell.upper()} cannot be told apart from it ({_x(ratio)} its MASE, {_p(p)})")
    n = min(t[2] for t in tests.values())
    if beats:
        who = " and ".join(f"the {c.upper()}" for c in beats)
        summary_words = f"{who} beat{'s' if len(beats) == 1 else ''} {facts.baseline}"
    else:
        summary_words = f"no recurrent cell beats {facts.baseline} here"
    text = (f"{head}; {'; '.join(phrases)}. In short: {summary_words}. (Test MASE over {n} seeds of each cell's best "
            "configuration; t-test on log10 of the ratio to the baseline's MASE, Holm-adjusted.)")  # fmt: skip
    return Finding("baseline", facts.name, text)


def period_finding(short: StudyFacts, long: StudyFacts, frame: pd.DataFrame) -> Finding:
    """Does the ten-times-longer period hurt? Per cell, long vs short test MSE and horizon."""
    a = best_config_only(frame[frame["study"] == short.name])
    b = best_config_only(frame[frame["study"] == long.name])
    cells = [c for c in dict.fromkeys(a["cell"]) if c in set(b["cell"])]
    if not cells:
        return Finding("period", "", f"**Long vs short period**: needs replicates of both studies; run `{CONFIRM}`.")
    phrases, horizons = [], []
    for cell in cells:
        x = a[a["cell"] == cell]["test_mse"].to_numpy(float)
        y = b[b["cell"] == cell]["test_mse"].to_numpy(float)
        settle = seeds_to_settle(y, x, paired=False)
        x, y = np.log10(x[x > 0]), np.log10(y[y > 0])
        ratio = float(10 ** (y.mean() - x.mean()))  # long over short
        p = float(stats.ttest_ind(y, x, equal_var=False).pvalue) if min(len(x), len(y)) > 1 else np.nan
        if p < ALPHA:
            phrases.append(f"the {cell.upper()} {_x(ratio) if ratio >= 1 else _x(1 / ratio)} "
                           f"{'higher' if ratio >= 1 else 'lower'} ({_sure(p, settle)})")  # fmt: skip
        else:
            phrases.append(f"the {cell.upper()} cannot be told apart (long/short {_x(ratio)}, {_sure(p, settle)})")
        h_short = a[a["cell"] == cell]["horizon"].mean()
        h_long = b[b["cell"] == cell]["horizon"].mean()
        horizons.append(f"{cell.upper()} {h_short:.0f} vs {h_long:.0f}")
    text = (f"**Long vs short period**: test MSE on the long period against the short one: {'; '.join(phrases)} "
            f"(Welch t-test on log test MSE).")  # fmt: skip
    if long.persistence_mse > 0 and short.persistence_mse > 0:
        text += (f" Persistence is {_x(short.persistence_mse / long.persistence_mse)} more accurate on the slow "
                 "signal, so errors are best read against it (above).")  # fmt: skip
    text += (f" Free-running, the mean horizon in steps (short vs long, of {int(a['max_horizon'].max())}): "
             f"{', '.join(horizons)}.")  # fmt: skip
    return Finding("period", "", text)


def window_finding(facts: StudyFacts, frame: pd.DataFrame) -> Finding:
    """Does a longer window help? Each cell's best configuration re-trained across windows:
    the notebook's two windows compared where the sweep has both, else its shortest and
    longest."""
    runs = sweep_only(frame[frame["study"] == facts.name])
    if runs.empty:
        return Finding("window", facts.name, f"**{facts.name}**: no window sweep yet; run `{sweep_command(facts)}`.")
    phrases = []
    for cell, g in runs.groupby("cell", sort=False):
        windows = sorted(set(g["window"]))
        short_w, long_w = NOTEBOOK_WINDOWS if set(NOTEBOOK_WINDOWS) <= set(windows) else (windows[0], windows[-1])
        x = g[g["window"] == short_w].set_index("seed")["test_mse"]
        y = g[g["window"] == long_w].set_index("seed")["test_mse"]
        seeds = sorted(set(x.index) & set(y.index))
        if not seeds:
            continue  # the two windows share no seed: nothing to pair
        ratio, p = paired_log_t(y.loc[seeds].to_numpy(), x.loc[seeds].to_numpy())  # < 1: the longer window is better
        sure = _sure(p, seeds_to_settle(y.loc[seeds].to_numpy(), x.loc[seeds].to_numpy(), paired=True))
        gm = {w: summary(gw["test_mse"].to_numpy(), "test_mse")[0] for w, gw in g.groupby("window")}
        best_w = min(gm, key=lambda w: gm[w])
        if p < ALPHA:
            verdict = (f"helps ({_x(1 / ratio)} lower test MSE, {sure})" if ratio < 1
                       else f"hurts ({_x(ratio)} higher test MSE, {sure})")  # fmt: skip
        else:
            verdict = f"cannot be told apart (MSE at {long_w} / at {short_w} = {_x(ratio)}, {sure})"
        phrases.append(f"the {cell.upper()}, window {long_w} vs {short_w}: {verdict}; best window {best_w} "
                       f"of {', '.join(map(str, windows))}")  # fmt: skip
    if not phrases:
        text = f"**{facts.name}**: the sweep's windows share no seed; run `{sweep_command(facts)}`."
        return Finding("window", facts.name, text)
    seeds_n = runs.groupby(["cell", "window"])["seed"].nunique().min()
    text = (f"**{facts.name}**: {'; '.join(phrases)} (each cell's best configuration re-trained at each window on "
            f"the same {seeds_n} seeds; paired t-test on log test MSE).")  # fmt: skip
    return Finding("window", facts.name, text)


def _pairs(facts: Sequence[StudyFacts]) -> list[tuple[StudyFacts, StudyFacts]]:
    """(short, long) studies of the same noise level: the period question's comparisons."""
    shorts = [f for f in facts if f.signal == "short-period"]
    longs = [f for f in facts if f.signal == "long-period"]
    return [(s, g) for s in shorts for g in longs if s.noise_std == g.noise_std]


def findings(facts: Sequence[StudyFacts], frame: pd.DataFrame) -> list[Finding]:
    """Every finding, in the notebook's order: cells per signal, the period, the window."""
    out = [cell_finding(f, frame) for f in facts]
    out += [baseline_finding(f, frame) for f in facts if f.real]
    out += [period_finding(s, g, frame) for s, g in _pairs(facts)]
    out += [window_finding(f, frame) for f in facts]
    return out


def markdown(found: Sequence[Finding]) -> str:
    titles = {"cells": "Which cell predicts best?", "baseline": "Does any cell beat forecasting's baselines?",
              "period": "Does the long period hurt?",
              "window": "Does a longer window help?"}  # fmt: skip
    lines = []
    for question, title in titles.items():
        items = [f for f in found if f.question == question]
        if items:
            lines += [f"**{title}**", "", *[f"- {f.text}" for f in items], ""]
    if any("fragile:" in f.text for f in found):
        lines += [f"_Fragile_ marks a p-value within {FRAGILE:g}x of {ALPHA:g} ({ALPHA / FRAGILE:.2g} to "
                  f"{ALPHA * FRAGILE:.2g}): its verdict could change with a few more seeds or on another CPU, whose "
                  f"float rounding differs; the seeds quoted give a t-test {POWER:.0%} power at the effect observed.",
                  ""]  # fmt: skip
    return "\n".join(lines)
