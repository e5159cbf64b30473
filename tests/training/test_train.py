from __future__ import annotations

import math
import time
from dataclasses import asdict

import pytest

from harness.series.data import make_windows
from harness.series.signals import SignalConfig, make_signal
from harness.training import evaluate
from harness.training.reproduce import NOTEBOOK_RUNS, NotebookSettings, notebook_config
from harness.training.train import RunConfig, TrainResult, run

from conftest import CELLS
from notebook_port import notebook_losses, reference, reference_losses

# The notebook loop's summed losses for every run in NOTEBOOK_RUNS, 33 epochs each, are
# recorded in tests/data/notebook_losses.json (`python tests/regenerate_notebook_losses.py`):
# the loop costs 6-12 s per run here, the harness's seed protocol 0.1-0.5 s.
# NOTEBOOK_RTOL is the README's claim. Measured here (torch 2.13.0 CPU): the largest relative
# difference over all six runs and 33 epochs is 6e-6, with the fused path on or off.
NOTEBOOK_RTOL = 1e-3


def test_reference_file_holds_every_notebook_run_at_the_notebook_settings() -> None:
    meta, runs = reference()["metadata"], reference()["runs"]
    assert meta["settings"] == asdict(NotebookSettings()) == {"hidden_size": 30, "lr": 0.01, "epochs": 33, "seed": 42}
    assert meta["command"] == "python tests/regenerate_notebook_losses.py" and meta["torch_version"] and meta["date"]
    assert [(r["cell"], r["signal"], r["window"]) for r in runs] == list(NOTEBOOK_RUNS)
    assert all(len(r["summed_loss_by_epoch"]) == 33 for r in runs)


@pytest.mark.parametrize("cell,signal,window", NOTEBOOK_RUNS)
def test_seed_protocol_matches_the_notebook_at_every_epoch(cell: str, signal: str, window: int) -> None:
    ours = run(notebook_config(cell, signal, window, NotebookSettings()), "cpu").losses
    theirs = reference_losses(cell, signal, window)
    assert len(ours) == len(theirs) == 33
    assert ours == pytest.approx(theirs, rel=NOTEBOOK_RTOL)


@pytest.mark.slow
def test_notebook_loop_live_matches_the_reference_file_and_the_seed_protocol() -> None:
    # One full run of the notebook's loop (the cheapest, ~6 s), so the committed reference
    # cannot drift from tests/notebook_port.py unnoticed.
    cell, signal, window = "rnn", "short-period", 5
    theirs = notebook_losses(cell, make_signal(SignalConfig(signal)), window, **reference()["metadata"]["settings"])
    assert len(theirs) == 33
    assert theirs == pytest.approx(reference_losses(cell, signal, window), rel=NOTEBOOK_RTOL)
    ours = run(notebook_config(cell, signal, window, NotebookSettings()), "cpu").losses
    assert ours == pytest.approx(theirs, rel=NOTEBOOK_RTOL)
    assert ours[0] == pytest.approx(650.13, rel=1e-4)  # the figure measured from the notebook


def recomputed_metrics(r: TrainResult) -> dict[str, float]:
    """The final metrics, computed again from the model the run returned."""
    assert r.model is not None
    c = r.config
    data = make_windows(make_signal(c.signal), c.window, "cpu", c.train_frac, c.val_frac)
    s = data.splits
    free = evaluate.rollout(r.model, data, c.protocol)
    truth = data.y[s.test]
    return {
        "val_mse": evaluate.mse(evaluate.predict(r.model, data, c.protocol, s.val), data.y[s.val]),
        "test_mse": evaluate.mse(evaluate.predict(r.model, data, c.protocol, s.test), truth),
        "rollout_mse": evaluate.mse(free, truth),
        "horizon": evaluate.horizon(free, truth),
    }


def test_notebook_runs_cover_its_questions() -> None:
    assert ("lstm", "long-period", 32) in NOTEBOOK_RUNS and ("rnn", "short-period", 5) in NOTEBOOK_RUNS
    assert {c for c, _, _ in NOTEBOOK_RUNS} == set(CELLS)


