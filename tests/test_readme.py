"""Every `$ harness ...` output block in the README and docs/ is what the code prints today.

A ```-block with a line `$ harness ...` is a session at a shell, run from the repository's root:
each `$ harness ...` line is a command (a line ending in `\\` goes on to the next), the lines
after it its standard output. Each block is re-run here, its commands in order, in a fresh
folder laid out like the repository (`studies/` and an empty `results/`), so a block that
launches into `sqlite:///results/x.db` and then confirms from it works as quoted and writes
nothing into the real `results/`. Each command must exit 0 and print the quoted lines: the same
number of lines and, line by line, the same words and numbers (printed to 4 significant digits,
the same numbers print the same text), but for what `CHECKS` masks as timing or hardware.

A block whose commands this test does not know how to compare fails, so no new block escapes:
give its subcommand an entry in `CHECKS` (and in `SLOW` when it trains for more than a moment).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.M | re.S)


def _reproduce(line: str) -> list[str]:
    """The machine's name and the last column (train_s) are hardware and timing, not results."""
    line = re.sub(r"\(.*\)$", "", line)
    words = line.split()
    return words[:-1] if words and words[0] in ("rnn", "lstm", "gru") else words


# How each subcommand's printed lines are compared: the words that must match. Each of these is
# deterministic on the CPU (same code, same seeds, one worker), so all but timings must match.
CHECKS: dict[str, Callable[[str], list[str]]] = {
    "reproduce": _reproduce,
    "launch": str.split,  # a one-worker study asks and trains the same trials
    "confirm": str.split,  # seeded replicates of the launch's best trials, and their statistics
}
SLOW = {"launch", "confirm"}  # they train studies: seconds to tens of seconds


@dataclass
class Command:
    argv: list[str]
    quoted: list[str] = field(default_factory=list)


@dataclass
class Block:
    doc: str
    line: int
    commands: list[Command]
    stray: list[str]  # output quoted before the block's first command

    def problems(self) -> list[str]:
        """Why this test cannot re-run the block, if it cannot."""
        found = [f"{self.doc}:{self.line}: output before the first command: {self.stray[0]!r}"] if self.stray else []
        for c in self.commands:
            if c.argv[:1] != ["harness"] or len(c.argv) < 2 or c.argv[1] not in CHECKS:
                found.append(f"{self.doc}:{self.line}: `$ {shlex.join(c.argv)}`: no way to re-run it here; "
                             f"give its subcommand a comparison in {__name__}.CHECKS")  # fmt: skip
        return found


def blocks_in(text: str, doc: str) -> list[Block]:
    """The ```-blocks of `text` with a `$ harness ...` line, as commands and their quoted output."""
    found = []
    for m in FENCE.finditer(text):
        lines = m.group(1).rstrip("\n").splitlines()
        if not any(line.startswith("$ harness") for line in lines):
            continue
        block = Block(doc, text.count("\n", 0, m.start()) + 1, [], [])
        lines.reverse()
        while lines:
            line = lines.pop()
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\") and lines:
                    command = command[:-1] + lines.pop()
                block.commands.append(Command(shlex.split(command)))
            elif block.commands:
                block.commands[-1].quoted.append(line)
            else:
                block.stray.append(line)
        found.append(block)
    return found


BLOCKS = [b for doc in DOCS for b in blocks_in(doc.read_text(encoding="utf-8"), doc.name)]


def test_every_quoted_command_is_one_this_test_re_runs() -> None:
    found = {word for b in BLOCKS for c in b.commands for word in c.argv[1:2]}
    assert found >= {"reproduce", "launch"}  # the README's and reproduce.md's: the parser finds them
    assert [p for b in BLOCKS for p in b.problems()] == []


def test_a_block_this_test_cannot_re_run_is_a_failure_not_a_skip() -> None:
    text = (
        "```\n$ harness launch studies/smoke.toml\nout\n$ harness dashboard\n$ make run\n```\n"
        "```\nstray\n$ harness reproduce\n```\n"
    )
    launch, stray = blocks_in(text, "x.md")
    assert [c.argv[:2] for c in launch.commands] == [["harness", "launch"], ["harness", "dashboard"], ["make", "run"]]
    assert launch.commands[0].quoted == ["out"]
    assert len(launch.problems()) == 2 and len(stray.problems()) == 1


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(
            b,
            id=f"{b.doc}:{b.line} " + " | ".join(" ".join(c.argv[1:3]) for c in b.commands),
            marks=[pytest.mark.slow] if any(SLOW.intersection(c.argv[1:2]) for c in b.commands) else [],
        )
        for b in BLOCKS
    ],
)
def test_quoted_output_is_what_the_commands_print(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert block.problems() == []
    monkeypatch.chdir(tmp_path)  # the repository's layout, with nothing in results/
    monkeypatch.delenv("HARNESS_STORAGE", raising=False)
    (tmp_path / "studies").symlink_to(ROOT / "studies")
    (tmp_path / "results").mkdir()
    for command in block.commands:
        where = f"{block.doc}:{block.line}: `$ {shlex.join(command.argv)}`"
        capsys.readouterr()
        status = main(command.argv[1:])
        out, err = capsys.readouterr()
        assert status == 0, f"{where} exited {status}: {err}"
        printed = out.rstrip("\n").splitlines()
        assert len(printed) == len(command.quoted), f"{where} printed\n{out}"
        words = CHECKS[command.argv[1]]
        for ours, theirs in zip(printed, command.quoted, strict=True):
            assert words(ours) == words(theirs), f"{where}: {theirs!r} is now {ours!r}"


def test_the_readme_quotes_the_findings_as_the_report_writes_them() -> None:
    """The README's findings are `findings.md` verbatim: its questions, in the generator's order
    and words, each a list of findings, and the generator's note on fragile verdicts."""
    from harness.stats.findings import Finding, markdown

    text = README.read_text(encoding="utf-8")
    start = text.index("**Which cell predicts best?**")
    end = text.index("\n\n", text.index("_Fragile_ marks", start)) + 1
    quoted = text[start:end]
    titles = {"Which cell predicts best?": "cells", "Does any cell beat forecasting's baselines?": "baseline",
              "Does the long period hurt?": "period", "Does a longer window help?": "window"}  # fmt: skip
    found, question = [], None
    for line in quoted.splitlines():
        if line.startswith("**") and line.endswith("**"):
            question = titles[line.strip("*")]  # a title the generator does not write is a KeyError
        elif line.startswith("- "):
            assert question is not None, line
            found.append(Finding(question, "", line[2:]))
    assert {f.question for f in found} == set(titles.values())
    assert markdown(found) == quoted
