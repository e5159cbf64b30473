"""Every file the CLI opens on a user's word, wrong in every way we could think of: one line
on stderr naming the file and what is wrong, exit 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli import main

SMOKE = Path(__file__).parent.parent / "studies" / "smoke.toml"


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in err[0], err
    return err[0]


# kind -> what the error must say
BAD_SPECS = {
    "random bytes": "not UTF-8",
    "latin-1 text": "not UTF-8",
    "a folder": "cannot be read",
    "empty": "search.cell",  # an empty spec lacks the search space
    "missing": "no such file",
}


def _bad_spec(folder: Path, kind: str) -> Path:
    path = folder / "x.toml"
    if kind == "random bytes":  # a binary file saved as .toml; 0xff never occurs in UTF-8
        path.write_bytes(bytes([0xFF, 0xFE, 0x8D]) + os.urandom(297))
    elif kind == "latin-1 text":
        path.write_bytes(SMOKE.read_bytes() + "# café\n".encode("latin-1"))
    elif kind == "a folder":
        path.mkdir()
    elif kind == "empty":
        path.write_text("")
    return path


@pytest.mark.parametrize("kind", list(BAD_SPECS))
def test_bad_spec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    spec = _bad_spec(folder, kind)
    before = _listing(tmp_path)
    db = tmp_path / "h.db"
    assert main(["launch", str(spec), "--storage", f"sqlite:///{db}", "--no-progress"]) == 2
    _one_line_error(capsys, str(spec), BAD_SPECS[kind])
    assert _listing(tmp_path) == before


@pytest.mark.slow
def test_a_byte_order_mark_is_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bom.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + SMOKE.read_bytes())
    db = tmp_path / "h.db"
    argv = ["launch", str(spec), "--storage", f"sqlite:///{db}", "--trials", "1", "--set", "training.epochs=1"]
    assert main([*argv, "--no-progress"]) == 0
    assert "1 finished" in capsys.readouterr().out


BAD_DATABASES = ("random bytes", "text", "a folder")


@pytest.mark.parametrize("command", ["launch", "race", "studies", "report", "confirm"])
@pytest.mark.parametrize("kind", BAD_DATABASES)
def test_storage_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    db = tmp_path / "h.db"
    if kind == "random bytes":
        db.write_bytes(os.urandom(4096))
    elif kind == "text":
        db.write_text("hello, not a database\n")
    else:
        db.mkdir()
    before = _listing(tmp_path)
    argv = {
        "launch": ["launch", str(SMOKE), "--no-progress"],
        "race": ["race", str(SMOKE), "--no-progress"],
        "studies": ["studies"],
        "report": ["report", "--out", str(tmp_path / "out"), "--artifacts", str(tmp_path / "art")],
        "confirm": ["confirm"],
    }[command]
    assert main([*argv, "--storage", f"sqlite:///{db}"]) == 2
    _one_line_error(capsys, "--storage", "h.db")
    assert _listing(tmp_path) == before  # no claim-lock file beside it, no report folder
    assert not (tmp_path / "out").exists()