@pytest.mark.parametrize("protocol", ["seed", "window"])
@pytest.mark.parametrize("cell", CELLS)
def test_same_seed_gives_identical_losses(cell: str, protocol: str) -> None:
    config = RunConfig(cell=cell, protocol=protocol, hidden_size=8, epochs=2, window=4)
    a, b = run(config, "cpu"), run(config, "cpu")
    assert a.losses == b.losses and a.val_mse_by_epoch == b.val_mse_by_epoch
    c = run(RunConfig(cell=cell, protocol=protocol, hidden_size=8, epochs=2, window=4, seed=7), "cpu")
    assert c.losses != a.losses


@pytest.mark.parametrize("protocol", ["seed", "window"])
@pytest.mark.parametrize("cell", CELLS)
def test_result_has_losses_metrics_and_timings(cell: str, protocol: str) -> None:
    seen: list[tuple[int, dict[str, float]]] = []
    r = run(
        RunConfig(cell=cell, protocol=protocol, hidden_size=8, epochs=3, window=6, batch_size=32),
        "cpu",
        on_epoch=lambda e, m: seen.append((e, m)) is None and False,
    )
    assert [e for e, _ in seen] == [0, 1, 2] and r.epochs_run == 3
    assert [m["val_mse"] for _, m in seen] == r.val_mse_by_epoch
    assert r.metrics["val_mse"] == pytest.approx(min(r.val_mse_by_epoch), rel=1e-6)  # best epoch's weights
    assert all(math.isfinite(r.metrics[k]) and r.metrics[k] >= 0 for k in ("val_mse", "test_mse", "rollout_mse"))
    assert r.metrics == pytest.approx(recomputed_metrics(r), rel=1e-6)  # from the returned (best) weights
    assert r.train_seconds > 0
    assert r.samples_per_second > 0 and r.process_peak_bytes >= r.run_memory_bytes >= 0  # a small run may add nothing
    assert r.device == "cpu" and r.device_name and r.n_params > 0
    assert not r.diverged and r.fail_reason is None


def test_window_protocol_learns_the_short_signal() -> None:
    r = run(RunConfig(cell="gru", protocol="window", hidden_size=16, epochs=15, window=8, lr=0.01), "cpu")
    assert r.losses[-1] < r.losses[0] / 10
    assert r.metrics["test_mse"] < 0.01  # the train mean scores 0.5 on a unit sine
    # Free-running, it holds the short signal within 0.1 for most of the 150 test steps
    # (all 150 measured with this seed; 70..150 over seeds 0..4), and the figure is the
    # rollout's own horizon, not a stale or clipped number.
    assert r.metrics["horizon"] >= 100
    assert r.metrics["horizon"] == recomputed_metrics(r)["horizon"]


@pytest.mark.parametrize("cell", CELLS)
def test_an_untrained_model_has_a_short_horizon(cell: str) -> None:
    # One epoch at lr 1e-5 leaves the initial weights: its rollout misses by more than 0.1
    # within a few steps (measured: at the first step for every cell).
    r = run(RunConfig(cell=cell, protocol="window", hidden_size=16, epochs=1, window=8, lr=1e-5), "cpu")
    assert r.metrics["horizon"] < 10
    assert r.metrics["horizon"] == recomputed_metrics(r)["horizon"]
    assert r.metrics["test_mse"] > 0.1


def test_train_seconds_exclude_the_on_epoch_callback() -> None:
    # The caller's per-epoch work (pruning checks, storage writes) is not training time: the
    # training time and the callback's naps, each measured, fit inside the call's wall time
    # (counting the naps in train_seconds would count them twice). Order, not a speed.
    epochs, nap = 5, 0.2
    naps: list[float] = []

    def slow_callback(epoch: int, metrics: dict[str, float]) -> bool:
        began = time.perf_counter()
        time.sleep(nap)
        naps.append(time.perf_counter() - began)
        return False

    config = RunConfig(cell="lstm", protocol="seed", hidden_size=4, epochs=epochs)
    start = time.perf_counter()
    r = run(config, "cpu", on_epoch=slow_callback)
    wall = time.perf_counter() - start
    assert r.epochs_run == len(naps) == epochs and min(naps) >= nap
    assert 0 < r.train_seconds <= wall - sum(naps)
    assert r.seconds_per_epoch == pytest.approx(r.train_seconds / epochs)
    y = make_signal(config.signal, train_frac=config.train_frac)
    data = make_windows(y, config.window, "cpu", config.train_frac, config.val_frac)
    n_train = data.splits.train.stop - data.splits.train.start
    assert r.samples_per_second == pytest.approx(n_train * epochs / r.train_seconds)


