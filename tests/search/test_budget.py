"""The trial budget's claim (`launch.claim_trial`): one trial at a time, counted under the
claim lock; where a storage has no lock, a trial asked past the budget gives its place back.
(Whole launches filling it exactly: `test_workers.py`, `test_reliability.py`.)"""

from __future__ import annotations

from contextlib import nullcontext

import optuna
import pytest
from optuna.trial import TrialState

from harness.search.launch import BUDGET_REFUSED, claim_trial


def test_a_full_budget_stops_and_running_places_wait() -> None:
    study = optuna.create_study()
    first = claim_trial(study, nullcontext(), target=1)  # type: ignore[arg-type]
    assert first.trial is not None and first.trial.number == 0 and not first.full
    waiting = claim_trial(study, nullcontext(), target=1)  # type: ignore[arg-type]
    assert waiting.trial is None and not waiting.full  # its one place is running: wait, it may fail
    study.tell(first.trial, 1.0)
    assert claim_trial(study, nullcontext(), target=1).full  # type: ignore[arg-type]
    assert len(study.trials) == 1


def test_without_a_lock_a_claim_past_the_budget_gives_its_place_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # A storage with no lock: other workers asked 3 trials after this one counted the budget.
    study = optuna.create_study()
    for _ in range(3):
        study.ask()
    monkeypatch.setattr("harness.search.launch.count_trials", lambda s: (0, 0, 0))  # the count made before they asked
    claim = claim_trial(study, nullcontext(), target=4)  # type: ignore[arg-type]
    assert claim.trial is not None and claim.trial.number == 3 and not claim.full  # the fourth place: still free
    refused = claim_trial(study, nullcontext(), target=4)  # type: ignore[arg-type]
    assert refused.trial is None and not refused.full
    (trial,) = study.get_trials(states=(TrialState.FAIL,))
    assert trial.number == 4 and trial.user_attrs[BUDGET_REFUSED] is True
    assert "budget" in trial.user_attrs["fail_reason"]
    assert all(t.state == TrialState.RUNNING for t in study.get_trials() if t.number < 4)
