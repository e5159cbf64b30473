"""Every use of Optuna's private API, behind one door.

Checked against Optuna 5.0 (pyproject.toml bounds optuna to >=5.0,<5.1). Each function
says why the public API does not suffice; `tests/search/test_optuna_internals.py` holds the
contract tests, run on every storage backend the suite has (in-memory, SQLite, and
PostgreSQL where a server is given), so an Optuna release that changes any of this fails
there loudly instead of corrupting a study.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import optuna

_ARTIFACT_PREFIX = "artifacts:"  # Optuna's artifact records: system attrs "artifacts:<id>" holding JSON


def record_trial(trial: optuna.Trial, attrs: dict[str, Any], curve: dict[int, float] | None = None) -> None:
    """Write a trial's user attrs (and intermediate values not reported yet) in one statement
    per table, in one transaction, where the storage is SQLite or PostgreSQL.

    Optuna has no bulk call: each `set_user_attr` or `report` is its own session, lookup and
    commit, ~2 ms on SQLite, and a trial writes 15-odd attrs and one value per epoch: a
    measurable share of a short trial. This writes the same rows into Optuna's own tables with
    the same upsert Optuna uses, after the same "is the trial still running" check; any other
    storage gets the public calls.
    """
    curve = curve or {}
    backend = getattr(trial.storage, "_backend", trial.storage)
    dialect = backend.engine.name if isinstance(backend, optuna.storages.RDBStorage) else None
    if not isinstance(backend, optuna.storages.RDBStorage) or dialect not in ("sqlite", "postgresql"):
        for step, value in curve.items():
            trial.report(value, step)
        for key, item in attrs.items():
            trial.set_user_attr(key, item)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy.dialects import postgresql, sqlite

    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    trial_id = trial._trial_id

    def upsert(model: Any, keys: list[str], rows: list[dict[str, Any]], update: list[str]) -> Any:
        statement = insert(model).values(rows)
        return statement.on_conflict_do_update(
            index_elements=[getattr(model, k) for k in keys],
            set_={column: getattr(statement.excluded, column) for column in update},
        )

    with _create_scoped_session(backend.scoped_session, True) as session:
        stored = models.TrialModel.find_or_raise_by_id(trial_id, session)
        state: Any = stored.state  # a TrialState (SQLAlchemy maps the enum column)
        backend.check_trial_is_updatable(trial_id, state)
        if curve:
            values = []
            for step, value in curve.items():
                number, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                values.append({"trial_id": trial_id, "step": step, "intermediate_value": number,
                               "intermediate_value_type": kind})  # fmt: skip
            session.execute(upsert(models.TrialIntermediateValueModel, ["trial_id", "step"], values,
                                   ["intermediate_value", "intermediate_value_type"]))  # fmt: skip
        if attrs:
            rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
            session.execute(upsert(models.TrialUserAttributeModel, ["trial_id", "key"], rows, ["value_json"]))


def reseed(sampler: optuna.samplers.BaseSampler, seed: int) -> None:
    """Seed every random state of a sampler and of the samplers inside it.

    Called before each trial samples, with a seed derived from the study's sampler seed and
    the trial's number. Trial numbers are unique in a study, so workers and machines sharing
    it never draw the same random proposals (same-seeded workers would), and one worker's
    study is still reproducible from its seed. Optuna has no public way to seed a sampler
    after construction; its samplers keep their state in `LazyRandomState` attributes.
    """
    from optuna.samplers._lazy_random_state import LazyRandomState

    stack, seen = [sampler], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for value in vars(current).values():
            if isinstance(value, LazyRandomState):
                value.rng.seed(seed)
            elif isinstance(value, optuna.samplers.BaseSampler):
                stack.append(value)


def _artifact_records(system_attrs: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for key, value in system_attrs.items():
        record = json.loads(value) if key.startswith(_ARTIFACT_PREFIX) and isinstance(value, str) else None
        if isinstance(record, dict) and "artifact_id" in record and "filename" in record:
            records.append(record)
    return records


def trial_artifacts(trial: optuna.trial.FrozenTrial) -> list[dict[str, Any]]:
    """The trial's artifact records (`artifact_id`, `filename`, ...). Optuna's
    `get_all_artifact_meta` fails on the null marker optuna-dashboard's delete button leaves."""
    return _artifact_records(trial.system_attrs)