def test_on_epoch_can_stop_a_run() -> None:
    r = run(RunConfig(hidden_size=4, epochs=10), "cpu", on_epoch=lambda e, m: e == 1)
    assert r.stopped and r.epochs_run == 2


@pytest.mark.parametrize("protocol", ["seed", "window"])
def test_divergence_stops_early_and_is_reported(protocol: str) -> None:
    r = run(RunConfig(cell="rnn", protocol=protocol, lr=1e30, epochs=10, hidden_size=8), "cpu")
    assert r.diverged and r.epochs_run < 10
    assert r.fail_reason is not None and "diverged at epoch" in r.fail_reason


def test_the_slow_epoch_guard_needs_both_slow_epochs_and_a_stalled_loss() -> None:
    from harness.training.loop import SlowEpochs

    guard = SlowEpochs(factor=8, stall=3)  # smaller than the default factor, to keep the numbers short
    healthy = [guard(s, v) for s, v in [(0.5, 1.0), (0.1, 0.5), (0.12, 0.4), (0.9, 0.3), (0.95, 0.2)]]
    assert healthy == [None] * 5  # 9x slower, but still improving: a slow trial is not a stuck one
    stalled = [guard(s, 0.3) for s in (0.1, 0.1, 0.1)]  # stalled, but not slow
    assert stalled == [None] * 3
    assert [guard(s, 0.3) for s in (0.9, 0.9)] == [None, None]  # slow and stalled, but not 3 epochs in a row yet
    reason = guard(0.9, 0.3)
    assert reason is not None and reason.startswith("ended at epoch 10: 0.9 CPU s, 9x its healthy epochs")
    assert "not improved for 6 epochs" in reason


def test_one_slow_epoch_or_slow_tiny_epochs_end_nothing() -> None:
    """One hiccup of the machine, or a tiny trial's epochs 20x their 10 ms: not a slow trial."""
    from harness.training.loop import MIN_SLOW_SECONDS, SlowEpochs

    hiccup = SlowEpochs(factor=8, stall=3)
    assert [hiccup(s, 0.3) for s in (0.1, 0.1, 0.1, 0.1, 0.1, 2.0, 0.1, 0.1, 2.0)] == [None] * 9
    tiny = SlowEpochs(factor=8, stall=3)
    slow_but_short = MIN_SLOW_SECONDS * 0.9
    assert [tiny(s, 0.3) for s in (0.01, 0.01, 0.01, *[slow_but_short] * 6)] == [None] * 9


def test_a_trial_that_saturates_is_ended_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted saturating trial: from epoch 3 on each epoch burns 40x its healthy CPU time
    (what denormals did to oneDNN's LSTM backward) and, at a learning rate of ~0, learns nothing."""
    from harness.training import train as train_module
    from harness.training.loop import MIN_SLOW_SECONDS

    real = train_module.train_epoch
    epochs: list[float] = []

    def saturating(*args: object, **kwargs: object) -> float:
        start = time.process_time()
        loss = real(*args, **kwargs)  # type: ignore[arg-type]
        took = time.process_time() - start
        if len(epochs) >= 3:
            while time.process_time() - start < max(40 * min(epochs[1:3]), 2 * MIN_SLOW_SECONDS):
                pass
        epochs.append(took)
        return loss

    monkeypatch.setattr(train_module, "train_epoch", saturating)
    config = RunConfig(cell="gru", hidden_size=8, window=8, epochs=20, lr=1e-12)
    result = run(config, "cpu")
    assert result.stopped and result.epochs_run < 10  # ended, not run to epoch 20
    assert result.fail_reason is not None and "healthy epochs, while val_mse had not improved" in result.fail_reason
