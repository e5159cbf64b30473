"""`python -m harness.gpucheck`: one prepared command that proves the CUDA path and measures it.

A GPU is at hand for this project only now and then, for minutes, so everything worth
knowing comes back from one call (`make gpu-check`): the environment; the CUDA-marked tests;
CPU against GPU numerics on the notebook's runs; a solo trial's time on each device; trials
per minute with 1, 2, 4 and 8 workers sharing the GPU; peak GPU memory per trial; a local
trial over M3's 1,428 monthly series as one batched group against the same models one by one. It writes
`gpu-check.json` (every figure) and `gpu-check.md` (a summary) into `--out` (default: the
folder `$OUT` names, else results/gpu-check). `--quick` is a shorter re-run; `--device cpu
--quick` runs the same code on the CPU in the normal test suite, so it cannot rot between
GPU runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from harness import __version__
from harness.series.signals import SignalConfig
from harness.training.device import device_name, resolve_device
from harness.training.reproduce import NOTEBOOK_RUNS, NotebookSettings, notebook_config
from harness.training.train import RunConfig, run

SOLO = (("rnn", 16, 16), ("lstm", 64, 32), ("gru", 256, 64))  # (cell, hidden, window): small to large


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "harness": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "device": str(device),
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
    }


def cuda_tests(root: Path) -> dict[str, Any]:
    """The suite's CUDA tests (data on the device, cuDNN, numerics, CLI on cuda). Only their
    file: the rest of the suite imports optuna-dashboard, which the GPU machine lacks."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/training/test_cuda.py"]
    try:  # stderr too: a conftest that fails to import says why only there
        proc = subprocess.run(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        return {"returncode": None, "summary": "timed out after 300 s", "output_tail": out.splitlines()[-30:]}
    lines = proc.stdout.strip().splitlines()
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else "", "output_tail": lines[-30:]}


