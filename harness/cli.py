"""`harness ...` subcommands. `python -m harness` runs the same thing.

Every mistake a user can make ends here as one line on stderr naming the flag, file or
key and what is allowed, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from harness.errors import ConfigError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistake in the command line or its inputs, already phrased for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that names the flag is clearer.
        raise UsageError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


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
    from harness.models import CELLS
    from harness.signals import SIGNALS

    p = sub.add_parser("reproduce", help="re-run the notebook's configurations on the seed protocol")
    p.add_argument("--cell", choices=list(CELLS))
    p.add_argument("--signal", choices=list(SIGNALS))
    p.add_argument("--window", type=int)
    p.add_argument("--epochs", type=int, default=33)
    p.add_argument("--hidden-size", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps (auto: cuda, then mps, then cpu)")
    p.add_argument("--json", action="store_true", help="one JSON object per run per line")
    p.set_defaults(func=_reproduce, flags=_REPRODUCE_FLAGS)


def _reproduce(args: argparse.Namespace) -> int:
    import pandas as pd

    from harness.device import resolve_device
    from harness.reproduce import REPORTED_EPOCHS, NotebookSettings, notebook_config, reproduce_one, select_runs

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


# ---------------------------------------------------------------- entry point
def build_parser() -> _Parser:
    parser = _Parser(prog="harness", description="Benchmark and tune recurrent sequence predictors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_reproduce(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as e:
        flags = getattr(args, "flags", {})
        print(f"harness {args.command}: {_config_error(flags)(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> NoReturn:
    sys.exit(main())