def study_artifacts(study: optuna.Study) -> list[dict[str, Any]]:
    """The study's artifact records, read past the same null marker (the study's system
    attrs are only reachable through its private storage handle)."""
    return _artifact_records(study._storage.get_study_system_attrs(study._study_id))


def fail_orphaned_trials(study: optuna.Study, older_than: float) -> list[int]:
    """Fail RUNNING trials that never sent a heartbeat and started over `older_than` seconds
    ago, queue their parameters again like a stale trial's, and return their numbers.

    Optuna's `fail_stale_trials` skips a trial with no heartbeat row at all, so a worker
    killed between creating its trial and its first heartbeat left a RUNNING trial forever,
    and a relaunch waited on it forever. Heartbeat rows are only visible through the RDB
    models, and failing a trial needs its private id.
    """
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        return []
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        rows = (
            session.query(models.TrialModel.trial_id)
            .outerjoin(models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
            .filter(models.TrialModel.study_id == study._study_id)
            .filter(models.TrialModel.state == optuna.trial.TrialState.RUNNING)
            .filter(models.TrialHeartbeatModel.trial_id.is_(None))
            .all()
        )
    orphans = {row[0] for row in rows}
    if not orphans:
        return []
    now = datetime.datetime.now()
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        started = trial.datetime_start
        if trial._trial_id not in orphans or started is None or (now - started).total_seconds() < older_than:
            continue
        try:
            storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # it finished (or another worker failed it) meanwhile
        retry(study, study.get_trials(deepcopy=False)[trial.number])
        failed.append(trial.number)
    return failed


@contextmanager
def heartbeats(trials: Sequence[optuna.Trial], alive: Callable[[optuna.Trial], bool]) -> Iterator[None]:
    """Heartbeats for several running trials from one thread, while `alive(trial)` holds:
    what `study.optimize` does with one `HeartbeatThread` per trial (a no-op where the storage
    has no heartbeat). The harness asks for its trials itself (`harness.search.launch`), so it
    sends their heartbeats itself (`harness.search.trials`); Optuna has no public call that
    tells whether a storage takes them."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = trials[0].study._storage if trials else None
    if storage is None or not is_heartbeat_enabled(storage):
        yield
        return
    assert isinstance(storage, BaseHeartbeat)
    interval = storage.get_heartbeat_interval() or 60
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial in trials:
                if alive(trial):
                    with contextlib.suppress(Exception):  # a storage outage: the next beat tries again
                        storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="harness-heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def startup_trials(sampler: optuna.samplers.BaseSampler) -> int:
    """How many trials `sampler` draws at random before its model starts (TPE, GP and CMA-ES
    keep it in `_n_startup_trials`; samplers without a model have none)."""
    return int(getattr(sampler, "_n_startup_trials", 0))


def requeue_interrupted(study: optuna.Study, reasons: tuple[str, ...]) -> list[int]:
    """Queue again the parameters of every trial failed by an interruption (a `fail_reason`
    starting with one of `reasons`: a Ctrl-C, the storage failing, which is `reasons[-1]` and
    also covers a FAIL with no reason) that no retry has taken up yet, as Optuna's heartbeat
    retry does for a killed worker's trial: a WAITING copy recording `failed_trial` and
    `retry_history`. Done when a launch starts, not in the interrupted process, which should
    write as little as it can."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
    queued = []
    for t in trials:
        if t.state != optuna.trial.TrialState.FAIL or t.number in retried:
            continue
        # Every failure the harness records says why; one without a reason is a trial the
        # storage failed while its reason was being written (its state got in, the attr did not).
        reason = t.user_attrs.get("fail_reason", reasons[-1])
        if str(reason).startswith(reasons):
            retry(study, t)
            queued.append(t.number)
    return queued


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes (Optuna keeps it private: `Study._storage`)."""
    return study._storage
