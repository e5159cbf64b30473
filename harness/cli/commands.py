"""The subcommands that run and read studies: reproduce, launch, studies, dashboard, confirm,
weights, report (`harness.cli` builds the parser; `race` holds race and record)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.cli.flags import (
    STORAGE_FLAGS,
    add_artifacts,
    add_storage,
    config_flag,
    flag_type,
    positive_float,
    positive_int,
)
from harness.constraints import rule_of
from harness.errors import ConfigError
from harness.search.spec import StudySettings
from harness.search.study import study_line

REPORT_DIR = "results/report"
COLLECTION_CACHE = "results/collections"


# ---------------------------------------------------------------- reproduce
_REPRODUCE_FLAGS = {
    "cell": "--cell",
    "name": "--signal",
    "window": "--window",
    "hidden_size": "--hidden-size",
    "lr": "--lr",
    "epochs": "--epochs",
    "seed": "--seed",
    "device": "--device",
}


def add_reproduce(p: argparse.ArgumentParser) -> None:
    from harness.series.signals import SIGNALS, SignalConfig
    from harness.training.models import CELLS
    from harness.training.reproduce import NotebookSettings
    from harness.training.train import RunConfig

    # No default: without --cell, --signal or --window, the notebook's own runs.
    config_flag(p, "--cell", RunConfig, "cell", default=None, metavar="{" + ",".join(CELLS) + "}")
    config_flag(p, "--signal", SignalConfig, "name", default=None, metavar="{" + ",".join(SIGNALS) + "}")
    config_flag(p, "--window", RunConfig, "window", default=None)
    for flag in ("--epochs", "--hidden-size", "--lr", "--seed"):
        config_flag(p, flag, NotebookSettings, flag[2:].replace("-", "_"))
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps (auto: cuda, then mps, then cpu)")
    p.add_argument("--json", action="store_true", help="one JSON object per run per line")
    p.set_defaults(func=_reproduce, flags=_REPRODUCE_FLAGS)


def _reproduce(args: argparse.Namespace) -> int:
    import pandas as pd

    from harness.training.device import resolve_device
    from harness.training.reproduce import (
        REPORTED_EPOCHS,
        NotebookSettings,
        notebook_config,
        reproduce_one,
        select_runs,
    )

    settings = NotebookSettings(hidden_size=args.hidden_size, lr=args.lr, epochs=args.epochs, seed=args.seed)
    # Validate every run and the device before training anything.
    configs = [notebook_config(c, s, w, settings) for c, s, w in select_runs(args.cell, args.signal, args.window)]
    device = resolve_device(args.device)
    rows = []
    for config in configs:
        row = reproduce_one(config, device)
        if args.json:
            print(json.dumps(row), flush=True)
        rows.append(row)
    if not args.json:
        table = pd.DataFrame(
            {
                "cell": r["cell"],
                "signal": r["signal"],
                "window": r["window"],
                **{
                    f"loss@{e}": (r["summed_loss_by_epoch"][e] if e < len(r["summed_loss_by_epoch"]) else None)
                    for e in REPORTED_EPOCHS
                },
                "eval_zero_state": r["eval_mse_zero_state"],
                "eval_stateful": r["eval_mse_stateful"],
                "train_s": r["train_seconds"],
            }
            for r in rows
        )
        first = rows[0]
        print(
            f"notebook settings: hidden {settings.hidden_size}, lr {settings.lr}, {settings.epochs} epochs, "
            f"seed {settings.seed}, device {first['device']} ({first['device_name']})"
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


# ---------------------------------------------------------------- launch
def add_launch(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="study spec files (TOML), e.g. studies/short_period.toml")
    config_flag(p, "--trials", StudySettings, "trials", default=None,
                 help="target number of finished trials per study (default: the spec's)")  # fmt: skip
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes on the same storage")
    p.add_argument(
        "--concurrent",
        type=positive_int,
        default=1,
        metavar="N",
        help="run up to N of the launch's studies at once (each spec's, and each cell's of an equal_cells "
        "spec), each with --workers workers; with one worker each, a study asks the same trials as when "
        "run alone",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        help="torch intra-op threads per worker (default: cores / (workers x concurrent))",
    )
    add_storage(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--timeout", type=positive_float, help="start no new trial after this many seconds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_artifacts(p, "where complete trials keep their trained weights")
    p.set_defaults(func=_launch, flags=STORAGE_FLAGS | {"artifacts": "--artifacts"})


def _launch(args: argparse.Namespace) -> int:
    from harness.search.launch import check_members, fill, plan, prepare_workers
    from harness.search.side_by_side import launch_side_by_side
    from harness.search.spec import load_spec
    from harness.search.storage import check_storage, redact, storage_url
    from harness.search.weights import check_artifacts
    from harness.training.device import resolve_device, threads_per_worker

    specs = [load_spec(path, args.set) for path in args.specs]  # all validated before anything runs
    names = [spec.study.name for spec in specs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:  # one study filled by two specs at once would mix their trials
        raise ConfigError("study.name", f"{twice!r} names more than one of the specs given; each needs its own")
    resolve_device(args.device)
    concurrent = args.concurrent
    prepare_workers(args.workers * concurrent)  # the fork server's imports overlap what follows
    url = storage_url(args.storage)
    check_storage(url)
    check_artifacts(args.artifacts)  # refused here, not after the first trial trained
    members = [m for spec in specs for m in plan(spec, url, trials=args.trials, timeout=args.timeout)]
    check_members(members, url)
    options = {"workers": args.workers, "device": args.device, "artifacts": args.artifacts,
               "threads": args.threads or threads_per_worker(args.workers * min(concurrent, len(members)))}  # fmt: skip
    if concurrent > 1 and len(members) > 1:
        summaries = launch_side_by_side(members, url, concurrent, progress=not args.no_progress, **options)
    else:
        summaries = [fill(m, url, progress=not args.no_progress, **options) for m in members]
    print(f"storage: {redact(url)}")
    for summary in summaries:
        print(study_line(summary))
    return 0


# ---------------------------------------------------------------- race
# ---------------------------------------------------------------- studies, dashboard
def add_studies(p: argparse.ArgumentParser) -> None:
    add_storage(p)
    p.add_argument("--json", action="store_true", help="one JSON object per study per line")
    p.set_defaults(func=_studies, flags=STORAGE_FLAGS)


def _studies(args: argparse.Namespace) -> int:
    import optuna

    from harness.search.storage import open_storage, redact, storage_url
    from harness.search.study import summarize

    url = storage_url(args.storage)
    storage = open_storage(url, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from harness.race.race import describe
    from harness.race.read import race_study_names, simulated_names
    from harness.race.replay import describe_replays

    summaries = [
        summarize(optuna.load_study(study_name=name, storage=storage))
        for name in optuna.get_all_study_names(storage=storage)
    ]
    if args.json:
        for summary in summaries:
            print(json.dumps(summary))
        return 0
    print(f"storage: {redact(url)}")
    races = race_study_names(storage)  # one line per race method, not one per repeat
    replays = simulated_names(storage)  # a replayed race holds histories, not trials
    for summary in summaries:
        if summary["study"] not in races and summary["study"] not in replays:
            print(study_line(summary))
    for line in describe(storage, races) + describe_replays(storage, replays):
        print(line)
    if not summaries:
        print("no studies yet; run `harness launch SPEC`")
    return 0


def add_dashboard(p: argparse.ArgumentParser) -> None:
    add_storage(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8080)
    add_artifacts(p, "figures and trained weights shown beside the studies")
    p.set_defaults(func=_dashboard, flags=STORAGE_FLAGS | {"port": "--port"})


def _dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    from harness.search.storage import open_storage, redact, storage_url

    url = storage_url(args.storage)
    storage = open_storage(url, must_exist=True)
    store = _artifact_store(args.artifacts)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ for {redact(url)}", file=sys.stderr)
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port, artifact_store=store)
    except OSError as e:
        raise ConfigError("port", f"cannot listen on {args.host}:{args.port} ({e.strerror})") from None
    return 0


def _artifact_store(folder: str) -> Any:
    from pathlib import Path

    from optuna.artifacts import FileSystemArtifactStore

    return FileSystemArtifactStore(folder) if Path(folder).is_dir() else None


# ---------------------------------------------------------------- confirm
def add_confirm(p: argparse.ArgumentParser) -> None:
    add_storage(p)
    p.add_argument("--study", action="append", metavar="NAME", help="only these studies (default: all)")
    p.add_argument("--seeds", type=positive_int, default=5, help="replicates per configuration (default 5)")
    p.add_argument("--top", type=positive_int, default=1, help="best configurations per cell (default 1)")
    p.add_argument(
        "--windows",
        type=_window_list,
        default=(),
        metavar="W,W,...",
        help="also re-train each cell's best configuration at these windows (a window sweep; each study at "
        "those its search's windows reach), e.g. 2,5,16,32,64",
    )
    p.add_argument("--workers", type=positive_int, default=1, help="parallel training processes")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_artifacts(p, "each series' run keeps its trained weights there")
    p.set_defaults(
        func=_confirm, flags=STORAGE_FLAGS | {"study": "--study", "window": "--windows", "artifacts": "--artifacts"}
    )


def _window_list(text: str) -> tuple[int, ...]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"must be integers >= 1 separated by commas, got {text!r}")
    return tuple(sorted({_window(w) for w in words}))  # each judged by RunConfig.window's rule


def _window(text: str) -> int:
    from harness.training.train import RunConfig

    window: int = flag_type(rule_of(RunConfig, "window"))(text)
    return window


def _confirm(args: argparse.Namespace) -> int:
    import optuna

    from harness.report.tables import load_studies
    from harness.search.collection_replicates import collection_summary, replicate_scores
    from harness.search.confirm import Search, confirm, replicate_frame, replicate_seeds, sweep_windows
    from harness.search.launch import prepare_workers
    from harness.search.storage import open_storage, storage_url
    from harness.search.weights import artifact_store
    from harness.stats.replicates import confirm_tables
    from harness.training.device import resolve_device

    storage = open_storage(storage_url(args.storage), must_exist=True)
    resolve_device(args.device)
    prepare_workers(args.workers)  # the workers' imports overlap this process's reading of the studies
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = load_studies(storage, args.study)
    searches = [Search(d.name, d.studies, d.spec) for d in studies]
    series = [s for s in searches if s.spec.collection is None]  # a collection's search has no window sweep
    # Each search sweeps the windows its space holds; a window that none holds is a mistake.
    swept = {s.name: sweep_windows(s.spec, args.windows) for s in series}
    if args.windows and not series:
        raise ConfigError("--windows", "sweeps a series' windows; the chosen studies search collections only")
    if beyond := [w for w in args.windows if not any(w in kept for kept in swept.values())]:
        largest = ", ".join(f"{s.name} up to {s.spec.largest_window()}" for s in series)
        raise ConfigError("--windows", f"window {beyond[0]} is beyond every chosen study's windows ({largest})")
    for s in series:
        if skipped := [w for w in args.windows if w not in swept[s.name]]:
            print(f"{s.name}: no sweep at window {', '.join(map(str, skipped))}: its search's windows go up to "
                  f"{s.spec.largest_window()}", file=sys.stderr)  # fmt: skip
    ran = confirm(storage, searches, seeds=args.seeds, top=args.top, windows=args.windows, workers=args.workers,
                  device=args.device, artifacts=artifact_store(args.artifacts),
                  progress=not args.no_progress)  # fmt: skip
    for name, n in ran.items():
        print(f"{name}: {n} new runs", file=sys.stderr)
    for s in searches:  # a collection's: each cell's mean over the series, over the seeds asked for
        if s.spec.collection is not None:
            summary = collection_summary(replicate_scores(storage, s.name), replicate_seeds(s.spec, args.seeds))
            print(f"{s.name}\n{summary.to_string(index=False, float_format=lambda v: f'{v:.4g}')}", end="\n\n")
    studies = [d for d in studies if d.spec.collection is None]
    if not studies:
        return 0
    recorded = replicate_frame(storage, [d.name for d in studies])
    seeds = {s for d in studies for s in replicate_seeds(d.spec, args.seeds)}
    frame = recorded[recorded["seed"].isin(seeds)]  # the tables of what was asked: --seeds N, not every seed kept
    print(f"tables over the {args.seeds} seeds asked for ({len(frame)} of {len(recorded)} recorded runs; "
          "`harness report` uses every recorded seed)", file=sys.stderr)  # fmt: skip
    # a real series in its test MASE and MAE (its findings' terms), the sines in test MSE and horizon
    tables = confirm_tables(frame, {d.name for d in studies if d.spec.signal.real}, sweep=bool(args.windows))
    print("\n\n".join(t.to_string(index=False, float_format=lambda v: f"{v:.4g}") for t in tables))
    return 0


# ---------------------------------------------------------------- weights
def add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="the Optuna study, e.g. short-period/lstm (see `harness studies`)")
    p.add_argument("trial", type=int, help="the trial number")
    p.add_argument("--out", required=True, help="the file to write, e.g. lstm.pt")
    add_storage(p)
    add_artifacts(p, "where the weights are stored")
    p.set_defaults(func=_weights, flags=STORAGE_FLAGS | {"artifacts": "--artifacts", "out": "--out"})


def _weights(args: argparse.Namespace) -> int:
    from pathlib import Path

    import optuna
    import torch

    from harness.search.storage import open_storage, storage_url
    from harness.search.weights import find_trial, load_checkpoint

    storage = open_storage(storage_url(args.storage), must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = find_trial(storage, args.study, args.trial)
    data = load_checkpoint(trial, args.artifacts)
    if data is None:
        raise ConfigError("trial", f"trial {args.trial} of {args.study!r} kept no weights ({trial.state.name}); "
                                   "only complete trials keep them")  # fmt: skip
    try:
        torch.save(data, Path(args.out))
    except OSError as e:
        raise ConfigError("out", f"cannot write {args.out} ({e.strerror})") from None
    print(f"{args.out}: {data['cell']} with hidden size {data['hidden_size']}, window {data['config']['window']}; "
          f"load with torch.load({args.out!r}, weights_only=True)")  # fmt: skip
    return 0


# ---------------------------------------------------------------- report
def add_report(p: argparse.ArgumentParser) -> None:
    add_storage(p)
    p.add_argument(
        "--out",
        help=f"output folder (default {REPORT_DIR}; with --study, {REPORT_DIR}/<study> so the full report stays whole)",
    )
    p.add_argument("--study", action="append", metavar="NAME", help="only these studies (default: all)")
    add_artifacts(p, "trained weights are read from it, figures uploaded to it for optuna-dashboard")
    p.add_argument(
        "--retrain",
        action="store_true",
        help="re-train best trials that kept no weights (recorded before weights were kept) instead of skipping "
        "their prediction figures",
    )
    p.add_argument(
        "--device", default="auto", help="device for re-running best trials (auto: the class each was recorded on)"
    )
    p.add_argument("--cache", default=COLLECTION_CACHE,
                   help=f"where a collection's benchmark scores are kept (default {COLLECTION_CACHE})")  # fmt: skip
    p.set_defaults(func=_report, flags=STORAGE_FLAGS | {"study": "--study", "out": "--out", "artifacts": "--artifacts",
                                                        "cache": "--cache"})  # fmt: skip


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import optuna

    from harness.race.read import race_names
    from harness.report.tables import load_studies, search_names
    from harness.report.write import slug, write_report
    from harness.search.storage import open_storage, redact, storage_url
    from harness.training.device import resolve_device

    url = storage_url(args.storage)
    storage = open_storage(url, must_exist=True)
    resolve_device(args.device)
    races = race_names(storage)
    if args.study:  # a name may be a search, a race (`harness race`) or both; unknown names are an error here
        searches = search_names(storage)
        unknown = [n for n in args.study if n not in searches and n not in races]
        if unknown:
            raise ConfigError("study", f"unknown study {unknown[0]!r}; allowed: "
                                       f"{', '.join(dict.fromkeys([*searches, *races])) or '(none yet)'}")  # fmt: skip
        wanted = [n for n in args.study if n in searches]
        data = load_studies(storage, wanted) if wanted else []
    else:
        data = load_studies(storage)
    out = args.out or (f"{REPORT_DIR}/{slug('+'.join(args.study))}" if args.study else REPORT_DIR)
    for flag, folder in (("out", out), ("artifacts", args.artifacts), ("cache", args.cache)):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(flag, f"cannot create folder {folder} ({e.strerror})") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = write_report(storage, redact(url), Path(out), data, Path(args.artifacts), args.device, args.retrain,
                        races=args.study, cache_dir=Path(args.cache))  # fmt: skip
    print(f"report: {path}")
    return 0


# ---------------------------------------------------------------- results
RESULTS_PAGE = "docs/results.md"
BENCHMARK_DIR = "results/benchmarks"


def add_results(p: argparse.ArgumentParser) -> None:
    add_storage(p)
    p.add_argument("--benchmarks", default=BENCHMARK_DIR, metavar="DIR",
                   help=f"pytest-benchmark JSON folder, as `make bench` writes it (default {BENCHMARK_DIR}; "
                        "a missing one leaves its section saying how to make it)")  # fmt: skip
    p.add_argument("--out", default=RESULTS_PAGE, help=f"the page to write (default {RESULTS_PAGE})")
    p.set_defaults(func=_results, flags=STORAGE_FLAGS | {"out": "--out", "benchmarks": "--benchmarks"})


def _results(args: argparse.Namespace) -> int:
    """A database that does not exist yet is a section saying how to make it, as a missing
    benchmarks folder is; a URL that is not one, or a file that is not a database, is a mistake."""
    from pathlib import Path

    import sqlalchemy.exc

    from harness.report.results_page import write_results_page
    from harness.search.storage import open_storage, redact, sqlite_path, storage_url

    url = storage_url(args.storage)
    try:
        path = sqlite_path(url)
    except sqlalchemy.exc.ArgumentError:
        path = None  # open_storage says what is wrong with the URL
    storage = open_storage(url, must_exist=True) if path is None or path.exists() else None
    page = write_results_page(Path(args.out), Path(args.benchmarks), storage, redact(url))
    print(f"results: {page}")
    return 0
