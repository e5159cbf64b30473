from __future__ import annotations

import pytest
import torch

from harness.errors import ConfigError
from harness.training.models import RecurrentRegressor

from conftest import CELLS
from notebook_port import CLASSES


@pytest.mark.parametrize("cell", CELLS)
def test_seeded_construction_matches_notebook_classes(cell: str) -> None:
    torch.manual_seed(42)
    theirs = CLASSES[cell](5, 30)
    torch.manual_seed(42)
    ours = RecurrentRegressor(cell, 5, 30)
    a, b = list(theirs.state_dict().values()), list(ours.state_dict().values())
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes(cell: str) -> None:
    model = RecurrentRegressor(cell, 1, 8, num_layers=2)
    out, state = model(torch.zeros(4, 7, 1))
    assert out.shape == (4, 7, 1)
    assert state is not None


def test_rnn_cell_is_tanh() -> None:
    assert RecurrentRegressor("rnn", 1, 4).rnn.nonlinearity == "tanh"  # type: ignore[union-attr]


def test_bad_cell_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="allowed: rnn, lstm, gru"):
        RecurrentRegressor("transformer", 1, 4)
