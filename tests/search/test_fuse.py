"""Fused trials, the driver: `harness launch --fuse B` (or `[execution] fuse = B`) asks for up
to B trials at once and trains those that fit together as one group; each is still a full
Optuna trial with its own record, pruning and weights."""

from __future__ import annotations

import signal
import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

from harness.cli import main
from harness.search.launch import BUDGET_REFUSED, claim_trials
from harness.search.study import TRIAL_ATTRS
from harness.training.train import RunConfig, run

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
ONE_CELL = ["--set", 'search.cell=["gru"]', "--no-progress"]


def load(url: str, name: str = "smoke") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


@pytest.mark.slow
def test_fused_trials_are_full_trials_that_train_as_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["launch", str(SMOKE), "--storage", url, "--trials", "6", "--fuse", "4", *ONE_CELL,
            "--set", 'training.precision="fp64"', "--set", "training.epochs=3"]  # fmt: skip
    assert main(argv) == 0
    study = load(url)
    trials = study.get_trials()
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)  # the budget, exactly
    assert study.user_attrs["spec"]["execution"]["fuse"] == 4  # recorded with the spec
    groups: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        assert set(TRIAL_ATTRS) <= set(t.user_attrs), t.number
        if "group_id" in t.user_attrs:
            groups.setdefault(t.user_attrs["group_id"], []).append(t)
        assert any(a.filename == "weights.pt" for a in get_all_artifact_meta(t, storage=study._storage))
        # the trial's numbers are the ones its config gives alone (float64: to 1e-6)
        solo = run(RunConfig.from_dict(t.user_attrs["config"]), "cpu")
        assert t.value == pytest.approx(solo.metrics["val_mse"], rel=1e-6)
        assert t.user_attrs["test_mse"] == pytest.approx(solo.metrics["test_mse"], rel=1e-6)
        assert list(t.intermediate_values.values()) == pytest.approx(solo.val_mse_by_epoch, rel=1e-6)
    assert groups, "no trial trained in a group"
    for gid, members in groups.items():
        assert gid == min(m.number for m in members)
        assert all(m.user_attrs["group_size"] == len(members) > 1 for m in members)
        seconds = members[0].user_attrs["group_seconds"]
        assert sum(m.user_attrs["train_seconds"] for m in members) == pytest.approx(seconds, rel=0.05)


@pytest.mark.slow
def test_members_are_pruned_one_by_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["launch", str(SMOKE), "--storage", url, "--trials", "16", "--fuse", "8", *ONE_CELL,
            "--set", 'study.pruner="median"', "--set", "training.epochs=6"]  # fmt: skip
    assert main(argv) == 0
    trials = load(url).get_trials()
    assert len(trials) == 16 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and any(t.state == TrialState.COMPLETE and "group_id" in t.user_attrs for t in trials)
    for t in pruned:  # a pruned member stopped where it was pruned; its group went on
        assert t.user_attrs["epochs_run"] == len(t.intermediate_values) < 6
    by_group: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        by_group.setdefault(t.user_attrs.get("group_id", -1), []).append(t)
    assert any(  # a group in which one member was pruned while another trained to the end
        any(t.state == TrialState.PRUNED for t in g) and any(t.user_attrs["epochs_run"] == 6 for t in g)
        for gid, g in by_group.items()
        if gid >= 0
    )


