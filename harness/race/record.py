"""`harness record`: learning curves of a spec's search space, recorded once for replays.

Space-filling configurations (Optuna's QMCSampler, scrambled Sobol, over the numeric
parameters; every combination of the categorical ones, e.g. each cell, gets the same points)
are each trained on `seeds` training seeds to the spec's full epoch budget, without pruning,
into the study `<name>/curves` (`harness.race.curves`). The runs are enqueued trials of an
ordinary study run by `launch.launch`: workers, the exact budget, heartbeats, resume after
Ctrl-C or kill -9 are launch's. Recording more configurations later adds the next Sobol
points: the sequence's first points stay the same.

`harvest=True` first copies the complete, full-epoch trials of the spec's own searches (the
study `<name>` or its per-cell studies `<name>/<cell>`) that share the table's fixed settings;
each copy notes where it came from (`harvested_from`) and is copied once.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import replace
from typing import Any

import optuna
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.race.curves import (
    CURVES_ATTR,
    HARVESTED_ATTR,
    distribution,
    harvestable,
    settings_of,
    table_name,
)
from harness.race.read import RACE_ATTR
from harness.search.launch import launch
from harness.search.spec import Choice, Range, StudySpec, spec_from_dict
from harness.search.storage import open_storage
from harness.search.study import PER_CELL_ATTR, create_study, suggest

DEFAULT_CONFIGS = 32  # Sobol points per categorical combination (per cell)
DEFAULT_SEEDS = 2


def curves_spec(spec: StudySpec, seeds: int) -> StudySpec:
    """The recording study's spec: the training seed becomes a searched choice (each run's is
    enqueued), no pruner, one study over all cells, val_mse alone."""
    first = spec.training.seed
    study = replace(spec.study, name=table_name(spec.study.name), sampler="random", pruner="none",
                    equal_cells=False, objectives=("val_mse",))  # fmt: skip
    search = {**spec.search, "seed": Choice(tuple(range(first, first + seeds)))}
    return spec_from_dict(replace(spec, study=study, search=search).to_dict(), source=f"{spec.study.name} recorded")


def sobol_points(spec: StudySpec, n: int, seed: int) -> list[dict[str, Any]]:
    """The first `n` points of a scrambled Sobol sequence over the spec's numeric parameters, as
    Optuna's QMCSampler maps them (log, integers). Its first trial is its independent
    sampler's (random) draw, which is discarded, so the points are the sequence's own."""
    numeric = {k: p for k, p in spec.search.items() if isinstance(p, Range)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # QMC is experimental; Sobol warns when n is not a power of 2
        study = optuna.create_study(sampler=optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed))
        points = []
        for _ in range(n + 1):
            trial = study.ask()
            points.append({k: suggest(trial, k, p) for k, p in numeric.items()})
            study.tell(trial, 0.0)
    return points[1:]


def plan(spec: StudySpec, configs: int, seed: int) -> list[dict[str, Any]]:
    """Every categorical combination with each of the first `configs` Sobol points."""
    choices = {k: p.values for k, p in spec.search.items() if isinstance(p, Choice)}
    points = sobol_points(spec, configs, seed)
    combos = [dict(zip(choices, c, strict=True)) for c in itertools.product(*choices.values())]
    return [{**combo, **point} for point in points for combo in combos]


def _check_same(study: optuna.Study, spec: StudySpec, seeds: int) -> int:
    """The number of Sobol points already enqueued; a `ConfigError` where the table was
    recorded from another spec or with other seeds (its runs would not be one experiment)."""
    info = study.user_attrs.get(CURVES_ATTR)
    if info is None:
        return 0
    if info["spec"] != spec.to_dict():
        raise ConfigError("spec", f"table {study.study_name!r} was recorded from another version of "
                                  f"{spec.study.name!r}; record into another storage or restore the spec")  # fmt: skip
    if info["seeds"] != seeds:
        raise ConfigError("seeds", f"table {study.study_name!r} was recorded with --seeds {info['seeds']}")
    return int(info["configs"])


def harvest(storage: optuna.storages.BaseStorage, spec: StudySpec, table: optuna.Study) -> int:
    """Copy the spec's searches' complete full-epoch runs into the table; returns how many."""
    example = {k: (p.values[0] if isinstance(p, Choice) else p.low) for k, p in spec.search.items()}
    settings = settings_of(spec, example)
    dists = {k: distribution(p) for k, p in spec.search.items()}
    done = {t.user_attrs.get(HARVESTED_ATTR) for t in table.get_trials(deepcopy=False)}
    copied = 0
    for name in optuna.get_all_study_names(storage=storage):
        source = optuna.load_study(study_name=name, storage=storage)
        attrs = source.user_attrs
        owner = attrs.get(PER_CELL_ATTR, {}).get("name") or attrs.get("spec", {}).get("study", {}).get("name")
        if name == table.study_name or owner != spec.study.name or RACE_ATTR in attrs or CURVES_ATTR in attrs:
            continue
        for t in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            origin = f"{name}#{t.number}"
            if origin in done or not harvestable(t, spec, settings):
                continue
            config = t.user_attrs["config"]
            table.add_trial(optuna.trial.create_trial(
                params={k: config[k] for k in spec.search}, distributions=dists, value=t.values[0],
                intermediate_values=dict(t.intermediate_values), user_attrs={**t.user_attrs, HARVESTED_ATTR: origin},
            ))  # fmt: skip
            copied += 1
    return copied


def record(
    spec: StudySpec,
    storage_url: str,
    *,
    configs: int = DEFAULT_CONFIGS,
    seeds: int = DEFAULT_SEEDS,
    harvest_runs: bool = False,
    workers: int = 1,
    device: str = "auto",
    threads: int | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Record (or resume recording) the spec's table; returns launch's summary plus what was
    enqueued and harvested. Nothing is written before the spec and flags are judged."""
    cspec = curves_spec(spec, seeds)
    storage = open_storage(storage_url)
    names = optuna.get_all_study_names(storage=storage)
    existing = optuna.load_study(study_name=cspec.study.name, storage=storage) if cspec.study.name in names else None
    had = _check_same(existing, spec, seeds) if existing is not None else 0
    table = create_study(cspec, storage)
    harvested = harvest(storage, spec, table) if harvest_runs else 0
    seed_choice = cspec.search["seed"]
    assert isinstance(seed_choice, Choice)
    if configs > had:
        for params in plan(spec, configs, spec.study.sampler_seed)[had * _combos(spec) :]:
            for s in seed_choice.values:
                table.enqueue_trial({**params, "seed": s}, skip_if_exists=False)
        table.set_user_attr(CURVES_ATTR, {"name": spec.study.name, "spec": spec.to_dict(), "seeds": seeds,
                                          "configs": configs, "qmc_seed": spec.study.sampler_seed})  # fmt: skip
    n_harvested = sum(HARVESTED_ATTR in t.user_attrs for t in table.get_trials(deepcopy=False))
    target = n_harvested + max(configs, had) * _combos(spec) * seeds
    summary = launch(cspec, storage_url, trials=target, workers=workers, device=device, timeout=timeout,
                     progress=progress, threads=threads)  # fmt: skip
    return summary | {"harvested": harvested, "configs": max(configs, had), "seeds": seeds}


def _combos(spec: StudySpec) -> int:
    n = 1
    for p in spec.search.values():
        if isinstance(p, Choice):
            n *= len(p.values)
    return n
