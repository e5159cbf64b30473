"""`harness ...` subcommands. `python -m harness` runs the same thing.

Every mistake a user can make ends here as one line on stderr naming the flag, file or
key and what is allowed, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from harness.constraints import Integer, Real, Rule, check, default_of, rule_of
from harness.errors import ConfigError
from harness.search.spec import ExecutionSettings, SpecError, StudySettings

EXIT_USAGE = 2
REPORT_DIR = "results/report"
EXIT_INTERRUPTED = 130
RESUMABLE = ("launch", "race", "record")  # commands that pick up where a Ctrl-C left them


class UsageError(Exception):
    """A mistake in the command line or its inputs, already phrased for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that names the flag is clearer, in
        # the shape every other mistake has ("--lr: must be ...", not "argument --lr: ...").
        raise UsageError(f"{self.prog}: {message.removeprefix('argument ')}")


def _flag_type(rule: Rule) -> Callable[[str], Any]:
    """An argparse `type` that judges the word by a declared rule, with the one message shape."""

    def parse(text: str) -> Any:
        try:
            return check("", rule.parse(text), rule)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.message) from None

    return parse


_positive_int = _flag_type(Integer(1))
_positive_float = _flag_type(Real(0, low_open=True))


def _config_flag(p: argparse.ArgumentParser, flag: str, cls: type, name: str, **kwargs: Any) -> None:
    """A flag for a config field: its rule and (unless `default=None` is passed) its default
    are the field's, declared once on the config class."""
    kwargs.setdefault("default", default_of(cls, name))
    p.add_argument(flag, type=_flag_type(rule_of(cls, name)), **kwargs)


def _config_error(flags: dict[str, str]) -> Callable[[ConfigError], str]:
    return lambda e: f"{flags.get(e.key, e.key)}: {e.message}"


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


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    from harness.series.signals import SIGNALS, SignalConfig
    from harness.training.models import CELLS
    from harness.training.reproduce import NotebookSettings
    from harness.training.train import RunConfig

    p = sub.add_parser("reproduce", help="re-run the notebook's configurations on the seed protocol")
    # No default: without --cell, --signal or --window, the notebook's own runs.
    _config_flag(p, "--cell", RunConfig, "cell", default=None, metavar="{" + ",".join(CELLS) + "}")
    _config_flag(p, "--signal", SignalConfig, "name", default=None, metavar="{" + ",".join(SIGNALS) + "}")
    _config_flag(p, "--window", RunConfig, "window", default=None)
    for flag in ("--epochs", "--hidden-size", "--lr", "--seed"):
        _config_flag(p, flag, NotebookSettings, flag[2:].replace("-", "_"))
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
_STORAGE_FLAGS = {"storage": "--storage", "device": "--device"}


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="SQLAlchemy URL (default: $HARNESS_STORAGE or sqlite:///results/harness.db)")


def _add_artifacts(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--artifacts",
        help=f"artifact folder: {what} (default: artifacts/ beside a SQLite database, else results/artifacts)",
    )


