from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.search.spec import Choice, Range, SpecError, load_spec, spec_from_dict

STUDIES = Path(__file__).parents[2] / "studies"
SMOKE = STUDIES / "smoke.toml"
# A GPU index this machine does not have, whatever it has: one past the last.
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_spec_loads_and_round_trips(path: Path) -> None:
    spec = load_spec(path)
    assert spec_from_dict(spec.to_dict()) == spec
    assert {"cell", "hidden_size", "window", "lr"} <= set(spec.search) | set(spec.fixed)


@pytest.mark.parametrize("name,window_high", [("short_period", 64), ("long_period", 200)])
def test_default_ranges_are_wide(name: str, window_high: int) -> None:
    spec = load_spec(STUDIES / f"{name}.toml")
    assert spec.search["cell"] == Choice(("rnn", "lstm", "gru"))
    hidden, window, lr = spec.search["hidden_size"], spec.search["window"], spec.search["lr"]
    assert isinstance(hidden, Range) and hidden.low <= 8 and hidden.high >= 256 and hidden.log
    assert isinstance(lr, Range) and lr.low <= 1e-4 and lr.high >= 1e-1 and lr.log
    assert isinstance(window, Range) and window.low <= 2 and window.high >= window_high


def test_overrides_are_applied_and_typed() -> None:
    spec = load_spec(SMOKE, ["training.epochs=3", 'search.cell=["gru"]', "study.sampler=random", "search.lr=0.01"])
    assert spec.training.epochs == 3 and spec.study.sampler == "random"
    assert spec.search["cell"] == Choice(("gru",)) and spec.fixed["lr"] == 0.01 and "lr" not in spec.search
    config = spec.run_config({"cell": "gru", "hidden_size": 4, "window": 3})
    assert config.lr == 0.01 and config.epochs == 3 and config.signal.name == "short-period"


def test_a_spec_is_data_not_code(tmp_path: Path) -> None:
    text = SMOKE.read_text().replace('name = "smoke"', "name = \"__import__('os').system('false')\"")
    path = tmp_path / "evil.toml"
    path.write_text(text)
    assert load_spec(path).study.name == "__import__('os').system('false')"


BAD_SPECS = [
    # (edit of smoke.toml as (old, new), key the message must name, word from the allowed values)
    (("trials = 3", "trials = 3\ncolour = 1"), "study.colour", "allowed"),
    (("epochs = 2", 'epochs = "two"'), "training.epochs", "integer"),
    (("{ low = 4, high = 16, log = true }", "{ low = 16, high = 4 }"), "search.hidden_size", "inverted"),
    (('cell = ["rnn", "lstm", "gru"]', "cell = []"), "search.cell", "empty"),
    (("{ low = 1e-3, high = 3e-2, log = true }", "{ low = -1e-3, high = 3e-2 }"), "search.lr", "> 0"),
    (("{ low = 4, high = 16, log = true }", "{ low = 0, high = 16 }"), "search.hidden_size", ">= 1"),
    (('"rnn", "lstm", "gru"', '"rnn", "transformer"'), "search.cell", "rnn, lstm, gru"),
    (('sampler = "tpe"', 'sampler = "bayes"'), "study.sampler", "tpe, random, grid"),
    (('pruner = "none"', 'pruner = "patient"'), "study.pruner", "median, hyperband"),
    (("{ low = 2, high = 16 }", "{ low = 2, high = 700 }"), "search.window", "1..699"),
    (('pruner = "none"', 'pruner = "median"\nobjectives = ["val_mse", "train_seconds"]'), "study.pruner", "none"),
    (("[training]", "[trainig]"), "trainig", "allowed"),
    (('sampler = "tpe"', 'sampler = "grid"'), "search.hidden_size", "list"),
    (("trials = 3", "trials = 0"), "study.trials", ">= 1"),
    (("{ low = 4, high = 16, log = true }", "{ low = 4, hihg = 16 }"), "search.hidden_size.hihg", "low, high"),
    (("[training]", "[execution]\nfuse = 4\n\n[training]"), "execution", "allowed"),  # trials no longer fuse
]


@pytest.mark.parametrize("edit,key,allowed", BAD_SPECS, ids=[b[1] + ":" + b[2] for b in BAD_SPECS])
def test_spec_errors_are_one_line_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], key: str, allowed: str
) -> None:
    text = SMOKE.read_text()
    assert edit[0] in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    db = tmp_path / "h.db"
    assert main(["launch", str(path), "--storage", f"sqlite:///{db}", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(path) in err[0] and key in err[0] and allowed in err[0]
    assert not db.exists()


def test_malformed_toml_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname = 1")
    for path in (bad, tmp_path / "missing.toml"):
        assert main(["launch", str(path), "--storage", f"sqlite:///{tmp_path / 'h.db'}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0]
    assert not (tmp_path / "h.db").exists()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--set", "training.epoch=3"], "training.epoch"),
        (["--set", "nonsense"], "table.key=value"),
        (["--set", "search.lr=0"], "search.lr"),
        (["--set", "execution.fuse=4"], "execution"),
        (["--fuse", "4"], "--fuse"),
        (["--trials", "0"], "--trials"),
        (["--workers", "-1"], "--workers"),
        (["--storage", "redis://localhost/0"], "--storage"),
        (["--storage", "sqlite:///:memory:"], "--storage"),
        (["--storage", "sqlite:////nonexistent-folder/h.db"], "--storage"),
        (["--device", MISSING_GPU], "--device"),
    ],
)
def test_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    storage = [] if "--storage" in argv else ["--storage", f"sqlite:///{tmp_path / 'h.db'}"]
    assert main(["launch", str(SMOKE), "--no-progress", *storage, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "h.db").exists()


def test_unwritable_storage_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /proc refuses new files even to root, for whom permission bits are no obstacle.
    assert main(["launch", str(SMOKE), "--storage", "sqlite:////proc/harness-test.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--storage" in err[0] and "not writable" in err[0]


def test_a_spec_stored_with_an_execution_table_still_reads() -> None:
    """Studies recorded while a launch could fuse trials hold `[execution] fuse`: how their
    trials ran, not what they computed, so the stored spec reads as the same search."""
    spec = load_spec(SMOKE)
    assert spec_from_dict({**spec.to_dict(), "execution": {"fuse": 4}}) == spec


def test_spec_error_type_carries_file_and_key() -> None:
    e = SpecError("f.toml", "study.name", "must not be empty")
    assert str(e) == "f.toml: study.name: must not be empty"


@pytest.mark.parametrize(
    "override,key",
    [("search.num_layers=1", "search.num_layers"), ("training.num_layers=2", "training.num_layers"),
     ('training.protocol="seed"', "training.protocol")],
)  # fmt: skip
def test_a_collection_refuses_settings_it_cannot_use(override: str, key: str) -> None:
    with pytest.raises(SpecError, match=key):
        load_spec(Path(__file__).parents[2] / "studies" / "m3_other.toml", [override])
