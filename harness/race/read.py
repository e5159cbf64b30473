"""Races read back from a storage: which studies are races, each repeat's history, replays.

What marks a race study (`RACE_ATTR`, its name `<name>/race/<method>/<r>`), each repeat's
clock (`SEGMENTS_ATTR`) and a replay's stored histories (`<name>/simulated`) are written by
`race` and `replay` and read here, with no import of the launcher, so `report` reads races
without it. The statistics over what is read are pure functions in `harness.stats.race_stats`.

A repeat's **history** is its finished (complete or pruned) trials in the order they
finished, each at the seconds the race spent on the repeat by then (`race_stats.spent_seconds`
of the segments at the trial's `datetime_complete`). With a seconds budget only trials
finished within it count (the race stops the trial running at the deadline, but one may end
just past it); with a trials budget, the first that many finished trials (a race re-run with
a smaller budget than an earlier one reads as the smaller race).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from harness.series.signals import SOURCES, is_real
from harness.stats.race_stats import RepeatHistory, close_segments, spent_seconds

RACE_INFIX = "/race/"  # a repeat's study: <name>/race/<method>/<r>
RACE_ATTR = "race"  # on each repeat's study: who it belongs to and how it searches
SEGMENTS_ATTR = "race_segments"  # on each repeat's study: [[start, end], ...] ISO wall-clock times
SIMULATED_SUFFIX = "/simulated"  # a replayed race of spec X (`harness race --simulate`): study X/simulated
SIMULATED_ATTR = "simulated"  # on it: the race's name, methods, repeats, budget, table
HISTORIES_ATTR = "simulated_histories"  # on it: every repeat's history (`history_record`)
SIMULATED_MARK = " (simulated)"  # a replayed race's name in tables and titles: "<name> (simulated)"


# ---------------------------------------------------------------- live races
def race_study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Names of the race studies in a storage (made by `race`, marked with `RACE_ATTR`)."""
    names = []
    for name in optuna.get_all_study_names(storage=storage):
        if RACE_INFIX in name and RACE_ATTR in optuna.load_study(study_name=name, storage=storage).user_attrs:
            names.append(name)
    return names


def race_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The races in a storage by the name of their spec (`harness report --study NAME`)."""
    names = [
        optuna.load_study(study_name=n, storage=storage).user_attrs[RACE_ATTR]["name"]
        for n in race_study_names(storage)
    ]
    return list(dict.fromkeys(names))


def history(study: optuna.Study) -> RepeatHistory:
    """One repeat's history, cut to the budget it was last raced with (the module docstring)."""
    info = study.user_attrs[RACE_ATTR]
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.datetime_complete is not None
    ]
    done.sort(key=lambda t: (t.datetime_complete or datetime.min, t.number))
    ends = [t.datetime_complete for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    segs = close_segments(study.user_attrs.get(SEGMENTS_ATTR, []), ends)
    elapsed = np.array([spent_seconds(segs, t.datetime_complete) for t in done], dtype=float)
    values = np.array([t.values[0] if t.state == TrialState.COMPLETE and t.values else np.nan for t in done])
    total = spent_seconds(segs)
    budget = info.get("budget", {})
    if budget.get("seconds") is not None:  # what finished within it (a trial may end just past it)
        keep = elapsed <= budget["seconds"]
        elapsed, values, total = elapsed[keep], values[keep], min(total, float(budget["seconds"]))
    elif budget.get("trials") is not None and len(values) > budget["trials"]:  # a race re-run with fewer trials
        n = int(budget["trials"])
        elapsed, values, total = elapsed[:n], values[:n], float(elapsed[n - 1])
    return RepeatHistory(info["name"], info["method"], int(info["repeat"]), elapsed, values, total)


def load_histories(
    storage: optuna.storages.BaseStorage, names: Sequence[str] | None = None
) -> dict[str, list[RepeatHistory]]:
    """Race name -> its repeats' histories (methods in the order first seen, repeats by index);
    only the races named in `names` when given."""
    out: dict[str, list[RepeatHistory]] = {}
    for study_name in race_study_names(storage):
        h = history(optuna.load_study(study_name=study_name, storage=storage))
        if names is None or h.name in names:
            out.setdefault(h.name, []).append(h)
    return {k: sorted(v, key=lambda h: h.repeat) for k, v in out.items()}


def on_real_series(storage: optuna.storages.BaseStorage) -> set[str]:
    """The races (live by name, replayed as `<name> (simulated)`) whose spec searched a real
    series, not a synthetic signal: their MSE is on the standardised series."""
    real = set()
    for study_name in race_study_names(storage) + simulated_names(storage):
        attrs = optuna.load_study(study_name=study_name, storage=storage).user_attrs
        live = RACE_ATTR in attrs
        info = attrs.get(RACE_ATTR if live else SIMULATED_ATTR) or {}
        if is_real(info.get("spec", {}).get("signal", {}).get("source", SOURCES[0])):  # absent: the default
            real.add(info["name"] if live else info["name"] + SIMULATED_MARK)
    return real


# ---------------------------------------------------------------- replayed races
def history_record(h: RepeatHistory) -> dict[str, Any]:
    """A history as plain JSON data (a pruned trial's NaN as null), for a replay's study attr."""
    values = [None if math.isnan(v) else float(v) for v in h.values]
    return {"method": h.method, "repeat": h.repeat, "elapsed": [round(float(e), 6) for e in h.elapsed],
            "values": values, "seconds": h.seconds}  # fmt: skip


def history_from_record(name: str, d: dict[str, Any]) -> RepeatHistory:
    values = np.array([math.nan if v is None else v for v in d["values"]], dtype=float)
    return RepeatHistory(name, d["method"], int(d["repeat"]), np.array(d["elapsed"], dtype=float), values,
                         float(d["seconds"]))  # fmt: skip


def simulated_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The studies holding replayed races (`harness race --simulate`)."""
    return [n for n in optuna.get_all_study_names(storage=storage) if n.endswith(SIMULATED_SUFFIX)]


def load_simulated(
    storage: optuna.storages.BaseStorage, names: Sequence[str] | None = None
) -> dict[str, list[RepeatHistory]]:
    """Replayed race `<name> (simulated)` -> its histories, like `load_histories`; only the
    replays of the specs named in `names` when given."""
    out: dict[str, list[RepeatHistory]] = {}
    for study_name in simulated_names(storage):
        attrs = optuna.load_study(study_name=study_name, storage=storage).user_attrs
        info = attrs.get(SIMULATED_ATTR)
        if info is None or (names is not None and info["name"] not in names):
            continue
        label = info["name"] + SIMULATED_MARK
        out[label] = sorted((history_from_record(label, d) for d in attrs.get(HISTORIES_ATTR, [])),
                            key=lambda h: h.repeat)  # fmt: skip
    return out
