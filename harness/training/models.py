"""The recurrent regressor: a recurrent layer (rnn, lstm or gru) and a linear head.

Built in the notebook's order, recurrent layer first and then `nn.Linear(hidden, 1)`, so
that a seed set right before construction draws the same initial weights as the
notebook's `RNN` and `LSTM` classes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.constraints import OneOf, check
from harness.training import fused as fused_kernels

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


def _rnn(input_size: int, hidden_size: int, num_layers: int) -> nn.RNNBase:
    # Exactly the notebook's call: tanh, bias, batch_first, no dropout.
    return nn.RNN(input_size, hidden_size, num_layers, bias=True, batch_first=True, nonlinearity="tanh", dropout=0)


def _lstm(input_size: int, hidden_size: int, num_layers: int) -> nn.RNNBase:
    return nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=0)


def _gru(input_size: int, hidden_size: int, num_layers: int) -> nn.RNNBase:
    return nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=0)


def _lstm_forget_bias(input_size: int, hidden_size: int, num_layers: int) -> nn.RNNBase:
    """An LSTM whose forget gate's bias starts at 1 and every other bias at 0 (Jozefowicz,
    Zaremba & Sutskever, ICML 2015: it "closes the gap between the LSTM and the GRU"). Its
    weights are `nn.LSTM`'s draw for the same seed: the biases are drawn, then set."""
    lstm = _lstm(input_size, hidden_size, num_layers)
    with torch.no_grad():
        for layer in range(num_layers):
            getattr(lstm, f"bias_hh_l{layer}").zero_()
            bias = getattr(lstm, f"bias_ih_l{layer}").zero_()
            bias[hidden_size : 2 * hidden_size] = 1.0  # torch's gate order: input, forget, cell, output
    return lstm


CELLS: dict[str, Callable[[int, int, int], nn.RNNBase]] = {
    "rnn": _rnn,
    "lstm": _lstm,
    "gru": _gru,
    "lstm-fb1": _lstm_forget_bias,
}
CELL = OneOf(CELLS, "cell")  # the rule of every config field that names a cell
KINDS = {"rnn": "rnn", "lstm": "lstm", "gru": "gru", "lstm-fb1": "lstm"}  # the layer each cell is


def kind(cell: str) -> str:
    """The layer a cell is (`rnn`, `gru` or `lstm`): what kernels and cost models key on."""
    return KINDS[cell]


def check_cell(cell: str) -> str:
    checked: str = check("cell", cell, CELL)
    return checked


class RecurrentRegressor(nn.Module):
    """Maps (batch, time, input_size) to one prediction per time step.

    On the CPU, rnn and gru layers run through `harness.training.fused` where it is faster than
    torch's own kernels (`fused=None`, the default); `fused=False` forces torch's path.
    The parameters are the same `nn.RNN`/`nn.GRU` ones either way.
    """

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, fused: bool | None = None
    ) -> None:
        super().__init__()
        self.cell = check_cell(cell)
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers)
        self.fc = nn.Linear(hidden_size, 1)
        self.fused = fused_kernels.available() if fused is None else fused

    def forward(self, inputs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        if (
            self.fused
            and fused_kernels.supports(self.rnn, inputs)
            and fused_kernels.worthwhile(inputs.shape[0], self.rnn.hidden_size)
        ):
            assert state is None or isinstance(state, torch.Tensor)
            out, state = fused_kernels.recurrent(self.rnn, inputs, state)
        else:
            out, state = self.rnn(inputs, state)
        return self.fc(out), state


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
