"""The README's quoted output of deterministic commands is what the code prints today.

A quoted block that starts with `$ harness ...` is that command's verbatim output. Where the
output is deterministic on the CPU (the notebook's losses and evaluations, a one-worker
study's trials) it is re-run here and compared, so the README cannot drift from the code.
Timings and the machine's name are the only parts allowed to differ.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import main

README = Path(__file__).parent.parent / "README.md"
DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]
CHECKED = ("reproduce", "launch")  # deterministic commands whose quoted output is re-run


def quoted_runs() -> list[tuple[str, list[str], list[str]]]:
    """(file, argv, output lines) for each ```-block whose first line is `$ harness ...`."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```\n(\$ harness .*?)```", doc.read_text(encoding="utf-8"), flags=re.S):
            first, *output = block.rstrip("\n").splitlines()
            found.append((doc.name, shlex.split(first)[2:], output))
    return found


RUNS = [r for r in quoted_runs() if r[1][0] in CHECKED]


def test_the_readme_quotes_the_deterministic_commands() -> None:
    assert {argv[0] for _, argv, _ in RUNS} == set(CHECKED)


@pytest.mark.parametrize(
    "doc,argv,quoted",
    [pytest.param(*r, id=" ".join(r[1]), marks=[pytest.mark.slow] if r[1][0] == "launch" else []) for r in RUNS],
)
def test_quoted_output_is_what_the_command_prints(
    doc: str, argv: list[str], quoted: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "launch":  # into a fresh database, wherever the README's went
        i = argv.index("--storage")
        argv = [*argv[:i], "--storage", f"sqlite:///{tmp_path / 'h.db'}", *argv[i + 2 :]]
    assert main([str(README.parent / a) if a.startswith("studies/") else a for a in argv]) == 0
    printed = capsys.readouterr().out.rstrip("\n").splitlines()
    assert len(printed) == len(quoted), (printed, quoted)
    for ours, theirs in zip(printed, quoted, strict=True):
        if ours.startswith("storage:"):
            continue
        if argv[0] == "reproduce":
            # the machine's name and the last column (train_s) are timings and hardware, not results
            ours, theirs = re.sub(r"\(.*\)$", "", ours), re.sub(r"\(.*\)$", "", theirs)
            if re.match(r"\s*(rnn|lstm|gru) ", ours):
                ours, theirs = ours.rsplit(maxsplit=1)[0], theirs.rsplit(maxsplit=1)[0]
        # printed to 4 significant digits: the same numbers print the same text
        assert ours.split() == theirs.split(), f"{doc}: {theirs!r} is now {ours!r}"


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
