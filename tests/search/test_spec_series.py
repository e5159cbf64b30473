"""Real series in a spec: every bad input is one line naming the file and key, exit 2, nothing
written; a relaunch on a changed file is refused naming both hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.search.spec import load_spec

SPEC = """
[study]
name = "mine"
trials = 1
pruner = "none"

[{table}]
{series}

[training]
epochs = 1

[search]
cell = ["gru"]
hidden_size = 4
window = {{ low = 2, high = 24 }}
lr = 0.01
"""


def write_csv(path: Path, values: object, **more: object) -> Path:
    pd.DataFrame({"y": values, **more}).to_csv(path, index=False)
    return path


def write_spec(tmp_path: Path, series: str, table: str = "series") -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(SPEC.format(table=table, series=series))
    return path


def launch(spec: Path, db: Path) -> int:
    return main(["launch", str(spec), "--storage", f"sqlite:///{db}", "--no-progress"])


BAD = [
    # ([series] lines, key the message names, words it must hold)
    ('source = "file"\npath = "nope.csv"\ncolumn = "y"', "series.path", "no such file"),
    ('source = "file"\npath = "good.csv"\ncolumn = "x"', "series.column", "allowed: y, t"),
    ('source = "file"\npath = "text.csv"\ncolumn = "y"', "series.column", "not numeric"),
    ('source = "file"\npath = "gaps.csv"\ncolumn = "y"', "series.missing", '"interpolate" or "drop"'),
    ('source = "file"\npath = "short.csv"\ncolumn = "y"', "series.path", "at least 30"),
    ('source = "file"\npath = "flat.csv"\ncolumn = "y"', "series.column", "constant"),
    ('source = "file"\npath = "neg.csv"\ncolumn = "y"\ntransform = "log"', "series.transform", "positive"),
    ('source = "builtin"\nname = "airline"', "series.name", "sunspots, co2, nile"),
    ('source = "builtin"\nname = "nile"\ntransform = "cube"', "series.transform", "none, log, diff, log-diff"),
    ('source = "builtin"\nname = "nile"\nmissing = "guess"', "series.missing", "error, interpolate, drop"),
    ('source = "file"\npath = "good.csv"', "series.column", "needs path and column"),
    ('source = "web"', "series.source", "synthetic, builtin, file"),
    ('source = "file"\npath = "mid.csv"\ncolumn = "y"', "search.window", "1..20"),
]


@pytest.mark.parametrize("series,key,words", BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_bad_series_is_one_line_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], series: str, key: str, words: str
) -> None:
    write_csv(tmp_path / "good.csv", np.arange(100.0) % 7, t=np.arange(100))
    write_csv(tmp_path / "text.csv", ["1", "2", "three"] * 20)
    write_csv(tmp_path / "gaps.csv", [1.0, np.nan, 3.0] * 20)
    write_csv(tmp_path / "short.csv", np.arange(12.0))
    write_csv(tmp_path / "flat.csv", [2.0] * 60)
    write_csv(tmp_path / "neg.csv", np.arange(-3.0, 57.0))
    write_csv(tmp_path / "mid.csv", np.sin(np.arange(30.0)))  # 21 training targets: windows up to 20
    spec = write_spec(tmp_path, series)
    db = tmp_path / "h.db"
    assert launch(spec, db) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(spec) in err[0] and key in err[0] and words in err[0], err[0]
    assert not db.exists()


def test_signal_is_the_older_name_of_series_and_not_both(tmp_path: Path) -> None:
    old = load_spec(write_spec(tmp_path, 'source = "builtin"\nname = "nile"', table="signal"))
    new = load_spec(write_spec(tmp_path, 'source = "builtin"\nname = "nile"'))
    assert old == new and new.signal.length == 100
    assert load_spec(tmp_path / "mine.toml", ["signal.transform=diff"]).signal.transform == "diff"  # either name
    both = tmp_path / "both.toml"
    both.write_text(SPEC.format(table="series", series='source = "builtin"\nname = "nile"') + '[signal]\nname = "x"\n')
    with pytest.raises(Exception, match="series: given with \\[signal\\] too"):
        load_spec(both)


def test_relaunch_on_a_changed_file_is_refused_naming_both_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "mine.csv", np.sin(np.arange(60.0) / 3) + 2)
    spec = write_spec(tmp_path, 'source = "file"\npath = "mine.csv"\ncolumn = "y"')
    db = tmp_path / "h.db"
    assert launch(spec, db) == 0
    before = load_spec(spec).signal.sha256
    write_csv(csv, np.sin(np.arange(60.0) / 3) + 2.5)
    after = load_spec(spec).signal.sha256
    capsys.readouterr()
    assert launch(spec, db) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and before in err[0] and after in err[0] and "changed" in err[0], err


def test_confirm_and_report_refuse_a_changed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "mine.csv", np.sin(np.arange(60.0) / 3) + 2)
    spec = write_spec(tmp_path, 'source = "file"\npath = "mine.csv"\ncolumn = "y"')
    db = tmp_path / "h.db"
    assert launch(spec, db) == 0
    before = load_spec(spec).signal.sha256
    write_csv(csv, np.sin(np.arange(60.0) / 3) + 2.5)
    after = load_spec(spec).signal.sha256
    storage = ["--storage", f"sqlite:///{db}"]
    for argv in (["confirm", "--seeds", "2", *storage], ["report", *storage, "--out", str(tmp_path / "report")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and before in err[0] and after in err[0] and "changed" in err[0], err
    assert not (tmp_path / "report").exists()
