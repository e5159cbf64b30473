"""The results page (`harness results`, docs/results.md): every figure the README and the docs
quote, generated from the benchmarks' JSON (`make bench`) and the main job's database (`make run`)
instead of typed into prose, so a number always says which machine, commit and run produced it.

The page is headed by the machine that wrote it (CPU, cores), torch, the UTC date and the git
commit; each benchmark run it reads names its own machine and commit, since those are the ones
that produced the timings. A source that is missing is a section saying which command makes it,
never an error: a fresh checkout has neither.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from harness.errors import ConfigError
from harness.report.markdown import markdown_table, md_escape
from harness.search.study import summarize, wall_seconds
from harness.training.device import cpu_name

BENCH_COMMAND = "make bench"
RUN_COMMAND = "make run"


# ---------------------------------------------------------------- the machine writing the page
def git_commit(folder: Path | None = None) -> str:
    """`git rev-parse --short HEAD` of the checkout holding the package, marked where the
    working tree differs from it (the numbers then come from code no commit holds); "unknown"
    outside a checkout or without git."""
    where = folder or Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=where, check=False)  # fmt: skip
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, timeout=5, cwd=where, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" (uncommitted changes)" if status.stdout.strip() else "")


def page_header(now: datetime.datetime | None = None) -> dict[str, str]:
    """What wrote the page: CPU model and cores, torch, UTC date, git commit."""
    now = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    return {"machine": f"{cpu_name()}, {os.cpu_count() or 1} cores", "torch": torch.__version__,
            "date": now.strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit()}  # fmt: skip


# ---------------------------------------------------------------- benchmarks
@dataclass(frozen=True)
class BenchRun:
    """One pytest-benchmark JSON file (one `pytest --benchmark-autosave` session)."""

    path: Path
    when: datetime.datetime
    commit: str
    machine: str
    benchmarks: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Pairing:
    """Arms of one benchmark read against one of them, the baseline: within a benchmark group
    and the same other parameters, each arm's speed-up over the baseline (above 1: faster).

    An arm is named by the parameter `arm` (or, where `arm` is empty, by the test function:
    two functions timed in one group). Cost is the median seconds, scaled to the whole
    workload where the arm ran a sample of it (`extra_info` `series` and `scaled_to`); where
    `throughput` names an `extra_info` rate (higher is better), the ratio is of that instead."""

    module: str
    arm: str
    baseline: str
    says: str
    throughput: str = ""


PAIRINGS = (
    Pairing(
        "test_bench_collection", "how", "plain", "a local trial over M3 monthly as one group against the plain script"
    ),
    Pairing("test_bench_plain", "how", "plain", "trials per hour against the plain script", "trials_per_hour"),
    Pairing("test_bench_adam", "how", "torch-fused", "a training step with FlatAdam against torch's fused Adam"),
    Pairing("test_bench_seed", "", "test_notebook_loop", "the seed protocol in one call against the notebook's loop"),
    Pairing("test_bench_train", "use_fused", "False", "an epoch on the fused CPU recurrence against torch's"),
    Pairing("test_bench_train", "kernel", "torch", "the fused kernel's forward and backward against torch's"),
    Pairing("test_bench_train", "denormals", "kept", "a saturating LSTM's epoch, denormals flushed against kept"),
)


def _parse_when(text: Any, path: Path) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def read_bench_run(path: Path) -> BenchRun:
    """A pytest-benchmark JSON file; a file that is not one is a mistake naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError("benchmarks", f"cannot read {path} as JSON ({getattr(e, 'strerror', None) or e})") from None
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, list) or not all(_is_benchmark(bench) for bench in benchmarks):
        raise ConfigError("benchmarks", f"{path} is not pytest-benchmark JSON (a list `benchmarks` of records with "
                                        "`fullname`, `name` and `stats.median`)")  # fmt: skip
    info = data.get("commit_info") or {}
    commit = (info.get("id") or "unknown")[:10] + (" (uncommitted changes)" if info.get("dirty") else "")
    cpu = (data.get("machine_info") or {}).get("cpu") or {}
    machine = f"{cpu.get('brand_raw') or 'unknown CPU'}, {cpu.get('count', '?')} cores"
    return BenchRun(path, _parse_when(data.get("datetime"), path), commit, machine, tuple(benchmarks))


def _is_benchmark(bench: Any) -> bool:
    if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
        return False
    named = isinstance(bench.get("fullname"), str) and isinstance(bench.get("name"), str)
    return named and isinstance(bench["stats"].get("median"), int | float)


def find_bench_runs(folder: Path | None) -> list[BenchRun]:
    """Every pytest-benchmark JSON under `folder` (`--benchmark-storage` writes
    `<folder>/<machine-id>/NNNN_*.json`), oldest first; none where the folder does not exist."""
    if folder is None or not folder.exists():
        return []
    if not folder.is_dir():
        raise ConfigError("benchmarks", f"{folder} is a file, not a folder of pytest-benchmark JSON")
    runs = [read_bench_run(path) for path in sorted(folder.rglob("*.json")) if path.is_file()]
    return sorted(runs, key=lambda run: (run.when, str(run.path)))