def _add_launch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("launch", help="create or resume one Optuna study per spec and fill its trial budget")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="study spec files (TOML), e.g. studies/short_period.toml")
    _config_flag(p, "--trials", StudySettings, "trials", default=None,
                 help="target number of finished trials per study (default: the spec's)")  # fmt: skip
    p.add_argument("--workers", type=_positive_int, default=1, help="worker processes on the same storage")
    p.add_argument("--threads", type=_positive_int, help="torch intra-op threads per worker (default: cores / workers)")
    _config_flag(p, "--fuse", ExecutionSettings, "fuse", default=None, metavar="B",
                 help="train up to B trials at once as one batched model (spec: execution.fuse)")  # fmt: skip
    _add_storage(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--timeout", type=_positive_float, help="start no new trial after this many seconds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_artifacts(p, "where complete trials keep their trained weights")
    p.set_defaults(func=_launch, flags=_STORAGE_FLAGS | {"artifacts": "--artifacts"})


def _describe(summary: dict[str, Any]) -> str:
    c = summary["counts"]
    budget = f" of {summary['target']}" if summary.get("target") else ""  # a per-cell study's share, as it runs
    line = (
        f"{summary['study']}: {c['COMPLETE'] + c['PRUNED']} finished{budget} ({c['COMPLETE']} complete, "
        f"{c['PRUNED']} pruned), {c['FAIL']} failed"
    )
    if summary["best_value"] is None:
        return line + "; no complete trial yet"
    params = ({"cell": summary["best_cell"]} if summary.get("best_cell") else {}) | summary["best_params"]
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return line + f"; best val_mse {summary['best_value']:.4g} (trial {summary['best_trial']}): {shown}"


def _launch(args: argparse.Namespace) -> int:
    from harness.search.launch import WorkerError, launch_all, prepare_workers
    from harness.search.spec import load_spec
    from harness.search.storage import check_storage, redact, storage_url
    from harness.search.weights import check_artifacts
    from harness.training.device import resolve_device

    fuse = [f"execution.fuse={args.fuse}"] if args.fuse else []  # recorded with the spec, like --set
    specs = [load_spec(path, [*args.set, *fuse]) for path in args.specs]  # all validated before anything runs
    resolve_device(args.device)
    prepare_workers(args.workers)  # the fork server's imports overlap what follows
    url = storage_url(args.storage)
    check_storage(url)
    check_artifacts(args.artifacts)  # refused here, not after the first trial trained
    summaries = []
    for spec in specs:
        try:
            summaries += launch_all(spec, url, trials=args.trials, workers=args.workers, device=args.device,
                                    timeout=args.timeout, progress=not args.no_progress,
                                    artifacts=args.artifacts, threads=args.threads)  # fmt: skip
        except WorkerError as e:
            print(f"harness launch: {spec.study.name}: {e}", file=sys.stderr)
            return 1
    print(f"storage: {redact(url)}")
    for summary in summaries:
        print(_describe(summary))
    return 0


# ---------------------------------------------------------------- race
def _add_race(sub: argparse._SubParsersAction) -> None:
    from harness.search.race import DEFAULT_METHODS

    p = sub.add_parser("race", help="race search methods (sampler+pruner) over repeats, on wall-clock")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="study spec files (TOML), e.g. studies/short_period.toml")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), metavar="S+P,...",
                   help=f"sampler+pruner pairs (default {','.join(DEFAULT_METHODS)})")  # fmt: skip
    repeats = f"repeats per method (default {DEFAULT_REPEATS}; with --simulate {SIMULATED_REPEATS})"
    p.add_argument("--repeats", type=_positive_int, help=repeats)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=_positive_int, help="finished trials per repeat (default: the spec's trials)")
    budget.add_argument("--seconds", type=_positive_float, help="wall-clock seconds per repeat (no new trial after)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="worker processes per repeat (--simulate: processes replaying repeats at once)")  # fmt: skip
    p.add_argument("--threads", type=_positive_int, help="torch intra-op threads per worker (default: cores / workers)")
    _add_storage(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--simulate", nargs="?", const="", metavar="TABLE",
                   help="replay the race from recorded curves (`harness record`; default table: <spec name>/curves) "
                        f"on a simulated clock, {SIMULATED_REPEATS} repeats unless --repeats")  # fmt: skip
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="--simulate: the table's wall seconds, or its CPU seconds (a table recorded on a busy machine "
                        "with --threads 1)")  # fmt: skip
    p.set_defaults(func=_race, flags=_STORAGE_FLAGS | {"methods": "--methods", "simulate": "--simulate"})


SIMULATED_REPEATS = 100


DEFAULT_REPEATS = 10  # harness.search.race's, here so the flag's help need not import the launcher


def _race(args: argparse.Namespace) -> int:
    from harness.search.launch import WorkerError, prepare_workers
    from harness.search.race import Budget, parse_methods, race, race_spec
    from harness.search.spec import load_spec
    from harness.search.storage import check_storage, redact, storage_url
    from harness.training.device import resolve_device

    methods = parse_methods(args.methods)
    specs = [load_spec(path, args.set) for path in args.specs]
    for spec in specs:  # every method fits every spec (e.g. grid needs lists) before anything is written
        for m in methods:
            race_spec(spec, m, 0, 1)
    if args.simulate is not None:
        return _simulate(args, specs, methods)
    args.repeats = args.repeats or DEFAULT_REPEATS
    resolve_device(args.device)
    prepare_workers(args.workers)
    url = storage_url(args.storage)
    check_storage(url)
    try:
        race(specs, url, methods=methods, repeats=args.repeats, budget=Budget(args.trials, args.seconds),
             workers=args.workers, device=args.device, threads=args.threads, progress=not args.no_progress)  # fmt: skip
    except WorkerError as e:
        print(f"harness race: {e}", file=sys.stderr)
        return 1
    from harness.search.storage import open_storage
    from harness.stats import race_stats

    histories = race_stats.load_histories(open_storage(url), [s.study.name for s in specs])
    print(f"storage: {redact(url)}; `harness report` draws the race")
    _print_race(histories)
    return 0


