"""The harness against the plain Optuna + PyTorch script a user would write instead
(`plain_script.py`): the same enqueued configurations of each default study, per cell, no
pruning; trials per hour from each study's own record (first trial's start to last trial's
end). Three ways: the plain script (one process, torch's default threads: every core), the
harness as launched by default (one worker, every core), and the harness with one worker per
core (`--workers <cores>`), which is how to run it on a CPU: the models here are too small to
gain from a second thread. `make bench` times them; the
normal suite runs one tiny configuration of each as a correctness check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from benchmarks import plain_script
from harness.search.launch import launch
from harness.search.spec import Choice, Range, StudySpec, load_spec
from harness.search.storage import open_storage
from harness.search.study import create_study, wall_seconds
from harness.series.signals import make_signal

from conftest import CELLS

pytestmark = pytest.mark.slow  # real launches and the plain script in its own interpreter

STUDIES = Path(__file__).parents[2] / "studies"
CONFIGS = int(os.environ.get("HARNESS_BENCH_CONFIGS", "6"))  # per study and cell
WORKERS = os.cpu_count() or 1  # the tuned harness: one worker (one thread) per core


def draws(spec: StudySpec, cell: str, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` configurations of one cell from the spec's own ranges (log where the spec says)."""
    rng = np.random.default_rng(seed)

    def draw(p: Range | Choice) -> Any:
        if isinstance(p, Choice):
            return p.values[int(rng.integers(len(p.values)))]
        lo, hi = (np.log(p.low), np.log(p.high + (1 if isinstance(p.high, int) else 0))) if p.log else (p.low, p.high)
        v = rng.uniform(lo, hi)
        v = float(np.exp(v)) if p.log else float(v)
        return int(min(v, p.high)) if isinstance(p.low, int) else v

    names = ("hidden_size", "window", "lr")
    return [{"cell": cell, **{n: draw(spec.search[n]) for n in names}} for _ in range(count)]


@pytest.mark.parametrize("how", ["plain", "harness", "harness-workers"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("study", ["short_period", "long_period"])
def test_trials_per_hour_against_a_plain_script(
    benchmark: Any, study: str, cell: str, how: str, tmp_path: Path
) -> None:
    benchmark.group = f"plain-{study}-{cell}"
    tiny = benchmark.disabled
    small = ["training.epochs=1", "search.hidden_size={low=4, high=8}", "search.window={low=2, high=8}"] if tiny else []
    spec = load_spec(STUDIES / f"{study}.toml", ["study.equal_cells=false", 'study.pruner="none"',
                                                 f'search.cell=["{cell}"]', *small])  # fmt: skip
    tuned = how == "harness-workers"
    configs = draws(spec, cell, 1 if tiny else CONFIGS)
    y = make_signal(spec.signal)
    space = {"cell": [cell], **{n: (spec.search[n].low, spec.search[n].high) for n in ("hidden_size", "window", "lr")}}
    counter = iter(range(1000))
    per_hour: list[float] = []

    def harness() -> optuna.Study:
        url = f"sqlite:///{tmp_path / f'h{next(counter)}.db'}"
        made = create_study(spec, open_storage(url), len(configs))
        for params in configs:
            made.enqueue_trial(params)
        launch(spec, url, trials=len(configs), progress=False, workers=WORKERS if tuned else 1)
        return optuna.load_study(study_name=spec.study.name, storage=url)

    def plain() -> optuna.Study:
        """In its own interpreter with torch's default threads: what a user runs (this one has
        imported the harness, which flushes denormals to zero in every thread it starts)."""
        url = f"sqlite:///{tmp_path / f'p{next(counter)}.db'}"
        np.save(tmp_path / "y.npy", y)
        args = {"storage": url, "name": "plain", "y": str(tmp_path / "y.npy"), "space": space, "configs": configs,
                "epochs": spec.training.epochs}  # fmt: skip
        subprocess.run([sys.executable, plain_script.__file__, json.dumps(args)], check=True)
        return optuna.load_study(study_name="plain", storage=url)

    def fill() -> None:
        done = plain() if how == "plain" else harness()
        assert [t.params for t in done.trials] == configs  # the same configurations, in order
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in done.trials)
        per_hour.append(3600 * len(configs) / wall_seconds(done))
        if how != "plain":  # each trial's time outside training over its whole time, the first included
            attrs = [t.user_attrs for t in done.trials]
            outside.extend(a["overhead_seconds"] / (a["overhead_seconds"] + a["train_seconds"]) for a in attrs)

    outside: list[float] = []
    benchmark.pedantic(fill, rounds=1, warmup_rounds=0)
    benchmark.extra_info["trials_per_hour"] = float(np.median(per_hour))
    if outside:
        benchmark.extra_info |= {"outside_training_median": float(np.median(outside)), "outside_training_max":
                                 float(np.max(outside))}  # fmt: skip
