"""Optuna samplers and pruners by name: the registries a spec's `study.sampler` and
`study.pruner` choose from, like the cells (`models.CELLS`) and signals (`signals.SIGNALS`).

A spec names one; `harness.search.spec` allows exactly the names here, and `harness.search.study` builds
the chosen one. Adding a sampler is one entry, and the spec's error message lists it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

# (seed, grid) -> sampler; `grid` is the spec's categorical search space (the grid sampler's
# grid; the others ignore it).
SamplerFactory = Callable[[int, dict[str, list[Any]]], BaseSampler]
# epochs -> pruner; Hyperband needs the most epochs a trial can run.
PrunerFactory = Callable[[int], BasePruner]


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without its `study.stop()` once the grid is used up: that call
    only works inside `study.optimize`, and the harness asks and tells trials itself and
    stops at its own budget."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": lambda seed, grid: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed, grid: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda seed, grid: _GridSampler(grid, seed=seed),
    "cmaes": lambda seed, grid: optuna.samplers.CmaEsSampler(seed=seed),
    "gp": lambda seed, grid: optuna.samplers.GPSampler(seed=seed),
    "qmc": lambda seed, grid: optuna.samplers.QMCSampler(seed=seed),
    "nsga2": lambda seed, grid: optuna.samplers.NSGAIISampler(seed=seed),
}

PRUNERS: dict[str, PrunerFactory] = {
    # 5 complete trials before it prunes, and no pruning in a trial's first 2 epochs: early
    # validation values say little about where a run ends.
    "median": lambda epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    "hyperband": lambda epochs: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs),
    "successive-halving": lambda epochs: optuna.pruners.SuccessiveHalvingPruner(),
    "none": lambda epochs: optuna.pruners.NopPruner(),
}
