"""`harness race` and `harness record`: search methods raced live or replayed from recorded
learning curves, and the recording of those curves."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from harness.cli.flags import STORAGE_FLAGS, add_storage, positive_float, positive_int
from harness.errors import ConfigError


def add_race(p: argparse.ArgumentParser) -> None:
    from harness.race.race import DEFAULT_METHODS

    p.add_argument("specs", nargs="+", metavar="SPEC", help="study spec files (TOML), e.g. studies/short_period.toml")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), metavar="S+P,...",
                   help=f"sampler+pruner pairs (default {','.join(DEFAULT_METHODS)})")  # fmt: skip
    repeats = f"repeats per method (default {DEFAULT_REPEATS}; with --simulate {SIMULATED_REPEATS})"
    p.add_argument("--repeats", type=positive_int, help=repeats)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=positive_int, help="finished trials per repeat (default: the spec's trials)")
    budget.add_argument("--seconds", type=positive_float, help="wall-clock seconds per repeat (no new trial after)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="worker processes per repeat (--simulate: processes replaying repeats at once)")  # fmt: skip
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads per worker (default: cores / workers)")
    add_storage(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--simulate", nargs="?", const="", metavar="TABLE",
                   help="replay the race from recorded curves (`harness record`; default table: <spec name>/curves) "
                        f"on a simulated clock, {SIMULATED_REPEATS} repeats unless --repeats")  # fmt: skip
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="--simulate: the table's wall seconds, or its CPU seconds (a table recorded on a busy machine "
                        "with --threads 1)")  # fmt: skip
    p.set_defaults(func=_race, flags=STORAGE_FLAGS | {"methods": "--methods", "simulate": "--simulate"})


SIMULATED_REPEATS = 100


DEFAULT_REPEATS = 10  # harness.race.race's, here so the flag's help need not import the launcher


def _race(args: argparse.Namespace) -> int:
    from harness.race.race import Budget, parse_methods, race, race_spec
    from harness.search.launch import prepare_workers
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
    race(specs, url, methods=methods, repeats=args.repeats, budget=Budget(args.trials, args.seconds),
         workers=args.workers, device=args.device, threads=args.threads, progress=not args.no_progress)  # fmt: skip
    from harness.race.read import load_histories
    from harness.search.storage import open_storage

    histories = load_histories(open_storage(url), [s.study.name for s in specs])
    print(f"storage: {redact(url)}; `harness report` draws the race")
    _print_race(histories)
    return 0


def _print_race(histories: dict[str, Any]) -> None:
    """Each race's table and verdict, and the methods' average rank where several were raced."""
    from harness.race.race import startup_warnings
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

    from harness.race.curves import check_covers, load_table, table_name
    from harness.race.race import Budget
    from harness.race.read import load_simulated
    from harness.race.replay import simulate, store, summary_line
    from harness.search.storage import open_storage, redact, storage_url

    if args.simulate and len(specs) > 1:
        raise ConfigError("simulate", "one TABLE names one spec's table; give one spec, or no TABLE "
                                      "(each spec's own <name>/curves)")  # fmt: skip
    url = storage_url(args.storage)
    storage = open_storage(url, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tables = [load_table(storage, args.simulate or table_name(spec.study.name), args.clock) for spec in specs]
    for spec, table in zip(specs, tables, strict=True):
        check_covers(table, spec)
    repeats = args.repeats or SIMULATED_REPEATS
    for spec, table in zip(specs, tables, strict=True):
        budget = Budget(args.trials, args.seconds) if (args.trials or args.seconds) else Budget(spec.study.trials)
        start = time.perf_counter()
        runs = simulate(spec, table, methods, repeats, budget, workers=args.workers,
                        log=sys.stderr if not args.no_progress else None)  # fmt: skip
        store(storage, spec, table, runs, budget, repeats)
        print(summary_line(spec, runs, time.perf_counter() - start), file=sys.stderr)
    print(f"storage: {redact(url)}; `harness report` draws the replayed race")
    _print_race(load_simulated(storage, [s.study.name for s in specs]))
    return 0


# ---------------------------------------------------------------- record
def add_record(p: argparse.ArgumentParser) -> None:
    from harness.race.record import DEFAULT_CONFIGS, DEFAULT_SEEDS

    p.add_argument("specs", nargs="+", metavar="SPEC", help="study spec files (TOML), e.g. studies/short_period.toml")
    p.add_argument("--configs", type=positive_int, default=DEFAULT_CONFIGS,
                   help=f"Sobol points per cell (each categorical combination; default {DEFAULT_CONFIGS})")  # fmt: skip
    p.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                   help=f"training seeds per configuration (default {DEFAULT_SEEDS})")  # fmt: skip
    p.add_argument("--harvest", action="store_true", help="also copy the spec's searches' complete full-epoch runs")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes on the same storage")
    p.add_argument("--threads", type=positive_int, help="torch intra-op threads per worker (default: cores / workers)")
    add_storage(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps")
    p.add_argument("--timeout", type=positive_float, help="start no new run after this many seconds (resume later)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_record, flags=STORAGE_FLAGS | {"seeds": "--seeds", "spec": "SPEC"})


def _record(args: argparse.Namespace) -> int:
    from harness.race.record import curves_spec, record
    from harness.search.exits import WorkerError
    from harness.search.launch import prepare_workers
    from harness.search.spec import load_spec
    from harness.search.storage import check_storage, redact, storage_url
    from harness.search.study import study_line
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
            raise WorkerError(f"{spec.study.name}: {e}", e.status) from e
    print(f"storage: {redact(url)}")
    for summary in summaries:
        print(study_line(summary) + f"; {summary['configs']} Sobol points per cell x {summary['seeds']} seeds, "
              f"{summary['harvested']} runs harvested now")  # fmt: skip
    return 0
