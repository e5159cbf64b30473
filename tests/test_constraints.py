"""One rule per config field, one message: every declared rule walked through the three front
ends (a spec file, `--set`, a CLI flag where one exists), which must print the same words."""

from __future__ import annotations

import json
import pickle
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.constraints import Integer, OneOf, Real, check, default_of, rules
from harness.errors import ConfigError
from harness.search.spec import (
    SEARCHABLE,
    StudySettings,
    TrainingSettings,
    load_spec,
    spec_from_dict,
)
from harness.series.signals import SignalConfig
from harness.training.reproduce import NotebookSettings
from harness.training.train import RunConfig

SMOKE = Path(__file__).parent.parent / "studies" / "smoke.toml"

# (spec key, a value its rule refuses, the flag that sets the same field as (command, flag), if any)
BAD: list[tuple[str, Any, tuple[str, str] | None]] = [
    ("study.name", "", None),
    ("study.sampler", "bayes", None),
    ("study.sampler_seed", "x", None),
    ("study.pruner", "patient", None),
    ("study.trials", 0, ("launch", "--trials")),
    ("study.objectives", ["val_mse", "loss"], None),
    ("study.equal_cells", "yes", None),
    ("signal.name", "square", ("reproduce", "--signal")),
    ("signal.length", 1, None),
    ("signal.amplitude", "loud", None),
    ("signal.phase", "x", None),
    ("signal.noise_std", -0.5, None),
    ("signal.noise_seed", -1, None),
    ("signal.source", "web", None),
    ("signal.path", 3, None),
    ("signal.column", 3, None),
    ("signal.time_column", 3, None),
    ("signal.missing", "guess", None),
    ("signal.season", -1, None),
    ("signal.transform", "cube", None),
    ("signal.horizon", -1, None),
    ("signal.sha256", 3, None),
    ("training.protocol", "lstm", None),
    ("training.epochs", 0, ("reproduce", "--epochs")),
    ("training.batch_size", 0, None),
    ("training.num_layers", 0, None),
    ("training.seed", "x", ("reproduce", "--seed")),
    ("training.precision", "fp16", None),
    ("training.deterministic", "yes", None),
    ("search.cell", "transformer", ("reproduce", "--cell")),
    ("search.hidden_size", 0, ("reproduce", "--hidden-size")),
    ("search.window", 0, ("reproduce", "--window")),
    ("search.lr", 0, ("reproduce", "--lr")),
    ("search.num_layers", 0, None),
    ("search.batch_size", 0, None),
    ("search.seed", "x", None),
    ("search.scope", "regional", None),
]


def test_the_table_covers_every_declared_field() -> None:
    tables = {"study": StudySettings, "signal": SignalConfig, "training": TrainingSettings}
    declared = {f"{t}.{name}" for t, cls in tables.items() for name in rules(cls)}
    declared |= {f"search.{name}" for name in SEARCHABLE}
    assert {key for key, _, _ in BAD} == declared


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for these plain values
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _write(raw: dict[str, dict[str, Any]], path: Path) -> Path:
    path.write_text(
        "".join(f"[{t}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in kv.items()) for t, kv in raw.items())
    )
    return path


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("key,bad,flag", BAD, ids=[b[0] for b in BAD])
def test_one_message_from_every_front_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, bad: Any, flag: tuple[str, str] | None
) -> None:
    table, name = key.split(".")
    raw = tomllib.loads(SMOKE.read_text())
    if table == "search":
        raw["training"].pop(name, None)  # a key lives in one table
    base = _write(raw, tmp_path / "base.toml")
    raw.setdefault(table, {})[name] = bad
    bad_file = _write(raw, tmp_path / "bad.toml")
    storage = ["--storage", f"sqlite:///{tmp_path / 'h.db'}", "--no-progress"]

    from_file = _error(["launch", str(bad_file), *storage], capsys)
    from_set = _error(["launch", str(base), "--set", f"{key}={_toml(bad)}", *storage], capsys)
    prefix = f"harness launch: {bad_file}: {key}: "
    assert from_file.startswith(prefix), from_file
    message = from_file.removeprefix(prefix)
    assert message.startswith("must be ") and ", got " in message
    assert from_set == f"harness launch: --set: {key}: {message}"
    if flag is not None:
        command, option = flag
        word = bad if isinstance(bad, str) else str(bad)
        assert _error([command, option, word, *([] if command == "reproduce" else [str(SMOKE)])], capsys) == (
            f"harness {command}: {option}: {message}"
        )
    assert not (tmp_path / "h.db").exists()


