"""The kernels' float32 tanh and sigmoid: within the bounds `fast_math` states of the exact
values over every float32 range that matters, NaN kept; float64 exactly the C library's."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from harness.training.fast_math import sigmoid, tanh


@numba.njit(error_model="numpy")
def _apply(x: np.ndarray, which: int) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = tanh(x[i]) if which == 0 else sigmoid(x[i])
    return out


def _grid() -> np.ndarray:
    dense = np.linspace(-20, 20, 400_001)
    tiny = np.geomspace(1e-30, 1e-3, 2000)
    return np.concatenate([dense, tiny, -tiny, [0.0, 7.99, 8.0, 50.0, -50.0, 1e30, -1e30]]).astype(np.float32)


def test_float32_tanh_within_six_ulp_and_odd() -> None:
    x = _grid()
    got = _apply(x, 0)
    assert got.dtype == np.float32
    exact = np.tanh(x.astype(np.float64))
    # float32's ulp at each exact value (not below 1e-30: this process flushes denormals to zero)
    ulp = np.spacing(np.maximum(np.abs(exact), 1e-30).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - exact) / ulp) <= 6
    assert np.max(np.abs(got - exact)) <= 3.5e-7
    np.testing.assert_array_equal(_apply(-x, 0), -got)  # odd, so gates are symmetric as torch's
    assert np.all(np.abs(got) <= 1)


def test_float32_sigmoid_within_2_5e_7_absolute_and_in_0_1() -> None:
    x = _grid()
    got = _apply(x, 1)
    with np.errstate(over="ignore"):  # exp(1e30) is inf, and the sigmoid 0, as it should
        exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert np.max(np.abs(got - exact)) <= 2.5e-7
    assert np.all((got >= 0) & (got <= 1))


@pytest.mark.parametrize("which", [0, 1])
def test_nan_stays_nan_and_infinities_saturate(which: int) -> None:
    got = _apply(np.array([np.nan, np.inf, -np.inf], dtype=np.float32), which)
    assert np.isnan(got[0])  # a diverged value is not clamped into a finite one
    assert got[1] == 1.0
    assert got[2] == (-1.0 if which == 0 else 0.0)


def test_float64_is_the_exact_library_function() -> None:
    x = np.linspace(-30, 30, 10_001)
    np.testing.assert_allclose(_apply(x, 0), np.tanh(x), rtol=5e-16, atol=0)  # libm's, numpy's: 1 ulp apart
    np.testing.assert_allclose(_apply(x, 1), 1 / (1 + np.exp(-x)), rtol=1e-15, atol=0)
