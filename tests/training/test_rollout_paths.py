"""Rolling-origin forecasts: many origins at once, each the model fed its own predictions."""

from __future__ import annotations

import numpy as np
import torch

from harness.series.data import make_windows
from harness.series.signals import SignalConfig, make_signal
from harness.training import evaluate
from harness.training.models import RecurrentRegressor


def test_paths_start_one_step_ahead_and_match_a_rollout() -> None:
    torch.manual_seed(0)
    model = RecurrentRegressor("gru", 1, 8, 1)
    y = make_signal(SignalConfig(length=200))
    data = make_windows(y, 6)
    origins = np.array([149, 160, 180])
    paths = evaluate.rollout_paths(model, data.series, origins, 6, 5)
    assert paths.shape == (3, 5)
    # step 1 is the one-step prediction of the window ending at each origin
    one = evaluate.predict(model, data, "window", slice(149 - 5, 149 - 4))
    assert torch.allclose(paths[0, 0], one[0])
    # step 2 from origin o is step 1 from a window whose last value is step 1's forecast
    window = torch.cat([data.series[145:150], paths[0, :1]])
    again = model(window.view(1, 6, 1))[0][:, -1, 0]
    assert torch.allclose(paths[0, 1], again[0])
