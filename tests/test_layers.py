"""The folders are the layers: `lint-imports` (run by `make test`) passes on the package and
fails on an upward import between two subpackages."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def test_every_subpackage_says_what_it_holds_and_what_it_may_import() -> None:
    for init in sorted((ROOT / "harness").glob("*/__init__.py")):
        doc = init.read_text()
        assert doc.startswith('"""') and "layer" in doc and "import" in doc, init


def test_no_module_is_too_long_to_read() -> None:
    sizes = {p: len(p.read_text().splitlines()) for p in (ROOT / "harness").rglob("*.py")}
    assert max(sizes.values()) <= 600, max(sizes, key=sizes.__getitem__)
