"""Training on a collection: members compute what torch's layers compute, each member of a
local group trains as it would alone, a global model learns nothing from validation or test
values, and the forget-bias LSTM starts as the literature says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.series.collections import CollectionConfig, CompetitionSeries, load
from harness.training import collection
from harness.training.collection import CollectionRunConfig, prepare
from harness.training.members import Members
from harness.training.models import CELLS, RecurrentRegressor

SERIES = CollectionConfig(collection="m3", category="other", sample=4, sample_seed=1)


def _series(values: np.ndarray, h: int, name: str = "s") -> CompetitionSeries:
    return CompetitionSeries(name, "test", "test", values[:-h].copy(), values[-h:].copy(), h, 1)


@pytest.mark.parametrize("cell", list(CELLS))
def test_a_member_computes_what_torchs_layers_compute(cell: str) -> None:
    members = Members(cell, 5, 3, seed=7, dtype=torch.float64)
    with torch.no_grad():
        for p in members.parameters():  # members that differ, so a mix-up would show
            p.add_(torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(1)) * 0.1)
    x = torch.randn(3, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    out = members(x)
    for i in range(3):
        alone = members.member(i)
        expected, _ = alone(x[i].unsqueeze(-1))
        torch.testing.assert_close(out[i], expected[:, -1, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cell", list(CELLS))
def test_members_in_chunks_compute_and_learn_what_one_chunk_does_to_rounding(cell: str, dtype: torch.dtype) -> None:
    """The same predictions and weight gradients, to the dtype's rounding, whether 5 members
    run as chunks of 2 (the last of 1) or as one chunk of 5."""
    x = torch.randn(5, 4, 6, dtype=dtype, generator=torch.Generator().manual_seed(2))
    runs = []
    for chunk in (2, 5):
        members = Members(cell, 5, 5, seed=7, dtype=dtype, chunk=chunk)
        with torch.no_grad():
            for p in members.parameters():  # members that differ, so a chunk mixed up would show
                p.add_(torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(1)) * 0.1)
        out = members(x)
        (out**2).sum().backward()
        runs.append([out.detach()] + [p.grad for p in members.parameters()])
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_a_chunk_holds_about_chunk_bytes_of_gates_and_never_fewer_than_the_minimum() -> None:
    from harness.training.members import CHUNK_BYTES, MIN_CHUNK, chunk_size

    gru_16 = torch.zeros(1428, 32, 12)  # a minibatch of 32 windows per member; 3 gates x 16 units
    assert chunk_size(gru_16, 48) == CHUNK_BYTES // (32 * 48 * 4) and chunk_size(gru_16, 48) < 1428
    assert chunk_size(gru_16, 4 * 256) == MIN_CHUNK
    assert chunk_size(torch.zeros(1428, 1, 12), 48) >= 1428  # a forecast (one window each): one chunk
    assert chunk_size(torch.zeros(1428, 32, 12, device="meta"), 48) == 1428  # off the CPU: every member at once
    assert chunk_size(torch.zeros(1428, 0, 12), 48) == CHUNK_BYTES  # no windows: no division by zero


def test_members_start_from_the_weights_a_model_alone_draws_for_the_seed() -> None:
    members = Members("gru", 6, 2, seed=3, dtype=torch.float64)
    torch.manual_seed(3)
    alone = RecurrentRegressor("gru", 1, 6, fused=False).double()
    for i in range(2):
        for a, b in zip(members.member(i).parameters(), alone.parameters(), strict=True):
            assert torch.equal(a, b)


def test_the_forget_bias_lstm_starts_with_bias_one_on_the_forget_gate_and_zero_elsewhere() -> None:
    hidden = 7
    torch.manual_seed(5)
    fb = RecurrentRegressor("lstm-fb1", 1, hidden, fused=False)
    torch.manual_seed(5)
    plain = RecurrentRegressor("lstm", 1, hidden, fused=False)
    bias = (fb.rnn.bias_ih_l0 + fb.rnn.bias_hh_l0).detach()
    gates = bias.view(4, hidden)  # torch's order: input, forget, cell, output
    assert torch.equal(gates[1], torch.ones(hidden))
    assert torch.equal(gates[[0, 2, 3]], torch.zeros(3, hidden))
    assert torch.equal(fb.rnn.weight_hh_l0, plain.rnn.weight_hh_l0)  # the weights are nn.LSTM's draw
    assert torch.equal(fb.rnn.weight_ih_l0, plain.rnn.weight_ih_l0)
    assert not torch.equal(fb.rnn.bias_ih_l0, plain.rnn.bias_ih_l0)


@pytest.mark.parametrize("cell", ["rnn", "lstm-fb1", "gru"])
def test_each_member_of_a_local_group_trains_as_it_would_alone(cell: str) -> None:
    """float64: every series' validation and test scores and test forecasts, trained in one
    group of four, equal those of the same series trained alone (within 1e-6 relative)."""
    series = load(SERIES)
    config = CollectionRunConfig(collection=SERIES, scope="local", cell=cell, hidden_size=5, window=6, lr=0.02,
                                 epochs=4, batch_size=8, precision="fp64")  # fmt: skip
    together = collection.run(config, "cpu", series=series)
    assert together.epochs_run == 4 and not together.diverged
    for i, s in enumerate(series):
        alone = collection.run(config, "cpu", series=[s])
        np.testing.assert_allclose(together.forecasts[i], alone.forecasts[0], rtol=1e-6)
        for name in ("val_smape", "val_mase", "test_smape", "test_mase"):
            assert together.series[name][i] == pytest.approx(alone.series[name][0], rel=1e-6)
    assert together.metrics["val_smape"] == pytest.approx(np.mean(together.series["val_smape"]))


def test_a_global_model_learns_nothing_from_validation_or_test_values() -> None:
    """Changing every series' validation values (the last h of its training part) and its test
    values leaves the scale and every training loss as they were: only the fit part trains."""
    rng = np.random.default_rng(0)
    h = 4
    base = [np.cumsum(rng.normal(1, 1, 30)) + 50 for _ in range(3)]
    series = [_series(v, h, f"s{i}") for i, v in enumerate(base)]
    changed = []
    for s in series:
        x = s.x.copy()
        x[-h:] *= 3
        changed.append(dataclasses.replace(s, x=x, xx=s.xx * 10 + 7))
    config = CollectionRunConfig(scope="global", cell="gru", hidden_size=4, window=5, epochs=5, batch_size=16)
    first, second = (collection.run(config, "cpu", series=s) for s in (series, changed))
    assert first.losses == second.losses
    a, b = (prepare(s, 5, torch.device("cpu"), torch.float64) for s in (series, changed))
    assert np.array_equal(a.scale, b.scale) and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert first.metrics["test_smape"] != second.metrics["test_smape"]  # the scores did read the new values


def test_windows_are_relative_to_their_last_value_and_scaled_by_the_fit_parts_changes() -> None:
    s = _series(np.array([10.0, 12.0, 11.0, 15.0, 14.0, 20.0, 21.0, 99.0, 99.0]), h=2)  # fit 10, 12, 11, 15, 14
    data = prepare([s], 3, torch.device("cpu"), torch.float64)
    scale = np.mean([2, 1, 4, 1])
    assert data.scale[0] == scale and int(data.count[0]) == 4
    # the target 15 after the window (12, 11): padded in front with 10, relative to 11
    np.testing.assert_allclose(data.x[0, 2].numpy(), np.array([10 - 11, 12 - 11, 0]) / scale)
    assert data.y[0, 2].item() == pytest.approx((15 - 11) / scale)


def test_a_bad_scope_or_cell_names_the_key() -> None:
    with pytest.raises(ConfigError, match="scope"):
        CollectionRunConfig(scope="regional")
    with pytest.raises(ConfigError, match="cell"):
        CollectionRunConfig(cell="transformer")
