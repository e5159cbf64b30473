"""What a run costs, roughly: enough to start the longest work first, not to predict a time.

`side_by_side` orders studies by it and `confirm` its runs, so that the last to finish is a
short one. Pure arithmetic on a config, no torch.
"""

from __future__ import annotations

from typing import Protocol

from harness.training.models import kind

# Below this hidden size a step's cost is per-operation overhead, not arithmetic: a run of
# hidden 8 costs about what one of hidden 32 does.
ARITHMETIC_FROM = 32

# An epoch's time relative to the RNN's at one size, trained alone on one thread.
CELL_WEIGHT = {"rnn": 1.0, "lstm": 2.0, "gru": 2.5}


class Sized(Protocol):
    """What the estimate reads of a config: a run's (`RunConfig`) or a collection's."""

    @property
    def epochs(self) -> int: ...
    @property
    def window(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def cell(self) -> str: ...


def estimated_work(config: Sized) -> float:
    """A run's work in arbitrary units: epochs x window x squared hidden size (at least
    `ARITHMETIC_FROM`) x its cell's weight."""
    h = max(config.hidden_size, ARITHMETIC_FROM)
    return config.epochs * config.window * h * h * CELL_WEIGHT[kind(config.cell)]
