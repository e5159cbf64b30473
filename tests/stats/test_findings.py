"""Findings in words, from storages with planted answers: a clear winner, a tie, a period
that hurts, a window that helps, and missing replicates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial

from harness.search.confirm import replicate_frame
from harness.search.storage import open_storage
from harness.search.study import COMPANION_ATTR, COMPANION_SUFFIX
from harness.stats import findings, replicates

NOISE = np.array([1.0, 1.3, 0.8, 1.2, 0.9, 1.1])  # per-seed spread, the same on every seed list


def plant(storage: optuna.storages.BaseStorage, study: str, runs: dict[tuple[str, int], np.ndarray]) -> None:
    """Replicate runs of `study`: (cell, window) -> test MSE per seed; window 8 is the one found."""
    companion = optuna.create_study(study_name=study + COMPANION_SUFFIX, storage=storage, load_if_exists=True)
    companion.set_user_attr(COMPANION_ATTR, study)
    for (cell, window), values in runs.items():
        for seed, value in enumerate(values):
            attrs = {"config": {"cell": cell, "window": window}, "replicate_of": 0, "rank": 0, "seed": seed,
                     "found_window": 8, "test_mse": float(value), "rollout_mse": float(value),
                     "horizon": 150 if value < 1e-5 else 20}  # fmt: skip
            companion.add_trial(create_trial(value=float(value), user_attrs=attrs))


def facts(name: str, signal: str, budgets: dict[str, int] | None = None) -> findings.StudyFacts:
    persistence = 0.075 if signal == "short-period" else 0.0008
    return findings.StudyFacts(name, signal, 0.0, persistence, 1e-28, budgets or {"rnn": 20, "lstm": 20, "gru": 20})


@pytest.fixture
def frame(tmp_path: Path) -> object:
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}")
    # short: a clear winner (lstm, 100x below the others) and a tie between rnn and gru
    plant(storage, "short", {("lstm", 8): 1e-6 * NOISE, ("rnn", 8): 1e-4 * NOISE,
                             ("gru", 8): 1e-4 * NOISE[[1, 0, 3, 2, 5, 4]]})  # fmt: skip
    # long: every cell 10x worse than on the short signal, except the tie between lstm and gru;
    # a window of 32 helps the lstm 10x over 5, and makes no difference to the rnn
    plant(storage, "long", {("lstm", 8): 1e-5 * NOISE, ("rnn", 8): 1e-3 * NOISE,
                            ("gru", 8): 1e-5 * NOISE[[1, 0, 3, 2, 5, 4]],
                            ("lstm", 5): 1e-4 * NOISE, ("lstm", 32): 1e-5 * NOISE[[2, 3, 0, 1, 4, 5]],
                            ("rnn", 5): 1e-3 * NOISE, ("rnn", 32): 1e-3 * NOISE[[1, 0, 3, 2, 5, 4]]})  # fmt: skip
    return replicate_frame(storage, ["short", "long"])


def test_a_clear_winner_is_named_with_its_effect_and_test(frame: object) -> None:
    text = findings.cell_finding(facts("short", "short-period"), frame).text  # type: ignore[arg-type]
    gmean = 1e-6 * 10 ** np.log10(NOISE).mean()
    assert "the LSTM has the lowest test MSE" in text and f"{gmean:.2g}" in text and "over 6 seeds" in text
    assert f"{float(f'{0.075 / gmean:.2g}'):,.0f}x below persistence" in text  # 72,000x
    assert "It beats the GRU (100x higher, p < 0.001) and the RNN (100x higher, p < 0.001)" in text
    assert "Holm-adjusted" in text
    assert "20 search trials per cell" in text


def test_a_tie_is_called_a_tie(frame: object) -> None:
    text = findings.cell_finding(facts("long", "long-period"), frame).text  # type: ignore[arg-type]
    # lstm and gru got the same values on shuffled seeds: whichever is named first, the other ties
    assert "cannot be told apart from the GRU (1x higher" in text or "cannot be told apart from the LSTM (1x" in text
    assert "It beats the RNN (100x higher, p < 0.001)" in text


def test_unequal_budgets_are_stated(frame: object) -> None:
    uneven = facts("short", "short-period", {"rnn": 37, "lstm": 20, "gru": 3})
    text = findings.cell_finding(uneven, frame).text  # type: ignore[arg-type]
    assert "unequal search effort (rnn 37, lstm 20, gru 3 trials" in text


def test_the_long_period_hurts_by_the_planted_factor(frame: object) -> None:
    text = findings.period_finding(facts("short", "short-period"), facts("long", "long-period"), frame).text  # type: ignore[arg-type]
    assert "the LSTM 10x higher (p < 0.001)" in text and "the RNN 10x higher (p < 0.001)" in text
    assert "the GRU 10x lower (p < 0.001)" in text  # as planted: 1e-4 short, 1e-5 long
    assert "LSTM 150 vs " in text and "RNN 20 vs 20" in text  # free-running horizons, short vs long


def test_a_longer_window_helps_one_cell_and_not_another(frame: object) -> None:
    text = findings.window_finding(facts("long", "long-period"), frame).text  # type: ignore[arg-type]
    assert "the LSTM, window 32 vs 5: helps (10x lower test MSE, p < 0.001); best window" in text
    assert "the RNN, window 32 vs 5: cannot be told apart (MSE at 32 / at 5 = 1x" in text
    assert "of 5, 8, 32" in text and "on the same 6 seeds" in text
    # the short study was never swept: one window per cell is no sweep
    text = findings.window_finding(facts("short", "short-period"), frame).text  # type: ignore[arg-type]
    assert "no window sweep yet; run `harness confirm --study short --windows 2,5,10,20,32,64`" in text


def test_the_sweep_suggested_fits_the_search_space(frame: object) -> None:
    """A short series' spec allows windows up to 20: the command suggested must be one that runs."""
    short = dataclasses.replace(facts("nile", "nile"), max_window=20)
    text = findings.window_finding(short, frame).text  # type: ignore[arg-type]
    assert "run `harness confirm --study nile --windows 2,5,10,20`" in text
    assert findings.sweep_command(dataclasses.replace(short, max_window=3)).endswith("--windows 2")
    # a storage other than the default is in the command, so it runs as printed
    elsewhere = dataclasses.replace(short, storage="sqlite:///results/smoke.db")
    assert findings.sweep_command(elsewhere).startswith("harness confirm --storage sqlite:///results/smoke.db --study")