def newest_benchmarks(runs: Sequence[BenchRun]) -> list[tuple[int, dict[str, Any]]]:
    """Each benchmark (by its full test id) from the newest run that has it, with that run's
    index in `runs`; a partial run (one file, `-k`) then replaces only what it timed."""
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, run in enumerate(runs):
        for bench in run.benchmarks:
            newest[bench["fullname"]] = (index, bench)
    return list(newest.values())


def module_of(bench: dict[str, Any]) -> str:
    """`tests/benchmarks/test_bench_seed.py::test_x[a]` -> `test_bench_seed`."""
    return Path(bench["fullname"].split("::")[0]).stem


def _extra(info: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())


def bench_table(rows: Iterable[tuple[int, dict[str, Any]]]) -> pd.DataFrame:
    """One row per benchmark: its test id, group, median and IQR seconds, rounds, extra_info
    and the run (numbered as the page lists them) it comes from."""
    records = [{"test": bench["name"], "group": bench.get("group") or "", "median s": float(bench["stats"]["median"]),
                "IQR s": float(bench["stats"].get("iqr", float("nan"))), "rounds": bench["stats"].get("rounds"),
                "extra_info": _extra(bench.get("extra_info") or {}), "run": index + 1}
               for index, bench in rows]  # fmt: skip
    return pd.DataFrame(records, columns=["test", "group", "median s", "IQR s", "rounds", "extra_info", "run"])


def _arm(bench: dict[str, Any], pairing: Pairing) -> str | None:
    if not pairing.arm:
        return str(bench["name"]).split("[")[0]
    params = bench.get("params") or {}
    return str(params[pairing.arm]) if pairing.arm in params else None


def _cost(bench: dict[str, Any]) -> float:
    """Median seconds, scaled to the whole workload where the arm timed a sample of it."""
    info = bench.get("extra_info") or {}
    median = float(bench["stats"]["median"])
    if info.get("scaled_to") and info.get("series"):
        return median * float(info["scaled_to"]) / float(info["series"])
    return median


def _speedup(baseline: dict[str, Any], arm: dict[str, Any], throughput: str) -> float:
    rates = [(b.get("extra_info") or {}).get(throughput) for b in (baseline, arm)] if throughput else [None, None]
    if all(isinstance(rate, int | float) and rate > 0 for rate in rates):
        return float(rates[1]) / float(rates[0])  # type: ignore[arg-type]
    return _cost(baseline) / _cost(arm)


def pairing_table(runs: Sequence[BenchRun], pairing: Pairing) -> pd.DataFrame:
    """Each arm's speed-up over the baseline, per group and the same other parameters, from
    the newest run that timed both: timings from two runs (two machines, two commits) are
    never set against each other."""
    found: dict[tuple[Any, ...], tuple[int, dict[str, Any], dict[str, dict[str, Any]]]] = {}
    for index, run in enumerate(runs):
        cases: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
        for bench in run.benchmarks:
            arm = _arm(bench, pairing)
            if module_of(bench) != pairing.module or arm is None:
                continue
            others = tuple(sorted((k, str(v)) for k, v in (bench.get("params") or {}).items() if k != pairing.arm))
            cases.setdefault((bench.get("group") or "", others), {})[arm] = bench
        for key, arms in cases.items():
            if pairing.baseline in arms and len(arms) > 1:
                found[key] = (index, arms[pairing.baseline], arms)
    records = []
    for (group, others), (index, baseline, arms) in found.items():
        for name, bench in arms.items():
            if name == pairing.baseline:
                continue
            records.append({"group": group, "case": ", ".join(f"{k}={v}" for k, v in others),
                            "arm": name, "against": pairing.baseline,
                            "speed-up": _speedup(baseline, bench, pairing.throughput), "run": index + 1})  # fmt: skip
    return pd.DataFrame(records, columns=["group", "case", "arm", "against", "speed-up", "run"])