def numerics(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """The notebook's runs (seed protocol, summed loss per epoch) on the CPU and on `device`:
    with TF32 off the two should agree to float32 precision."""
    runs = NOTEBOOK_RUNS[:1] if quick else NOTEBOOK_RUNS
    rows = []
    for cell, signal, window in runs:
        config = notebook_config(cell, signal, window, NotebookSettings())
        cpu, dev = run(config, "cpu").losses, run(config, device).losses
        worst = max(abs(a - b) / max(abs(a), 1e-30) for a, b in zip(cpu, dev, strict=True))
        rows.append({"cell": cell, "signal": signal, "window": window, "epochs": len(cpu),
                     "max_relative_difference": worst, "cpu_last": cpu[-1], "device_last": dev[-1]})  # fmt: skip
    return rows


def solo(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """One window-protocol trial per size on `device` and on the CPU: seconds and peak memory."""
    rows = []
    for cell, hidden, window in SOLO[:1] if quick else SOLO:
        epochs = 2 if quick else 20
        config = RunConfig(signal=SignalConfig("long-period"), cell=cell, hidden_size=hidden, window=window,
                           epochs=epochs)  # fmt: skip
        row: dict[str, Any] = {"cell": cell, "hidden_size": hidden, "window": window, "epochs": epochs}
        for label, where in (("device", device), ("cpu", torch.device("cpu"))):
            result = run(config, where)
            row |= {
                f"{label}_train_seconds": result.train_seconds,
                f"{label}_peak_memory_bytes": result.process_peak_bytes,
            }
        row["speedup"] = row["cpu_train_seconds"] / row["device_train_seconds"]
        rows.append(row)
    return rows


def workers(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """Trials per minute with K workers sharing `device` (each a process with its own CUDA
    context), timed from the database: first trial start to last trial end."""
    import optuna

    from harness.search.launch import launch
    from harness.search.spec import load_spec
    from harness.search.study import wall_seconds

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(__file__).resolve().parent.parent
    spec = load_spec(root / "studies" / "smoke.toml", ["study.pruner=none", f"training.epochs={2 if quick else 20}"])
    rows = []
    for k in (1, 2) if quick else (1, 2, 4, 8):
        n = 2 * k if quick else 8 * k
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/gpu-check.db"
            launch(spec, url, trials=n, workers=k, device=str(device), progress=False, threads=1)
            study = optuna.load_study(study_name="smoke", storage=url)
            trials, seconds = study.trials, wall_seconds(study)
        peak = max(t.user_attrs.get("process_peak_bytes", 0) for t in trials)
        failed = sum(t.state.name == "FAIL" for t in trials)
        rows.append({"workers": k, "trials": n, "seconds": seconds, "trials_per_minute": 60 * n / seconds,
                     "max_peak_memory_bytes": peak, "failed": failed})  # fmt: skip
    return rows


def collection(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """A local trial over M3's monthly series as one group (`training.collection`) against the
    same models trained one by one with torch's layers and Adam (`tests/benchmarks/
    plain_collection.py`, a sample of series, its time scaled to the group's count), both on
    `device`; and the two ways' test forecasts compared on the sample (float32)."""
    import numpy as np

    from harness.series.collections import CollectionConfig, load
    from harness.training import collection as collection_training
    from harness.training.collection import CollectionRunConfig

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from benchmarks import plain_collection  # the peer lives beside the benchmarks that time it on the CPU

    everything = load(CollectionConfig(collection="m3", category="monthly"))
    group_size, sample_size, epochs = (48, 3, 1) if quick else (len(everything), 20, 2)
    group = everything[:group_size]
    sample = everything[:sample_size]
    config = CollectionRunConfig(collection=CollectionConfig(collection="m3", category="monthly"), scope="local",
                                 cell="gru", hidden_size=16, window=12, epochs=epochs, batch_size=32)  # fmt: skip
    collection_training.run(replace(config, epochs=1), device, series=sample)  # warm: kernels, allocator
    start = time.perf_counter()
    grouped = collection_training.run(config, device, series=group)
    group_seconds = time.perf_counter() - start
    start = time.perf_counter()
    alone = plain_collection.train_all(sample, config, str(device))
    plain_seconds = time.perf_counter() - start
    scaled = plain_seconds * len(group) / len(sample)
    difference = float(np.max(np.abs(grouped.forecasts[:sample_size] - alone) / np.abs(alone)))
    return [{"series": len(group), "epochs": epochs, "group_seconds": group_seconds, "plain_series": len(sample),
             "plain_seconds": plain_seconds, "plain_seconds_scaled": scaled, "speedup": scaled / group_seconds,
             "max_relative_forecast_difference": difference}]  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"# GPU check, {report['date']}", "",
             f"{env['device_name']} ({env['device']}), torch {env['torch']}, CUDA {env['cuda']}, "
             f"cuDNN {env['cudnn']}, Python {env['python']}, {env['cpu_count']} CPU cores; "
             f"{report['seconds']:.0f} s in all.", ""]  # fmt: skip
    if "cuda_tests" in report:
        lines += [
            f"CUDA-marked tests: {report['cuda_tests']['summary']} (exit {report['cuda_tests']['returncode']})",
            "",
        ]
    lines += ["| notebook run | epochs | max relative difference, CPU vs device |", "|---|---|---|"]
    lines += [f"| {r['cell']} {r['signal']} W{r['window']} | {r['epochs']} | {r['max_relative_difference']:.2e} |"
              for r in report["numerics"]]  # fmt: skip
    lines += ["", "| solo trial | device s | CPU s | speed-up | device peak memory |", "|---|---|---|---|---|"]
    lines += [f"| {r['cell']} hidden {r['hidden_size']} W{r['window']}, {r['epochs']} epochs | "
              f"{r['device_train_seconds']:.3f} | {r['cpu_train_seconds']:.3f} | {r['speedup']:.2f}x | "
              f"{r['device_peak_memory_bytes'] / 2**20:.1f} MiB |" for r in report["solo"]]  # fmt: skip
    lines += [
        "",
        "| workers | trials | trials per minute | max peak memory per trial | failed |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['workers']} | {r['trials']} | {r['trials_per_minute']:.1f} | "
              f"{r['max_peak_memory_bytes'] / 2**20:.1f} MiB | {r['failed']} |" for r in report["workers"]]  # fmt: skip
    if "collection" in report:
        lines += ["", "| local trial, M3 monthly | group s | one by one s (scaled) | speed-up | forecasts differ by |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['series']} series x {r['epochs']} epochs | {r['group_seconds']:.2f} | "
                  f"{r['plain_seconds_scaled']:.1f} (from {r['plain_series']}) | {r['speedup']:.1f}x | "
                  f"{r['max_relative_forecast_difference']:.1e} |" for r in report["collection"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.gpucheck", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (the suite's rehearsal)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "results/gpu-check", help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="a shorter re-run: one of each measurement")
    args = parser.parse_args(argv)
    from harness.errors import ConfigError

    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        print(f"harness.gpucheck: --device: {e.message}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "environment": environment(device),
    }
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2))
    if device.type == "cuda":
        report["cuda_tests"] = cuda_tests(Path(__file__).resolve().parent.parent)
    measures = (("collection", collection), ("numerics", numerics), ("solo", solo),
                ("workers", workers))  # the collection first: the check the project waits on  # fmt: skip
    for name, measure in measures:
        print(f"gpu check: {name}", file=sys.stderr, flush=True)
        report[name] = measure(device, args.quick)
        (out / "gpu-check.json").write_text(json.dumps(report, indent=2))  # what was measured survives a timeout
    report["seconds"] = time.perf_counter() - start
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2))
    (out / "gpu-check.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