def test_holm_keeps_the_family_error() -> None:
    assert findings.holm([0.01, 0.04]) == [0.02, 0.04]
    assert findings.holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])


def test_missing_replicates_name_the_command(tmp_path: Path) -> None:
    empty = replicate_frame(open_storage(f"sqlite:///{tmp_path / 'h.db'}"), ["short"])
    found = findings.findings([facts("short", "short-period"), facts("long", "long-period")], empty)
    texts = {f.question: f.text for f in found}
    assert "no replicates yet" in texts["cells"] and "`harness confirm`" in texts["cells"]
    assert "`harness confirm`" in texts["period"]
    assert "no window sweep yet" in texts["window"] and "--windows" in texts["window"]
    md = findings.markdown(found)
    assert md.index("Which cell") < md.index("long period") < md.index("longer window")


def test_a_verdict_near_the_threshold_is_called_fragile_and_says_what_would_settle_it() -> None:
    assert not findings.fragile(0.001) and findings.fragile(0.02) and findings.fragile(0.036)
    assert findings.fragile(0.077) and findings.fragile(0.149) and not findings.fragile(0.2)
    assert not findings.fragile(float("nan"))
    # the README's LSTM window finding: p = 0.036 on one CPU, 0.077 on another; both fragile
    text = findings._sure(0.036, 9)
    assert text == "p = 0.036; fragile: about 9 seeds would settle it at this effect"
    assert findings._sure(0.0005, 9) == "p < 0.001"
    md = findings.markdown([findings.Finding("cells", "s", f"x ({text})")])
    assert "_Fragile_ marks a p-value within 3x of 0.05 (0.017 to 0.15)" in md


def test_seeds_to_settle_follows_the_power_of_a_t_test() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    base = 10 ** rng.normal(-6, 0.3, 5)
    shifted = base * 10 ** (0.3 + rng.normal(0, 0.3, 5))  # a paired effect of about one standard deviation
    n = replicates.seeds_to_settle(shifted, base, paired=True)
    assert n is not None and 5 <= n <= 20
    diff = np.log10(shifted) - np.log10(base)
    d = abs(diff.mean()) / diff.std(ddof=1)

    def power(k: int) -> float:
        crit = stats.t.ppf(0.975, k - 1)
        return float(stats.nct.sf(crit, k - 1, d * np.sqrt(k)) + stats.nct.cdf(-crit, k - 1, d * np.sqrt(k)))

    assert power(n) >= 0.8 > power(n - 1)  # the smallest seed count with 80% power
    assert replicates.seeds_to_settle(base, base, paired=True) is None  # no spread: no estimate
    two = replicates.seeds_to_settle(shifted, base, paired=False)
    assert two is not None and two >= 2
