"""Unit tests of `harness.cli` where its logic lives: the parser (flags, their defaults and
rules from the config classes), how each kind of mistake becomes one line, and the summary
line. Whole commands are run in the other test files."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from harness import cli
from harness.cli import commands
from harness.constraints import default_of
from harness.errors import ConfigError
from harness.search.spec import SpecError
from harness.search.study import study_line
from harness.training.reproduce import NotebookSettings


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser(argv).parse_args(list(argv))


def test_reproduce_defaults_are_the_notebooks_from_the_config_class() -> None:
    args = parse("reproduce")
    for name in ("hidden_size", "lr", "epochs", "seed"):
        assert getattr(args, name) == default_of(NotebookSettings, name)
    assert (args.cell, args.signal, args.window) == (None, None, None)  # the notebook's own runs


def test_flags_are_parsed_into_their_fields_types() -> None:
    args = parse("reproduce", "--cell", "gru", "--signal", "long-period", "--window", "32", "--lr", "1e-3")
    assert (args.cell, args.signal, args.window, args.lr) == ("gru", "long-period", 32, 0.001)
    launch = parse("launch", "a.toml", "b.toml", "--trials", "4", "--workers", "2", "--timeout", "1.5",
                   "--set", "training.epochs=1", "--set", "study.sampler=random")  # fmt: skip
    assert launch.specs == ["a.toml", "b.toml"] and (launch.trials, launch.workers, launch.timeout) == (4, 2, 1.5)
    assert launch.set == ["training.epochs=1", "study.sampler=random"]
    assert parse("launch", "a.toml").trials is None  # the spec's own target


@pytest.mark.parametrize(
    "argv,line",
    [
        (["reproduce", "--epochs", "0"], "harness reproduce: --epochs: must be an integer >= 1, got 0"),
        (["reproduce", "--lr", "abc"], "harness reproduce: --lr: must be a finite number > 0, got 'abc'"),
        (["launch", "x.toml", "--workers", "0"], "harness launch: --workers: must be an integer >= 1, got 0"),
        (["launch", "x.toml", "--timeout", "nan"], "harness launch: --timeout: must be a finite number > 0, got nan"),
        (["dashboard", "--port", "-1"], "harness dashboard: --port: must be an integer >= 1, got -1"),
        (["confirm", "--windows", "4,0"], "harness confirm: --windows: must be an integer >= 1, got 0"),
        (["confirm", "--windows", ","], "harness confirm: --windows: must be integers >= 1 separated by commas, "
                                         "got ','"),
        (["nonsense"], "harness: command: invalid choice"),
        (["launch", "x.toml", "--trails", "5"],
         "harness launch: unrecognized arguments: --trails 5 (did you mean --trials?)"),
        (["studies", "--zzz"], "harness studies: unrecognized arguments: --zzz (see `harness studies --help`)"),
    ],
)  # fmt: skip
def test_a_bad_flag_is_one_line_naming_it(argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err


def test_window_lists_are_sorted_and_unique() -> None:
    assert parse("confirm", "--windows", "32, 5,5,2").windows == (2, 5, 32)
    assert parse("confirm").windows == ()


def _studies_raising(error: BaseException) -> Callable[[argparse.ArgumentParser], None]:
    """A `studies` subcommand whose command raises `error`, as a real command's would."""

    def add(p: argparse.ArgumentParser) -> None:
        def command(args: argparse.Namespace) -> int:
            raise error

        p.add_argument("--storage")
        p.set_defaults(func=command, flags={"storage": "--storage"})

    return add


@pytest.mark.parametrize(
    "error,line,code",
    [
        (ConfigError("storage", "no database at x.db"), "harness studies: --storage: no database at x.db", 2),
        (ConfigError("other", "said so"), "harness studies: other: said so", 2),
        (SpecError("s.toml", "study.name", "bad"), "harness studies: s.toml: study.name: bad", 2),
        (KeyboardInterrupt(), "harness studies: interrupted", 130),
    ],
)
def test_a_commands_error_names_its_flag_file_or_key(
    error: BaseException, line: str, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "add_studies", _studies_raising(error))
    assert cli.main(["studies", "--storage", "sqlite:///x.db"]) == code
    assert capsys.readouterr().err.strip() == line


def test_the_summary_line() -> None:
    summary = {
        "study": "s",
        "counts": {"COMPLETE": 3, "PRUNED": 1, "FAIL": 2},
        "best_value": 0.000123456,
        "best_trial": 2,
        "best_params": {"cell": "gru", "lr": 0.0123456, "window": 5},
    }
    assert study_line(summary) == (
        "s: 4 finished (3 complete, 1 pruned), 2 failed; best val_mse 0.0001235 (trial 2): cell=gru lr=0.0123 window=5"
    )
    assert study_line(summary | {"best_value": None}).endswith("2 failed; no complete trial yet")
    assert study_line(summary | {"target": 6}).startswith("s: 4 finished of 6 (3 complete, 1 pruned), 2 failed")


def test_help_imports_nothing_heavy() -> None:
    """`harness --help` lists the subcommands without importing torch, Optuna or pandas."""
    import subprocess
    import sys

    probe = (
        "import sys\nfrom harness.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'optuna', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "usage: harness" in out and "launch" in out and "confirm" in out
    assert out.strip().splitlines()[-1] == "[]"
