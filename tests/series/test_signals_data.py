from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.series.data import make_windows, split_indices, window_arrays
from harness.series.signals import SIGNALS, SignalConfig, make_signal


def test_signals_are_the_notebooks_exactly() -> None:
    x_ = np.arange(1000)
    assert np.array_equal(make_signal(SignalConfig("short-period")), np.sin(np.pi * 0.125 * x_))
    assert np.array_equal(make_signal(SignalConfig("long-period")), np.sin(1 / 10 * np.pi * 0.125 * x_))
    assert SignalConfig("short-period").period == pytest.approx(16)
    assert SignalConfig("long-period").period == pytest.approx(160)


def test_signal_parameters_and_seeded_noise() -> None:
    base = make_signal(SignalConfig(length=50, amplitude=2.0, phase=0.5))
    assert base.shape == (50,) and base[0] == pytest.approx(2 * np.sin(0.5))
    noisy = SignalConfig(length=5000, noise_std=0.1, noise_seed=3)
    a, b = make_signal(noisy), make_signal(noisy)
    assert np.array_equal(a, b)
    assert np.std(a - make_signal(SignalConfig(length=5000))) == pytest.approx(0.1, rel=0.05)
    c = make_signal(noisy, rng=np.random.default_rng(4))
    assert not np.array_equal(a, c)


def test_unknown_signal_lists_names() -> None:
    with pytest.raises(ConfigError, match="allowed: " + ", ".join(SIGNALS)):
        SignalConfig("square")


def test_windows_match_notebook_construction() -> None:
    y = make_signal(SignalConfig())
    x, t = window_arrays(y, 5)
    assert x.shape == (995, 5) and t.shape == (995,)
    assert np.array_equal(x[10], y[10:15]) and t[10] == y[15]


@pytest.mark.parametrize("window", [1, 5, 64, 200])
def test_splits_are_chronological_and_fixed_in_time(window: int) -> None:
    s = split_indices(1000, window)
    # Targets (time = index + window): train < 700 <= val < 850 <= test < 1000, whatever W.
    assert s.train.start == 0 and s.train.stop + window == 700
    assert s.val.start + window == 700 and s.val.stop + window == 850
    assert s.test.start + window == 850 and s.test.stop == s.n == 1000 - window
    assert s.test_start_time == 850


def test_window_leaving_no_training_data_is_an_error() -> None:
    with pytest.raises(ConfigError, match="allowed: 1..699"):
        split_indices(1000, 700)


def test_tensors_are_built_once_on_the_device() -> None:
    y = make_signal(SignalConfig())
    w = make_windows(y, 8, "cpu")
    assert w.x.shape == (992, 8) and w.y.shape == (992,)
    assert w.x.dtype == w.y.dtype == w.series.dtype
    assert float(w.y[0]) == pytest.approx(y[8], abs=1e-7)
    assert w.y.data_ptr() == w.series[8:].data_ptr()  # targets are a view, not a copy