@pytest.mark.slow
def test_fuse_in_the_spec_and_as_a_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "3", "--set", "execution.fuse=3", *ONE_CELL]) == 0
    assert {t.user_attrs.get("group_size") for t in load(url).trials} == {3}
    for bad in (["--fuse", "0"], ["--set", "execution.fuse=0"]):
        assert main(["launch", str(SMOKE), "--storage", f"sqlite:///{tmp_path / 'x.db'}", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "fuse" in err and "Traceback" not in err
        assert not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_two_fused_workers_fill_the_budget_exactly(tmp_path: Path) -> None:
    # Two workers asking for 4 at a time on a 5-trial budget: the claim lock keeps the count
    # exact on SQLite, so nothing is refused and nothing runs beyond the budget.
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["launch", str(SMOKE), "--storage", url, "--trials", "5", "--fuse", "4", "--workers", "2", *ONE_CELL]
    assert main(argv) == 0
    trials = load(url).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 5
    assert not any(t.user_attrs.get(BUDGET_REFUSED) for t in trials) and len(trials) == 5


def test_without_a_lock_a_claim_past_the_budget_gives_its_places_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # A storage with no lock: another worker asked 3 trials after this one counted the budget.
    study = optuna.create_study()
    others = [study.ask() for _ in range(3)]
    monkeypatch.setattr("harness.search.launch.count_trials", lambda s: (0, 0, 0))  # the count made before they asked
    claim = claim_trials(study, nullcontext(), target=4, want=3)  # type: ignore[arg-type]
    assert len(claim.trials) == 1 and claim.trials[0].number == 3 and not claim.full
    refused = study.get_trials(states=(TrialState.FAIL,))
    assert [t.number for t in refused] == [4, 5]
    assert all(t.user_attrs[BUDGET_REFUSED] is True and "budget" in t.user_attrs["fail_reason"] for t in refused)
    assert all(t.state == TrialState.RUNNING for t in study.get_trials() if t.number in {o.number for o in others})


def test_fuse_needs_one_objective(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pareto = ["--set", 'study.objectives=["val_mse", "train_seconds"]', "--set", 'study.pruner="none"']
    assert main(["launch", str(SMOKE), "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--fuse", "2", *pareto]) == 2
    err = capsys.readouterr().err
    assert "execution.fuse" in err and "train_seconds" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_confirm_fuses_replicates_and_sweeps_with_the_numbers_of_solo_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    fp64 = ["--set", 'training.precision="fp64"', "--set", "training.epochs=2"]
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "3", *ONE_CELL, *fp64]) == 0
    argv = ["confirm", "--storage", url, "--seeds", "3", "--windows", "3,5", "--fuse", "8", "--device", "cpu"]
    assert main(argv) == 0
    runs = load(url, "smoke/confirm").get_trials(states=(TrialState.COMPLETE,))
    windows = {t.user_attrs["config"]["window"] for t in runs}
    assert len(runs) == 3 * len(windows) and {3, 5} <= windows
    groups: dict[str, int] = {}
    for t in runs:
        if "group_id" in t.user_attrs:
            groups[t.user_attrs["group_id"]] = groups.get(t.user_attrs["group_id"], 0) + 1
    assert groups and all(
        t.user_attrs["group_size"] == groups[t.user_attrs["group_id"]] > 1 for t in runs if "group_id" in t.user_attrs
    )
    for t in runs:
        solo = run(RunConfig.from_dict(t.user_attrs["config"]), "cpu")
        assert t.value == pytest.approx(solo.metrics["val_mse"], rel=1e-6)
        assert t.user_attrs["horizon"] == solo.metrics["horizon"]


@pytest.mark.slow
def test_ctrl_c_fails_the_whole_group_and_a_relaunch_completes(tmp_path: Path) -> None:
    # 100 epochs: a group of three ~7 s, so the signal lands inside its training (at 30 epochs
    # the group took ~2 s on a faster machine, and a kill 1.5 s in could find it finished)
    from test_reliability import ROOT, assert_interrupted, launch_cmd, running, wait_for

    url = f"sqlite:///{tmp_path / 'h.db'}"
    slow = ["--set", "training.epochs=100", "--set", 'search.cell=["lstm"]', "--no-progress", "--fuse", "3"]
    proc = subprocess.Popen([*launch_cmd(url, 6), *slow], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    wait_for(url, lambda ts: sum(t.state == TrialState.RUNNING for t in ts) == 3 and running(ts), timeout=120)
    time.sleep(1.0)  # inside the group's training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    trials = load(url).trials
    assert not any(t.state == TrialState.RUNNING for t in trials)
    assert_interrupted([t for t in trials if t.state == TrialState.FAIL])
    assert subprocess.run([*launch_cmd(url, 6), *slow], cwd=ROOT, timeout=300).returncode == 0
    assert sum(t.state == TrialState.COMPLETE for t in load(url).trials) == 6


@pytest.mark.slow
def test_a_killed_group_is_failed_and_its_trials_run_again(tmp_path: Path) -> None:
    from test_reliability import ROOT, launch_cmd, wait_for

    url = f"sqlite:///{tmp_path / 'h.db'}"
    slow = ["--set", "training.epochs=100", "--set", 'search.cell=["lstm"]', "--no-progress", "--fuse", "3"]
    proc = subprocess.Popen([*launch_cmd(url, 3), *slow], cwd=ROOT, stderr=subprocess.DEVNULL)
    killed = wait_for(url, lambda ts: sum(t.state == TrialState.RUNNING for t in ts) == 3, timeout=120)
    time.sleep(1.5)  # the heartbeats have started
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert subprocess.run([*launch_cmd(url, 3), *slow], cwd=ROOT, timeout=300).returncode == 0
    trials = load(url).trials
    assert all(trials[t.number].state == TrialState.FAIL for t in killed)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and {t.system_attrs.get("failed_trial") for t in complete} == {t.number for t in killed}


@pytest.mark.slow
def test_a_chaotic_float32_fused_trial_is_reproduced_from_its_weights_and_group(tmp_path: Path) -> None:
    """In float32 at a high learning rate a fused trial and its config re-run alone part ways
    (the order of float sums differs, and the rounding grows chaotically); its stored weights
    give its recorded metrics exactly, and its group's members are recorded to re-form it."""
    import harness
    from harness.series.data import make_windows
    from harness.series.signals import make_signal
    from harness.training.device import set_threads, threads_per_worker
    from harness.training.train import final_metrics

    url, artifacts = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "artifacts"
    argv = ["launch", str(SMOKE), "--storage", url, "--artifacts", str(artifacts), "--trials", "4", "--fuse", "4",
            "--set", 'search.cell=["rnn"]', "--set", "search.lr={low=0.04, high=0.05}", "--set", "training.epochs=5",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    trials = [t for t in load(url).trials if "group_id" in t.user_attrs]
    assert trials, "no trial trained in a group"
    # evaluated with the threads the launch's one worker had: torch's head products round
    # differently on 1 and 2 threads (1e-9 relative), and "exactly" means on the same ones
    restore = set_threads(threads_per_worker(1))
    try:
        for t in trials:
            members = t.user_attrs["group_members"]
            assert (
                t.number in members
                and len(members) == t.user_attrs["group_size"]
                and min(members) == t.user_attrs["group_id"]
            )
            config = RunConfig.from_dict(t.user_attrs["config"])
            model = harness.load_model(url, "smoke", t.number, artifacts)
            data = make_windows(make_signal(config.signal), config.window, "cpu")
            again = final_metrics(model, data, config.protocol)
            assert again["val_mse"] == t.value and again["test_mse"] == t.user_attrs["test_mse"]  # exactly
    finally:
        restore()


def test_a_worker_claims_a_group_only_where_most_trials_can_group(tmp_path: Path) -> None:
    """Trials claimed together but unable to group train one after another in one worker while
    another may idle: a search over hidden 8-256 (most of it past the 24 an LSTM and the 32 an
    RNN or GRU groups to on the CPU) claims one trial at a time; a small space claims `fuse`;
    nothing groups on a GPU or outside the window protocol."""
    from harness.search.launch import claim_size, plan
    from harness.search.spec import load_spec

    members = {
        m.spec.cells()[0]: m.spec
        for m in plan(load_spec(SMOKE.parent / "short_period.toml"), f"sqlite:///{tmp_path / 'h.db'}")
    }
    assert {cell: claim_size(spec, 4, "cpu") for cell, spec in members.items()} == {"rnn": 1, "lstm": 1, "gru": 1}
    for cell in ("rnn", "lstm", "gru"):
        assert claim_size(load_spec(SMOKE, [f'search.cell=["{cell}"]']), 4, "cpu") == 4  # hidden 4-16
    small = load_spec(SMOKE, ['search.cell=["lstm"]'])
    assert claim_size(small, 4, "cuda") == 1 and claim_size(small, 1, "cpu") == 1
    seed = load_spec(SMOKE, ['search.cell=["lstm"]', 'training.protocol="seed"'])
    assert claim_size(seed, 4, "cpu") == 1
    for past in ("search.hidden_size={low=64, high=64}", "training.num_layers=2"):  # one value past 24; two layers
        assert claim_size(load_spec(SMOKE, ['search.cell=["lstm"]', past]), 4, "cpu") == 1, past
