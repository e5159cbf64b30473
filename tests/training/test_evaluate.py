from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.series.data import make_windows, split_indices
from harness.series.signals import SignalConfig, make_signal
from harness.training import evaluate, rollout_kernels, train
from harness.training.models import RecurrentRegressor
from harness.training.train import RunConfig


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


def _model_rollout(model: RecurrentRegressor, start: torch.Tensor, steps: int) -> torch.Tensor:
    """The rollout as the model's forward gives it, one call a step, through torch's own layers
    (not the fused numba recurrence, which the loop must not merely agree with): the reference."""
    w = len(start)
    buffer = torch.cat([start, start.new_empty(steps)])
    fused, model.fused = model.fused, False
    try:
        with torch.no_grad():
            for k in range(steps):
                buffer[w + k] = model(buffer[k : k + w].view(1, w, 1))[0][0, -1, 0]
    finally:
        model.fused = fused
    return buffer[w:]


@pytest.mark.parametrize(
    "cell,hidden,window",
    [("rnn", 32, 16), ("gru", 32, 16), ("lstm", 32, 16), pytest.param("gru", 120, 40, marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_compiled_rollout_is_the_models_own(cell: str, hidden: int, window: int, dtype: torch.dtype) -> None:
    """The one-loop rollout of a small model gives the model's own predictions: to float32
    rounding (the same products summed in another order, approximate gates), and to 1e-12 in float64."""
    precision = "fp64" if dtype == torch.float64 else "fp32"
    config = RunConfig(cell=cell, hidden_size=hidden, window=window, epochs=4, lr=0.01, seed=0, precision=precision)
    model = train.run(config, "cpu").model  # trained: its rollout follows the sine
    data = make_windows(make_signal(SignalConfig()), window, "cpu", dtype=dtype)
    assert model is not None and rollout_kernels.applies(model, data.x.device)
    free = evaluate.rollout(model, data, "window")
    reference = _model_rollout(model, data.x[data.splits.test.start], len(free))
    assert free.dtype == dtype and free.shape == reference.shape == (150,)
    assert float(reference.std()) > 0.3  # a rollout that oscillates, not a constant
    # float32: the loop's SIMD tanh (`fast_math`, within 6 ulp where torch's is within 1) over
    # 150 free-running steps, each fed the last: 1.4e-5 at most here (GRU 120 x 40)
    tol = 1e-12 if dtype == torch.float64 else 5e-5
    assert torch.allclose(free, reference, rtol=tol, atol=tol), float((free - reference).abs().max())


def test_a_two_layer_model_rolls_out_through_its_own_forward() -> None:
    """A model the loop does not cover (two layers) rolls out through its own forward, exactly."""
    data = make_windows(make_signal(SignalConfig()), 64, "cpu")
    torch.manual_seed(0)
    model = RecurrentRegressor("lstm", 1, 85, num_layers=2)
    assert not rollout_kernels.applies(model, data.x.device)
    free = evaluate.rollout(model, data, "window")
    assert torch.equal(free, _model_rollout(model, data.x[data.splits.test.start], len(free)))
