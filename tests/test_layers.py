"""The folders are the layers: `lint-imports` (run by `make test`) passes on the package and
fails on an upward import between two subpackages."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})  # fmt: skip


def test_an_upward_import_between_subpackages_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert _lint(tmp_path).returncode == 0
    data = tmp_path / "harness" / "series" / "data.py"
    data.write_text(data.read_text() + "\nfrom harness.report import tables  # noqa: E402  an upward import\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "harness.series.data -> harness.report.tables" in broken.stdout


def _top_layers() -> list[list[str]]:
    """The package-wide layers contract, top first: each layer's names without `harness.`."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers" and "containers" not in c]
    return [[name.strip().removeprefix("harness.") for name in layer.split("|")] for layer in layers]


def _opening(init: Path) -> str:
    """The docstring's first paragraph, on one line."""
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc, f"{init} has no docstring"
    return " ".join(doc.split("\n\n")[0].split())


def test_every_subpackage_states_its_layer_and_imports_as_the_contract_does() -> None:
    """Each folder is a layer of the contract, and, below the front ends (which may import
    anything), its docstring's opening says which ("layer N", counting the layers that hold a
    folder from the bottom), the layers it may import (every one below it; "every layer" says
    so at once) and, after "never" or "but", only layers it may not; a layer beside it is
    named "beside"."""
    layers = _top_layers()
    folders = {p.parent.name for p in (ROOT / "harness").glob("*/__init__.py")}
    ranks = {}  # layer index -> "layer N" for the layers holding a folder
    for i in reversed(range(len(layers))):
        if folders & set(layers[i]):
            ranks[i] = len(ranks) + 1
    assert folders <= {name for layer in layers for name in layer}, "a folder missing from the layers contract"
    names = {name for layer in layers for name in layer}
    for folder in sorted(folders - set(layers[0])):
        i = next(i for i, layer in enumerate(layers) if folder in layer)
        below = {name for layer in layers[i + 1 :] for name in layer}
        beside = set(layers[i]) - {folder}
        opening = _opening(ROOT / "harness" / folder / "__init__.py")
        assert f"layer {ranks[i]}" in opening and len(re.findall(r"\blayer \d", opening)) == 1, (folder, opening)
        for name in re.findall(r"\bbeside `(\w+)`", opening):
            assert name in beside, (folder, name)
        allowed_part, _, forbidden_part = re.split(r"\b(never|but)\b", opening + " never", maxsplit=1)
        allowed = set(re.findall(r"`(\w+)`", re.sub(r"\bbeside `\w+`", "", allowed_part))) & names
        forbidden = set(re.findall(r"`(\w+)`", forbidden_part)) & names
        assert "may import" in opening, (folder, opening)
        assert allowed <= below, f"{folder} says it may import {sorted(allowed - below)}, above or beside it"
        assert not forbidden & below, f"{folder} says it never imports {sorted(forbidden & below)}, below it"
        if "every layer" not in allowed_part:
            assert allowed == below, f"{folder} leaves out {sorted(below - allowed)}, which it may import"


def test_no_module_is_too_long_to_read() -> None:
    sizes = {p: len(p.read_text().splitlines()) for p in (ROOT / "harness").rglob("*.py")}
    assert max(sizes.values()) <= 600, max(sizes, key=sizes.__getitem__)
