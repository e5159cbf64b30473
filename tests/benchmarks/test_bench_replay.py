"""What a simulated race costs (`harness race --simulate`): 100 repeats x 3 methods (the
README's random+none, tpe+median, tpe+hyperband) x a 45-second simulated budget on one signal,
replayed from a table of the short-period spec's search space (goal: under 60 s on this
project's 2-core machine; docs/performance.md).

The table is synthetic, so the benchmark needs no recording: 32 Sobol points per cell x 2
seeds of smooth learning curves whose final loss depends on the learning rate, hidden size and
cell, and epochs of 20-90 ms (a 20-epoch trial of 0.5-2 s: the live race's 31-82 trials per
45 s on the short period). The replay's cost grows with the trials per repeat (TPE's ask).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial

from harness.race.curves import CURVES_ATTR, distribution, read_table
from harness.race.race import Budget, parse_methods
from harness.race.record import plan
from harness.race.replay import simulate
from harness.search.spec import StudySpec, load_spec

SHORT = Path(__file__).parent.parent.parent / "studies" / "short_period.toml"
METHODS = "random+none,tpe+median,tpe+hyperband"
CELL_FLOOR = {"rnn": 0.0, "lstm": 0.3, "gru": 0.1}  # log10 penalty on the final loss
CELL_COST = {"rnn": 1.0, "lstm": 1.6, "gru": 1.4}


def synthetic_table(spec: StudySpec, configs: int = 32, seeds: int = 2) -> optuna.Study:
    """A table of smooth curves: best near lr 1e-2 and hidden 64, each seed a little off (in
    memory: the replay reads the table once, whatever its storage)."""
    study = optuna.create_study(study_name=f"{spec.study.name}/curves")
    study.set_user_attr(CURVES_ATTR, {"name": spec.study.name, "spec": spec.to_dict(), "seeds": seeds,
                                      "configs": configs})  # fmt: skip
    dists = {k: distribution(p) for k, p in spec.search.items()}
    epochs = np.arange(spec.training.epochs)
    rng = np.random.default_rng(0)
    for params in plan(spec, configs, 0):
        quality = abs(math.log10(params["lr"]) + 2) + abs(math.log2(params["hidden_size"]) - 6) / 3
        final = 1e-7 * 10 ** (2 * quality + CELL_FLOOR[params["cell"]])
        epoch_seconds = 0.02 * CELL_COST[params["cell"]] * (1 + params["hidden_size"] / 256 + params["window"] / 64)
        for seed in range(seeds):
            end = final * math.exp(rng.normal(0, 0.3))
            curve = end + (0.5 - end) * np.exp(-(epochs + 1) * min(1.0, 100 * params["lr"]))
            attrs = {"config": spec.run_config(params).to_dict() | {"seed": seed}, "seed": seed,
                     "train_seconds": epoch_seconds * len(epochs), "overhead_seconds": 0.03}  # fmt: skip
            values = dict(enumerate(curve.tolist()))
            study.add_trial(create_trial(params=params, distributions=dists, value=float(curve.min()),
                                         intermediate_values=values, user_attrs=attrs))  # fmt: skip
    return study


@pytest.mark.parametrize("workers", [1, 2])
def test_replay_100_repeats(benchmark: Any, workers: int) -> None:
    benchmark.group = "replay"
    if benchmark.disabled and workers > 1:
        pytest.skip("timed only (`make bench`): tests/race/test_replay.py checks replays in worker processes")
    repeats = 1 if benchmark.disabled else 100
    spec = load_spec(SHORT)
    table = read_table(synthetic_table(spec))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    methods = parse_methods(METHODS)
    runs: list[Any] = []

    def replay() -> None:
        runs[:] = simulate(spec, table, methods, repeats, Budget(seconds=45.0), workers=workers)

    benchmark.pedantic(replay, rounds=1)
    assert len(runs) == repeats * 3 and all(r.seconds == pytest.approx(45.0, abs=2.5) for r in runs)
    trials = [len(r.trials) for r in runs]
    benchmark.extra_info["trials"] = int(sum(trials))
    benchmark.extra_info["median_trials_per_repeat"] = float(np.median(trials))
    assert min(trials) > 10