def _print_race(histories: dict[str, Any]) -> None:
    """Each race's table and verdict, and the methods' average rank where several were raced."""
    from harness.search.race import startup_warnings
    from harness.stats import race_stats

    tables = {name: race_stats.table(h) for name, h in histories.items()}
    for name, infos in tables.items():
        frame = race_stats.table_frame(infos).drop(columns=["name", "target"])
        text = frame.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")  # never reached: blank
        print(f"\n{text}\n{race_stats.verdict(infos, name).replace('**', '')}")
        for warning in startup_warnings(infos):
            print(f"harness race: warning: {warning}", file=sys.stderr)
    if len(tables) > 1:
        print("\naverage rank over the races:\n" + race_stats.average_ranks(tables).to_string(index=False))


def _simulate(args: argparse.Namespace, specs: list[Any], methods: Sequence[Any]) -> int:
    """`harness race --simulate`: every table is loaded and judged before anything is written."""
    import time

    import optuna

    from harness.search.curves import load_table, table_name
    from harness.search.race import Budget
    from harness.search.replay import check_replayable, simulate, store, summary_line
    from harness.search.storage import open_storage, redact, storage_url
    from harness.stats import race_stats

    if args.simulate and len(specs) > 1:
        raise ConfigError("simulate", "one TABLE names one spec's table; give one spec, or no TABLE "
                                      "(each spec's own <name>/curves)")  # fmt: skip
    url = storage_url(args.storage)
    storage = open_storage(url, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tables = [load_table(storage, args.simulate or table_name(spec.study.name), args.clock) for spec in specs]
    for spec, table in zip(specs, tables, strict=True):
        check_replayable(spec, table, methods)
    repeats = args.repeats or SIMULATED_REPEATS
    for spec, table in zip(specs, tables, strict=True):
        budget = Budget(args.trials, args.seconds) if (args.trials or args.seconds) else Budget(spec.study.trials)
        start = time.perf_counter()
        runs = simulate(spec, table, methods, repeats, budget, workers=args.workers,
                        log=sys.stderr if not args.no_progress else None)  # fmt: skip
        store(storage, spec, table, runs, budget, repeats)
        print(summary_line(spec, runs, time.perf_counter() - start), file=sys.stderr)
    print(f"storage: {redact(url)}; `harness report` draws the replayed race")
    _print_race(race_stats.load_simulated(storage, [s.study.name for s in specs]))
    return 0


# ---------------------------------------------------------------- record
def _add_record(sub: argparse._SubParsersAction) -> None:
    from harness.search.record import DEFAULT_CONFIGS, DEFAULT_SEEDS

    p = sub.add_parser("record", help="record learning curves of a spec's search space for simulated races")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="study spec files (TOML), e.g. studies/short_period.toml")
    p.add_argument("--configs", type=_positive_int, default=DEFAULT_CONFIGS,
                   help=f"Sobol points per cell (each categorical combination; default {DEFAULT_CONFIGS})")  # fmt: skip
    p.add_argument("--seeds", type=_positive_int, default=DEFAULT_SEEDS,
                   help=f"training seeds per configuration (default {DEFAULT_SEEDS})")  # fmt: skip
    p.add_argument("--harvest", action="store_true", help="also copy the spec's searches' complete full-epoch runs")
    p.add_argument("--workers", type=_positive_int, default=1, help="worker processes on the same storage")
    p.add_argument("--threads", type=_positive_int, help="torch intra-op threads per worker (default: cores / workers)")
    _add_storage(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--timeout", type=_positive_float, help="start no new run after this many seconds (resume later)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_record, flags=_STORAGE_FLAGS | {"seeds": "--seeds", "spec": "SPEC"})


def _record(args: argparse.Namespace) -> int:
    from harness.search.launch import WorkerError, prepare_workers
    from harness.search.record import curves_spec, record
    from harness.search.spec import load_spec
    from harness.search.storage import check_storage, redact, storage_url
    from harness.training.device import resolve_device

    specs = [load_spec(path, args.set) for path in args.specs]
    for spec in specs:
        curves_spec(spec, args.seeds)  # judged before anything is written
    resolve_device(args.device)
    prepare_workers(args.workers)
    url = storage_url(args.storage)
    check_storage(url)
    summaries = []
    for spec in specs:
        try:
            summaries.append(record(spec, url, configs=args.configs, seeds=args.seeds, harvest_runs=args.harvest,
                                    workers=args.workers, device=args.device, threads=args.threads,
                                    timeout=args.timeout, progress=not args.no_progress))  # fmt: skip
        except WorkerError as e:
            print(f"harness record: {spec.study.name}: {e}", file=sys.stderr)
            return 1
    print(f"storage: {redact(url)}")
    for summary in summaries:
        print(_describe(summary) + f"; {summary['configs']} Sobol points per cell x {summary['seeds']} seeds, "
              f"{summary['harvested']} runs harvested now")  # fmt: skip
    return 0


