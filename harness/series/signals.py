"""Signal definitions: the notebook's two sine waves and the registry that names them.

A signal is a finite series y[0..N). Each registered signal is a sinusoid given by its
angular frequency; length, amplitude, phase and Gaussian noise are parameters, so a
noisy or shorter variant needs no new code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.constraints import Integer, OneOf, Real, check_fields, setting

# Angular frequencies in radians per sample, written in the notebook's own order of
# operations (`np.pi * .125 * x` and `1/10 * np.pi * .125 * x`) so the series agree with
# the notebook bit for bit.
SIGNALS: dict[str, float] = {
    "short-period": np.pi * 0.125,  # period 16 samples
    "long-period": 1 / 10 * np.pi * 0.125,  # period 160 samples
}


@dataclass(frozen=True)
class SignalConfig:
    """Everything needed to regenerate a signal exactly."""

    name: str = setting("short-period", OneOf(SIGNALS, "signal"))
    length: int = setting(1000, Integer(2))
    amplitude: float = setting(1.0, Real())
    phase: float = setting(0.0, Real())
    noise_std: float = setting(0.0, Real(0))
    noise_seed: int = setting(0, Integer(0))  # numpy's generators take no negative seed

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def period(self) -> float:
        """Samples per cycle."""
        return 2 * math.pi / SIGNALS[self.name]


def make_signal(config: SignalConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """Return y[0..length) as float64.

    Noise is drawn from `rng` when given, else from a generator seeded with
    `config.noise_seed`, so a config alone reproduces the series.
    """
    t = np.arange(config.length)
    y = config.amplitude * np.sin(SIGNALS[config.name] * t + config.phase)
    if config.noise_std > 0:
        rng = rng if rng is not None else np.random.default_rng(config.noise_seed)
        y = y + rng.normal(0.0, config.noise_std, size=config.length)
    return np.asarray(y, dtype=np.float64)
