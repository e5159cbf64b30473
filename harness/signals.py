"""Signal definitions: the notebook's two sine waves and the registry that names them.

A signal is a finite series y[0..N). Each registered signal is a sinusoid given by its
angular frequency; length, amplitude, phase and Gaussian noise are parameters, so a
noisy or shorter variant needs no new code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.errors import ConfigError

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

    name: str = "short-period"
    length: int = 1000
    amplitude: float = 1.0
    phase: float = 0.0
    noise_std: float = 0.0
    noise_seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in SIGNALS:
            raise ConfigError("name", f"unknown signal {self.name!r}; allowed: {', '.join(SIGNALS)}")
        if self.length < 2:
            raise ConfigError("length", f"must be an integer >= 2, got {self.length!r}")
        if self.noise_std < 0 or not math.isfinite(self.noise_std):
            raise ConfigError("noise_std", f"must be a finite number >= 0, got {self.noise_std!r}")

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