# ---------------------------------------------------------------- studies, dashboard
def _add_studies(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("studies", help="list the studies in a storage")
    _add_storage(p)
    p.add_argument("--json", action="store_true", help="one JSON object per study per line")
    p.set_defaults(func=_studies, flags=_STORAGE_FLAGS)


def _studies(args: argparse.Namespace) -> int:
    import optuna

    from harness.search.storage import open_storage, redact, storage_url
    from harness.search.study import summarize

    url = storage_url(args.storage)
    storage = open_storage(url, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from harness.search.race import describe
    from harness.search.replay import describe_replays
    from harness.stats.race_stats import race_study_names, simulated_names

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
            print(_describe(summary))
    for line in describe(storage, races) + describe_replays(storage, replays):
        print(line)
    if not summaries:
        print("no studies yet; run `harness launch SPEC`")
    return 0


def _add_dashboard(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve optuna-dashboard on the same storage")
    _add_storage(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_positive_int, default=8080)
    _add_artifacts(p, "figures and trained weights shown beside the studies")
    p.set_defaults(func=_dashboard, flags=_STORAGE_FLAGS | {"port": "--port"})


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
def _add_confirm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("confirm", help="re-train each cell's best configurations over several seeds")
    _add_storage(p)
    p.add_argument("--study", action="append", metavar="NAME", help="only these studies (default: all)")
    p.add_argument("--seeds", type=_positive_int, default=5, help="replicates per configuration (default 5)")
    p.add_argument("--top", type=_positive_int, default=1, help="best configurations per cell (default 1)")
    p.add_argument(
        "--windows",
        type=_window_list,
        default=(),
        metavar="W,W,...",
        help="also re-train each cell's best configuration at these windows (a window sweep), e.g. 2,5,16,32,64",
    )
    p.add_argument("--workers", type=_positive_int, default=1, help="parallel training processes")
    _config_flag(p, "--fuse", ExecutionSettings, "fuse", metavar="B",
                 help="train up to B runs that fit together as one batched model (default 1)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    _add_artifacts(p, "each run keeps its trained weights there")
    p.set_defaults(
        func=_confirm, flags=_STORAGE_FLAGS | {"study": "--study", "window": "--windows", "artifacts": "--artifacts"}
    )


def _window_list(text: str) -> tuple[int, ...]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"must be integers >= 1 separated by commas, got {text!r}")
    return tuple(sorted({_window(w) for w in words}))  # each judged by RunConfig.window's rule


def _window(text: str) -> int:
    from harness.training.train import RunConfig

    window: int = _flag_type(rule_of(RunConfig, "window"))(text)
    return window


def _confirm(args: argparse.Namespace) -> int:
    import optuna

    from harness.report.tables import load_studies
    from harness.search.confirm import confirm, replicate_frame, replicate_seeds
    from harness.search.storage import open_storage, storage_url
    from harness.search.weights import artifact_store
    from harness.series.data import split_indices
    from harness.stats.replicates import ci_table, paired_tests, sweep_table
    from harness.training.device import resolve_device

    storage = open_storage(storage_url(args.storage), must_exist=True)
    resolve_device(args.device)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = load_studies(storage, args.study)
    for d in studies:  # every window fits every signal before anything trains
        for w in args.windows:
            split_indices(d.spec.signal.length, w)
    store = artifact_store(args.artifacts)
    for d in studies:
        ran = confirm(storage, d.name, d.studies, d.spec, seeds=args.seeds, top=args.top, windows=args.windows,
                      workers=args.workers, device=args.device, artifacts=store, fuse=args.fuse)  # fmt: skip
        print(f"{d.name}: {ran} new runs", file=sys.stderr)
    recorded = replicate_frame(storage, [d.name for d in studies])
    seeds = {s for d in studies for s in replicate_seeds(d.spec, args.seeds)}
    frame = recorded[recorded["seed"].isin(seeds)]  # the tables of what was asked: --seeds N, not every seed kept
    print(f"tables over the {args.seeds} seeds asked for ({len(frame)} of {len(recorded)} recorded runs; "
          "`harness report` uses every recorded seed)", file=sys.stderr)  # fmt: skip
    columns = ["study", "cell", "runs", "window", "test_mse_gmean", "test_mse_ci_low", "test_mse_ci_high",
               "horizon_mean", "horizon_ci_low", "horizon_ci_high"]  # fmt: skip
    tables = [ci_table(frame)[columns], paired_tests(frame)]
    if args.windows:
        tables.append(sweep_table(frame)[columns])
    print("\n\n".join(t.to_string(index=False, float_format=lambda v: f"{v:.4g}") for t in tables))
    return 0


# ---------------------------------------------------------------- weights
def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="write a trial's trained weights to a file (plain torch.save)")
    p.add_argument("study", help="the Optuna study, e.g. short-period/lstm (see `harness studies`)")
    p.add_argument("trial", type=int, help="the trial number")
    p.add_argument("--out", required=True, help="the file to write, e.g. lstm.pt")
    _add_storage(p)
    _add_artifacts(p, "where the weights are stored")
    p.set_defaults(func=_weights, flags=_STORAGE_FLAGS | {"artifacts": "--artifacts", "out": "--out"})


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
def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables and figures from a storage")
    _add_storage(p)
    p.add_argument(
        "--out",
        help=f"output folder (default {REPORT_DIR}; with --study, {REPORT_DIR}/<study> so the full report stays whole)",
    )
    p.add_argument("--study", action="append", metavar="NAME", help="only these studies (default: all)")
    _add_artifacts(p, "trained weights are read from it, figures uploaded to it for optuna-dashboard")
    p.add_argument(
        "--retrain",
        action="store_true",
        help="re-train best trials that kept no weights (recorded before weights were kept) instead of skipping "
        "their prediction figures",
    )
    p.add_argument(
        "--device", default="auto", help="device for re-running best trials (auto: the class each was recorded on)"
    )
    p.set_defaults(
        func=_report, flags=_STORAGE_FLAGS | {"study": "--study", "out": "--out", "artifacts": "--artifacts"}
    )


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import optuna

    from harness.report.tables import load_studies, search_names
    from harness.report.write import slug, write_report
    from harness.search.storage import open_storage, redact, storage_url
    from harness.stats.race_stats import race_names
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
    for flag, folder in (("out", out), ("artifacts", args.artifacts)):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(flag, f"cannot create folder {folder} ({e.strerror})") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = write_report(storage, redact(url), Path(out), data, Path(args.artifacts), args.device, args.retrain,
                        races=args.study)  # fmt: skip
    print(f"report: {path}")
    return 0


# ---------------------------------------------------------------- entry point
def build_parser() -> _Parser:
    parser = _Parser(prog="harness", description="Benchmark and tune recurrent sequence predictors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_reproduce(sub)
    _add_launch(sub)
    _add_race(sub)
    _add_record(sub)
    _add_studies(sub)
    _add_dashboard(sub)
    _add_report(sub)
    _add_confirm(sub)
    _add_weights(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if "artifacts" in vars(args) and args.artifacts is None:
            from harness.search.storage import default_artifacts, storage_url

            args.artifacts = default_artifacts(storage_url(args.storage))
        return int(args.func(args))
    except UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    except SpecError as e:
        print(f"harness {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as e:
        flags = getattr(args, "flags", {})
        print(f"harness {args.command}: {_config_error(flags)(e)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # the storage failing mid-command: one line with the real cause, not a traceback
        from harness.search.faults import EXIT_STORAGE, StorageFault, storage_cause
        from harness.search.storage import redact, storage_url

        cause = storage_cause(e) if not isinstance(e, StorageFault) else None
        if not isinstance(e, StorageFault) and cause is None:
            raise
        fault = e if isinstance(e, StorageFault) else StorageFault(None, cause or "")
        print(f"harness {args.command}: {fault.message(redact(storage_url(getattr(args, 'storage', None))))}",
              file=sys.stderr)  # fmt: skip
        return EXIT_STORAGE
    except KeyboardInterrupt:
        if args.command in RESUMABLE:
            print(f"harness {args.command}: interrupted; what finished is kept, the trials that were running are "
                  "marked FAIL and queued again: run the same command to resume", file=sys.stderr)  # fmt: skip
        else:
            print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> NoReturn:
    sys.exit(main())