def _code(text: Any) -> str:
    """`text` as a code span (shown as it is: markdown escapes do not work inside one)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def benchmarks_section(folder: Path | None) -> list[str]:
    runs = find_bench_runs(folder)
    lines = ["## Benchmarks", ""]
    if not runs:
        where = _code(_shown(folder)) if folder is not None else "no folder given"
        return lines + [f"No pytest-benchmark JSON yet ({where}): `{BENCH_COMMAND}` times the benchmarks and "
                        "writes it to `results/benchmarks/`.", ""]  # fmt: skip
    lines += ["Each benchmark from the newest run that timed it; seconds per call (the median over the rounds) "
              "on the run's own machine.", "", "Runs:", ""]  # fmt: skip
    lines += [f"{i + 1}. {_code(_shown(run.path))}: {run.when.strftime('%Y-%m-%d %H:%M UTC')}, "
              f"commit {_code(run.commit)}, {md_escape(run.machine)}" for i, run in enumerate(runs)]  # fmt: skip
    lines.append("")
    newest = newest_benchmarks(runs)
    for module in sorted({module_of(bench) for _, bench in newest}):
        rows = [(i, bench) for i, bench in newest if module_of(bench) == module]
        lines += [f"### {_code(module + '.py')}", "", markdown_table(bench_table(rows))]
        for pairing in (p for p in PAIRINGS if p.module == module):
            table = pairing_table(runs, pairing)
            if not table.empty:
                says = f"Speed-up: {md_escape(pairing.says)} (above 1: faster than {_code(pairing.baseline)})."
                lines += [says, "", markdown_table(table)]
    return lines


# ---------------------------------------------------------------- the main job's database
def study_table(storage: optuna.storages.BaseStorage) -> pd.DataFrame:
    """Per study: its trials by state, best value of its objective, wall time (first trial's
    start to last trial's end, as the database saw it) and the median finished trial's time
    (what a longer search of the same spec costs per trial)."""
    records = []
    for name in sorted(optuna.get_all_study_names(storage=storage)):
        study = optuna.load_study(study_name=name, storage=storage)
        summary = summarize(study)
        counts = summary["counts"]
        records.append({"study": name, "trials": sum(counts.values()), "complete": counts["COMPLETE"],
                        "pruned": counts["PRUNED"], "failed": counts["FAIL"], "objective": summary["objective"],
                        "best": summary["best_value"], "wall s": wall_seconds(study),
                        "median trial s": _median_trial_seconds(study)})  # fmt: skip
    columns = ["study", "trials", "complete", "pruned", "failed", "objective", "best", "wall s", "median trial s"]
    return pd.DataFrame(records, columns=columns)


def _median_trial_seconds(study: optuna.Study) -> float:
    took = [(t.datetime_complete - t.datetime_start).total_seconds()
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.datetime_start and t.datetime_complete]  # fmt: skip
    return float(np.median(took)) if took else float("nan")


ENVIRONMENT = {"cpu": "cpu", "gpus": "gpus", "torch": "torch_version", "optuna": "optuna_version",
               "python": "python_version", "harness": "harness_version", "commit": "git_commit"}  # fmt: skip


def environment_table(storage: optuna.storages.BaseStorage) -> pd.DataFrame:
    """The environments the studies recorded (`study.environment`), one row each with the
    studies that recorded it: a database filled on two machines or commits shows both."""
    seen: dict[tuple[str, ...], list[str]] = {}
    for frozen in storage.get_all_studies():
        env = frozen.user_attrs.get("environment")
        if not isinstance(env, dict):
            continue  # a study the harness did not create (or a race's history)
        row = tuple(
            ", ".join(value) if isinstance(value := env.get(key), list) else str(value or "")
            for key in ENVIRONMENT.values()
        )
        seen.setdefault(row, []).append(frozen.study_name)
    records = [dict(zip(ENVIRONMENT, row, strict=True)) | {"studies": ", ".join(sorted(names))}
               for row, names in seen.items()]  # fmt: skip
    frame = pd.DataFrame(records, columns=[*ENVIRONMENT, "studies"])
    frame["commit"] = frame["commit"].str[:10]
    frame["gpus"] = frame["gpus"].replace("", "none")
    return frame


def studies_section(storage: optuna.storages.BaseStorage | None, label: str) -> list[str]:
    lines = ["## The main job's studies", ""]
    shown = _code(label) if label else "the storage"
    if storage is None:
        return lines + [f"No database yet ({shown}): `{RUN_COMMAND}` runs the main job into it.", ""]
    studies = study_table(storage)
    if studies.empty:
        return lines + [f"{shown} holds no study yet: `{RUN_COMMAND}` runs the main job into it.", ""]
    lines += [f"From {shown}. Best is the lowest value of the study's first objective among its complete trials; "
              "wall time runs from its first trial's start to its last trial's end.", "",
              markdown_table(studies), "### Where they ran", "",
              "The environment each study recorded when it was created or last resumed.", "",
              markdown_table(environment_table(storage))]  # fmt: skip
    return lines


# ---------------------------------------------------------------- the page
def results_page(
    benchmark_dir: Path | None,
    storage: optuna.storages.BaseStorage | None,
    storage_label: str = "",
    now: datetime.datetime | None = None,
) -> str:
    """The page's markdown."""
    header = page_header(now)
    lines = ["# Results", "",
             "Generated by `harness results` (`make results`) from the benchmarks' JSON and the main job's "
             "database; edit nothing here by hand: run the command again.", "",
             *(f"- {key}: {_code(value)}" for key, value in header.items()), ""]  # fmt: skip
    lines += benchmarks_section(benchmark_dir)
    lines += studies_section(storage, storage_label)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_results_page(
    out: Path,
    benchmark_dir: Path | None,
    storage: optuna.storages.BaseStorage | None,
    storage_label: str = "",
    now: datetime.datetime | None = None,
) -> Path:
    """Write the page to `out` (its folder made if missing), whole or not at all: it is
    written beside `out` and renamed over it. A place that cannot be written is a mistake
    naming `out`."""
    text = results_page(benchmark_dir, storage, storage_label, now)
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)
    except OSError as e:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ConfigError("out", f"cannot write {out} ({e.strerror or e})") from None
    return out
