from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.series.data import make_windows, split_indices
from harness.series.signals import SignalConfig, make_signal
from harness.training import evaluate
from harness.training.models import RecurrentRegressor


def test_linear_ar_is_exact_on_a_noiseless_sine_and_other_references_are_not() -> None:
    y = make_signal(SignalConfig())
    refs = evaluate.references(y, split_indices(1000, 2))
    assert refs["linear-ar"]["test_mse"] < 1e-20
    # persistence error on sin(wt): mean of (sin(w(t+1)) - sin(wt))^2 = 2 sin^2(w/2) over whole periods
    w = np.pi * 0.125
    assert refs["persistence"]["test_mse"] == pytest.approx(2 * np.sin(w / 2) ** 2, rel=0.05)
    assert refs["mean"]["test_mse"] == pytest.approx(0.5, rel=0.05)


def test_noise_sets_the_floor() -> None:
    y = make_signal(SignalConfig(noise_std=0.1, length=4000))
    refs = evaluate.references(y, split_indices(4000, 16))
    assert refs["linear-ar"]["test_mse"] == pytest.approx(0.01, rel=0.2)


def test_horizon_counts_steps_before_first_miss() -> None:
    truth = np.zeros(10)
    assert evaluate.horizon(np.array([0, 0.05, 0.2, 0, 0, 0, 0, 0, 0, 0.0]), truth) == 2
    assert evaluate.horizon(np.zeros(10), truth) == 10
    assert evaluate.horizon(np.array([np.nan] * 10), truth) == 0


@pytest.mark.parametrize("protocol", ["seed", "window"])
def test_rollout_feeds_the_model_its_own_predictions(protocol: str) -> None:
    y = make_signal(SignalConfig(length=200))
    data = make_windows(y, 4, "cpu")
    torch.manual_seed(0)
    model = RecurrentRegressor("gru", 4 if protocol == "seed" else 1, 6)
    free = evaluate.rollout(model, data, protocol)
    assert free.shape == (30,)
    # The second free-running step must see the first prediction, not the true value.
    w = data.splits.window
    first_input = torch.cat([data.x[data.splits.test.start][1:], free[:1]])
    with torch.no_grad():
        if protocol == "window":
            again = model(first_input.view(1, w, 1))[0][0, -1, 0]
            assert float(again) == pytest.approx(float(free[1]), abs=1e-6)
    one_step = evaluate.predict(model, data, protocol, data.splits.test)
    assert float(one_step[0]) == pytest.approx(float(free[0]), abs=1e-6)
