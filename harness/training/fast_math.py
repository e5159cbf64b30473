"""tanh and sigmoid for the numba kernels, in float32 as arithmetic the compiler vectorises.

Why: numba calls the C library's scalar `tanh` and `exp` (~5-17 ns a value here; no SVML in
PyPI's llvmlite), so in the fused recurrences the gates cost several times the matrix
products they follow (GRU, batch 64, hidden 116, 177 steps: 67-85 ms of gates against 12 ms
of products a forward pass). In float32, tanh is Eigen's rational approximation (the one
TensorFlow and Eigen's own float tanh use: an odd polynomial of degree 13 over an even one of
degree 6 on [-7.9988, 7.9988], clamped beyond and exactly +-1 past 9.1, where float32's tanh
rounds to 1), which compiles to SIMD multiplies, adds and one divide: ~0.6 ns a value, within
6 float32 ulp (3.3e-7 absolute) of the exact value, where torch's SIMD tanh is within 1 ulp.
sigmoid(x) = (tanh(x / 2) + 1) / 2, within 2.5e-7 absolute (not relative: below x = -16 it
is 8.9e-8 or 0 where the true value is smaller; as a gate only the absolute error counts).
In float64 (the gradient checks) both are the C library's, exact.

The kernels that call these compile with `error_model="numpy"`: numba's default checks every
float division for zero to raise Python's ZeroDivisionError, a branch that stops the loop from
vectorising. NaN goes through (the clamp compares, so a diverged value stays NaN).

numba's cache (`cache=True` on the kernels) is keyed by each kernel's own file: after editing
this one, delete harness/training/__pycache__/*.nbi and *.nbc, or the kernels keep the old code.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload

F = np.float32
_CLAMP = F(7.99881172180175781)  # the approximation's range (Eigen's): it gives 0.9999998 there
# Eigen's generic_fast_tanh_float: numerator (odd) and denominator (even) coefficients.
_A = tuple(F(a) for a in (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
                          -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))  # fmt: skip
_B = tuple(F(b) for b in (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))
A1, A3, A5, A7, A9, A11, A13 = _A
B0, B2, B4, B6 = _B
HALF, ONE = F(0.5), F(1.0)
_SATURATED = F(9.1)  # tanh(x) > 1 - 2^-25 beyond: float32 rounds it to 1


def tanh(x: float) -> float:
    """Callable from numba kernels (and from Python, where it is math.tanh)."""
    return math.tanh(x)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@numba.njit(inline="always", error_model="numpy")
def _tanh32(v: Any) -> Any:
    x = _CLAMP if v > _CLAMP else (-_CLAMP if v < -_CLAMP else v)  # comparisons keep NaN
    x2 = x * x
    p = x2 * A13 + A11
    p = x2 * p + A9
    p = x2 * p + A7
    p = x2 * p + A5
    p = x2 * p + A3
    p = x2 * p + A1
    q = x2 * B6 + B4
    q = x2 * q + B2
    q = x2 * q + B0
    y = x * p / q  # 0.9999998 at the clamp; exactly +-1 past _SATURATED, as float32's tanh
    return ONE if v > _SATURATED else (-ONE if v < -_SATURATED else y)


def _is_float32(x: Any) -> bool:
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(tanh)
def _tanh_impl(x):  # type: ignore[no-untyped-def]  # numba: the same parameters as the lambdas
    if _is_float32(x):
        return lambda x: _tanh32(x)
    return lambda x: np.tanh(x)


@overload(sigmoid)
def _sigmoid_impl(x):  # type: ignore[no-untyped-def]
    if _is_float32(x):
        return lambda x: HALF * _tanh32(HALF * x) + HALF
    return lambda x: 1.0 / (1.0 + np.exp(-x))
