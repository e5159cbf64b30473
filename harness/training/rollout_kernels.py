"""The window protocol's free-running rollout of a small model in one compiled loop.

Why: every trial ends with a rollout across the test region (150 steps on the sines), and each
step runs the model on its W latest values from a zero state, one batch-1 call at a time. For
the small models that train in about a second, that was most of the time a trial spends
outside training: torch's fixed cost per call (~100-130 us for the layer and head, whichever
cell) times 150 steps, 15-35 ms at hidden 32, window 16, against 3-6 ms for the same
arithmetic in one numba loop, which beats oneDNN's LSTM too at every size measured.

The numbers are the model's own up to float rounding (the same products summed in another
order, float32 gates through `fast_math`'s SIMD tanh and sigmoid: within 5e-5 in float32 and
1e-12 in float64 of torch's own layers, `tests/training/test_evaluate.py`). Conventions are PyTorch's:
gates i, f, g, o for the LSTM, r, z, n for the GRU with n = tanh(W_in x + b_in + r (W_hn h + b_hn)).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from harness.training import fused
from harness.training.fast_math import sigmoid, tanh
from harness.training.models import RecurrentRegressor, kind

CELL_CODES = {"rnn": 0, "gru": 1, "lstm": 2}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# Every cell's rollout runs here: at every size of the default spaces the compiled loop (its
# gates SIMD arithmetic, `fast_math`) is faster than one torch call per step, which pays a
# dispatch per step (`tests/benchmarks/test_bench_train.py` times both).


@numba.njit(cache=True, error_model="numpy")  # no zero check on divisions: the loops vectorise
def _rollout(
    cell: int,
    buffer: np.ndarray,
    window: int,
    w_ih: np.ndarray,
    w_hh_t: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
    head_w: np.ndarray,
    head_b: float,
) -> None:
    """Fill buffer[window:] in place: each value is the model's prediction from the `window`
    values before it, from a zero state. w_ih (G*H,) is the one input column, w_hh_t (H, G*H)."""
    hidden = w_hh_t.shape[0]
    one = np.ones(1, dtype=buffer.dtype)[0]  # not 1.0, which would make the gates' arithmetic double
    h = np.zeros(hidden, dtype=buffer.dtype)
    c = np.zeros(hidden, dtype=buffer.dtype)
    for k in range(buffer.shape[0] - window):
        h[:] = 0.0
        c[:] = 0.0
        for t in range(window):
            x = buffer[k + t]
            g = np.dot(h, w_hh_t)
            for j in range(hidden):
                if cell == 0:
                    h[j] = tanh(w_ih[j] * x + b_ih[j] + g[j] + b_hh[j])
                elif cell == 1:
                    r = sigmoid(w_ih[j] * x + b_ih[j] + g[j] + b_hh[j])
                    z = sigmoid(w_ih[hidden + j] * x + b_ih[hidden + j] + g[hidden + j] + b_hh[hidden + j])
                    at = 2 * hidden + j  # the n gate's row
                    n = tanh(w_ih[at] * x + b_ih[at] + r * (g[at] + b_hh[at]))
                    h[j] = (one - z) * n + z * h[j]
                else:
                    i = sigmoid(w_ih[j] * x + b_ih[j] + g[j] + b_hh[j])
                    f = sigmoid(w_ih[hidden + j] * x + b_ih[hidden + j] + g[hidden + j] + b_hh[hidden + j])
                    at, ot = 2 * hidden + j, 3 * hidden + j  # the g and o gates' rows
                    cand = tanh(w_ih[at] * x + b_ih[at] + g[at] + b_hh[at])
                    o = sigmoid(w_ih[ot] * x + b_ih[ot] + g[ot] + b_hh[ot])
                    c[j] = f * c[j] + i * cand
                    h[j] = o * tanh(c[j])
        buffer[window + k] = np.dot(head_w, h) + head_b


def applies(model: RecurrentRegressor, device: torch.device) -> bool:
    """A one-layer model with one input on the CPU."""
    layer = model.rnn
    return (
        device.type == "cpu"
        and fused.available()  # HARNESS_FUSED=0 turns every numba path off, this one too
        and model.fused  # a model built to run torch's path (`fused=False`) rolls out there too
        and layer.num_layers == 1
        and layer.input_size == 1
        and not layer.bidirectional
        and layer.bias
        and getattr(layer, "nonlinearity", "tanh") == "tanh"
    )


@torch.no_grad()
def rollout(model: RecurrentRegressor, start: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` free-running predictions from the true window `start` (W,), as the model's
    forward would give them one call at a time (`applies` must hold)."""
    w_ih, w_hh, b_ih, b_hh = (p.detach().cpu().numpy() for p in model.rnn.all_weights[0])
    window = len(start)
    buffer = np.empty(window + steps, dtype=w_ih.dtype)
    buffer[:window] = start.cpu().numpy()
    head_w, head_b = model.fc.weight.detach().cpu().numpy()[0], model.fc.bias.detach().cpu().numpy()[0]
    code = CELL_CODES[kind(model.cell)]
    _rollout(code, buffer, window, np.ascontiguousarray(w_ih[:, 0]), np.ascontiguousarray(w_hh.T),
             b_ih, b_hh, np.ascontiguousarray(head_w), head_b)  # fmt: skip
    return torch.from_numpy(buffer[window:]).to(start.device)


def compile_kernels(dtype: type = np.float32) -> None:
    """Compile (or load from numba's cache) the loop for `dtype`, for every cell, on tiny arrays."""
    for cell, gates in GATES.items():
        h = 2
        vec: np.ndarray = np.zeros(gates * h, dtype=dtype)
        mat: np.ndarray = np.zeros((h, gates * h), dtype=dtype)
        _rollout(CELL_CODES[cell], np.zeros(3, dtype=dtype), 2, vec, mat, vec, vec, np.zeros(h, dtype=dtype),
                 dtype(0.0))  # fmt: skip
