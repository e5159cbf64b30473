"""The harness: benchmark and hyperparameter search for recurrent sequence predictors.

What a user's script needs, importable from `harness` directly (the internal module paths
may change; these names do not):

- `RunConfig`: everything that determines one training run (a frozen dataclass);
- `run(config, device="auto")`: train one run, returning a `TrainResult` (losses, metrics,
  timings, the best-validation model);
- `SignalConfig`: which series a run trains on;
- `load_spec(path, overrides)`: a study spec (TOML), validated;
- `load_model(storage, study, trial)`: a recorded trial's trained weights as a model.

They are imported on first use, so `import harness` stays cheap (no torch, no Optuna) for
the CLI's start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_PUBLIC = {
    "RunConfig": "harness.training.train",
    "TrainResult": "harness.training.train",
    "run": "harness.training.train",
    "SignalConfig": "harness.series.signals",
    "load_spec": "harness.search.spec",
    "load_model": "harness.search.weights",
}
__all__ = ["RunConfig", "SignalConfig", "TrainResult", "__version__", "load_model", "load_spec", "run"]

if TYPE_CHECKING:
    from harness.search.spec import load_spec
    from harness.search.weights import load_model
    from harness.series.signals import SignalConfig
    from harness.training.train import RunConfig, TrainResult, run


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
