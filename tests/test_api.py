"""The public API: what the README tells a user's script to import from `harness` directly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).parents[1]


def test_a_script_trains_one_run_with_the_top_level_names_alone() -> None:
    from harness import RunConfig, SignalConfig, run

    result = run(RunConfig(signal=SignalConfig("short-period"), cell="gru", hidden_size=8, window=5, epochs=2), "cpu")
    assert len(result.losses) == 2 and result.metrics["val_mse"] > 0
    assert result.config.cell == "gru" and result.train_seconds > 0


def test_load_spec_and_load_model_are_exported() -> None:
    from harness import load_model, load_spec

    spec = load_spec(ROOT / "studies" / "smoke.toml")
    assert spec.study.name == "smoke" and callable(load_model)
    assert set(harness.__all__) >= {"RunConfig", "run", "load_spec", "load_model", "SignalConfig"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        harness.nothing  # noqa: B018


def test_import_harness_stays_cheap() -> None:
    code = "import sys, harness; print('torch' in sys.modules, 'optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_readme_script_uses_only_the_public_names() -> None:
    import ast
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README shows a script"
    for block in blocks:
        imported = [a.name for n in ast.walk(ast.parse(block)) if isinstance(n, ast.ImportFrom) for a in n.names]
        assert imported and set(imported) <= set(harness.__all__)