@pytest.mark.parametrize("table", ["training", "set"])
@pytest.mark.parametrize("name", ["batch_size", "num_layers"])
def test_a_key_in_both_training_and_search_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, name: str
) -> None:
    raw = tomllib.loads(SMOKE.read_text())
    raw["training"][name] = 2
    raw["search"][name] = [1, 2]
    argv = ["launch", str(_write(raw, tmp_path / "both.toml")), "--storage", f"sqlite:///{tmp_path / 'h.db'}"]
    if table == "set":  # the file sets [search] only; --set adds the [training] one
        del raw["training"][name]
        argv = [*argv[:1], str(_write(raw, tmp_path / "one.toml")), *argv[2:], "--set", f"training.{name}=2"]
    err = _error(argv, capsys)
    assert f"search.{name}" in err and f"training.{name}" in err and "one table" in err


def test_a_stored_spec_with_a_key_in_both_tables_still_loads() -> None:
    """Specs stored before the rule hold every [training] key; their [search] value won."""
    data = load_spec(SMOKE).to_dict()
    assert "batch_size" in data["training"]
    data["training"] |= {"num_layers": 3}
    data["search"] |= {"num_layers": [1, 2]}
    spec = spec_from_dict(data)
    assert spec.search["num_layers"].values == (1, 2)  # type: ignore[union-attr]
    assert "num_layers" not in spec.to_dict()["training"] and spec_from_dict(spec.to_dict()) == spec


def test_notebook_defaults_live_on_run_config() -> None:
    notebook = {"hidden_size": 30, "lr": 0.01, "epochs": 33, "seed": 42}
    assert {k: default_of(RunConfig, k) for k in notebook} == notebook
    assert {k: default_of(NotebookSettings, k) for k in notebook} == notebook
    assert rules(NotebookSettings) == {k: rules(RunConfig)[k] for k in notebook}
    assert {k: rules(TrainingSettings)[k] for k in ("epochs", "seed")} == {
        k: rules(RunConfig)[k] for k in ("epochs", "seed")
    }


@pytest.mark.parametrize(
    "rule,value,message",
    [
        (Integer(1), 0, "must be an integer >= 1, got 0"),
        (Integer(1), True, "must be an integer >= 1, got True"),
        (Integer(1, 699), 700, "must be an integer (allowed: 1..699), got 700"),
        (Real(0, low_open=True), 0, "must be a finite number > 0, got 0.0"),
        (Real(0, low_open=True), float("nan"), "must be a finite number > 0, got nan"),
        (Real(0, 0.3), 0.5, "must be a finite number in [0, 0.3], got 0.5"),
        (OneOf({"a": 1, "b": 2}, "thing"), "c", "must be a known thing (allowed: a, b), got 'c'"),
        (OneOf((("x",),), "list"), ["y"], 'must be a known list (allowed: ["x"]), got ["y"]'),
    ],
)
def test_one_message_shape(rule: Any, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        check("key", value, rule)
    assert (e.value.key, e.value.message) == ("key", message)


def test_check_returns_the_value_in_the_fields_type() -> None:
    assert check("lr", 1, Real(0, low_open=True)) == 1.0 and isinstance(check("lr", 1, Real()), float)
    assert check("objectives", ["x"], OneOf((("x",),), "list")) == ("x",)


def test_a_config_error_crosses_a_process_boundary_as_it_was() -> None:
    """`confirm`'s worker pool pickles a worker's error to raise it in the parent, whose front
    end then prints its one line: the key, message and subclass must survive."""
    from harness.search.spec import SpecError

    for error in (ConfigError("sha256", "changed"), SpecError("a.toml", "search.window", "bad")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error) and again.key == error.key
        assert again.message == error.message
