"""FlatAdam is torch's Adam: the same weights to the bit, on the machine the suite runs on."""

from __future__ import annotations

import pytest
import torch

from harness.series.signals import SignalConfig
from harness.training import train
from harness.training.adam import FlatAdam
from harness.training.models import RecurrentRegressor
from harness.training.train import RunConfig


def _steps(cell: str, dtype: torch.dtype, flat: bool, steps: int = 40) -> tuple[RecurrentRegressor, list[float]]:
    torch.manual_seed(0)
    model = RecurrentRegressor(cell, 1, 24).to(dtype)
    params = list(model.parameters())
    optimizer = FlatAdam(model.parameters(), lr=0.02) if flat else torch.optim.Adam(model.parameters(), lr=0.02)
    assert list(model.parameters()) == params  # the same Parameter objects, now views of one buffer
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 9, 1, generator=gen, dtype=dtype), torch.randn(64, generator=gen, dtype=dtype)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = ((model(x)[0][:, -1, 0] - y) ** 2).mean()
        loss.backward()
        if step == steps // 2:  # a gradient replaced from outside is the one used, by both
            model.fc.bias.grad = model.fc.bias.grad * 2
        optimizer.step()
        losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_flat_adam_trains_torchs_weights_to_the_bit(cell: str, dtype: torch.dtype) -> None:
    ours, our_losses = _steps(cell, dtype, flat=True)
    theirs, their_losses = _steps(cell, dtype, flat=False)
    assert our_losses == their_losses and our_losses[-1] < our_losses[0]
    for name, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name


def test_a_run_with_flat_adam_is_a_run_with_torchs(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the best epoch's weights copied out and loaded back (views of the flat
    buffer), the losses, the metrics; a window-protocol run on the long-period sine."""
    config = RunConfig(cell="gru", hidden_size=12, window=10, epochs=4, signal=SignalConfig(name="long-period"))
    ours = train.run(config, "cpu")
    monkeypatch.setattr(train, "FlatAdam", torch.optim.Adam)
    theirs = train.run(config, "cpu")
    assert ours.losses == theirs.losses and ours.val_mse_by_epoch == theirs.val_mse_by_epoch
    assert ours.metrics == theirs.metrics


def test_flat_adam_refuses_what_it_cannot_update() -> None:
    model = RecurrentRegressor("gru", 1, 4)
    with pytest.raises(ValueError, match="one dtype on one device"):
        FlatAdam([*model.rnn.parameters(), torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], lr=0.01)
    optimizer = FlatAdam(model.parameters(), lr=0.01)
    model.fc.weight.data = model.fc.weight.data.clone()  # as a .to() after the optimizer was built would
    with pytest.raises(RuntimeError, match="left FlatAdam's buffer"):
        optimizer.step()
