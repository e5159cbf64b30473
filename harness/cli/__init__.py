"""`harness ...` subcommands. `python -m harness` runs the same thing.

Every mistake a user can make ends here as one line on stderr naming the flag, file or key
and what is allowed, with exit status 2 and no traceback; every other ending has its own
status (`search.exits`). Only the subcommand asked for is built, so `harness --help` imports
nothing heavy (no torch, no Optuna).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from harness.cli.flags import Parser, UsageError, config_error

# name -> (module holding `add_<name>`, one-line help), in the order `--help` lists them
COMMANDS = {
    "reproduce": ("commands", "re-run the notebook's configurations on the seed protocol"),
    "launch": ("commands", "create or resume one Optuna study per spec and fill its trial budget"),
    "race": ("race", "race search methods (sampler+pruner) over repeats, on wall-clock"),
    "record": ("race", "record learning curves of a spec's search space for simulated races"),
    "studies": ("commands", "list the studies in a storage"),
    "dashboard": ("commands", "serve optuna-dashboard on the same storage"),
    "report": ("commands", "tables and figures from a storage"),
    "confirm": ("commands", "re-train each cell's best configurations over several seeds"),
    "weights": ("commands", "write a trial's trained weights to a file (plain torch.save)"),
    "results": ("commands", "write the results page from the benchmarks' JSON and the main job's database"),
}
RESUMABLE = ("launch", "race", "record")  # commands that pick up where a Ctrl-C or SIGTERM left them
TRAINING = ("reproduce", "launch", "race", "record", "confirm", "report")  # commands that may train
EXIT_USAGE = 2  # as `search.exits.EXIT_USAGE`, which this module does not import before it must


def build_parser(argv: Sequence[str] = ()) -> Parser:
    """The parser, with the flags of the subcommand `argv` names (every other one by name only)."""
    parser = Parser(prog="harness", description="Benchmark and tune recurrent sequence predictors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == chosen:
            getattr(importlib.import_module(f"harness.cli.{module}"), f"add_{name}")(p)
    return parser


def _unrecognised(parser: Parser, command: str, extras: list[str]) -> UsageError:
    """`harness launch: unrecognized arguments: --trails 5 (did you mean --trials?)`."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = [f for a in sub._actions for f in a.option_strings if f.startswith("--")]
    near = [m for e in extras if e.startswith("-") for m in difflib.get_close_matches(e.split("=")[0], flags, n=1)]
    hint = f" (did you mean {' or '.join(near)}?)" if near else f" (see `harness {command} --help`)"
    return UsageError(f"harness {command}: unrecognized arguments: {' '.join(extras)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    command = None
    try:
        args, extras = parser.parse_known_args(argv)
        command = args.command
        if extras:
            raise _unrecognised(parser, command, extras)
        if command in TRAINING:
            from harness.training.device import flush_denormals

            flush_denormals()  # this process's own setting, before torch starts its threads
        if "artifacts" in vars(args) and args.artifacts is None:
            from harness.search.storage import default_artifacts, storage_url

            args.artifacts = default_artifacts(storage_url(args.storage))
        return int(args.func(args))
    except UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit:  # --help, or a command that chose its own status
        raise
    except BaseException as e:
        return _ended(e, command, args if command else None)


def _ended(error: BaseException, command: str | None, args: argparse.Namespace | None) -> int:
    """The one line and the exit status of a command that ended on `error` (`search.exits`);
    a bug is raised again, with its traceback."""
    if command is None and isinstance(error, KeyboardInterrupt):
        print("harness: interrupted", file=sys.stderr)
        return 130
    from harness.search.exits import EXIT_INTERRUPTED, EXIT_TERMINATED, ending
    from harness.search.storage import redact, storage_url

    url = getattr(args, "storage", None)
    try:
        storage = redact(storage_url(url))
    except Exception:  # a URL too broken to name: its own error has been or will be reported
        storage = str(url)
    end = ending(error, storage, config_error(getattr(args, "flags", {})))
    if end is None:
        raise error
    status, line = end
    if status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        what = "terminated (SIGTERM)" if status == EXIT_TERMINATED else "interrupted"
        line = (f"{what}; what finished is kept, the trials that were running are marked FAIL and queued again: "
                "run the same command to resume") if command in RESUMABLE else what  # fmt: skip
    print(f"harness {command}: {line}", file=sys.stderr)
    return status


def entry() -> NoReturn:
    """The `harness` process: SIGTERM ends it as Ctrl-C does (the running trials FAIL with
    their reason, exit 143); `main` alone, called from a script or a test, leaves the signal
    handlers as they were."""
    from harness.search.exits import catch_sigterm

    catch_sigterm()
    sys.exit(main())
