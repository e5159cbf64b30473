from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore

from harness.search.storage import open_storage
from harness.training.device import flush_denormals


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--published", action="store_true",
                     help="also run the tests marked `published`: whole competitions against their published "
                          "tables (tens of minutes; `make verify-published`)")  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `published` tests are a verification run of their own, left out (deselected, not
    skipped) unless `--published` asks for them."""
    if config.getoption("--published"):
        return
    kept = [item for item in items if "published" not in item.keywords]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if "published" in item.keywords])
        items[:] = kept


# The test process flushes denormals as the command line's processes do, before any torch
# thread starts, so every thread rounds alike (`harness.training.device.flush_denormals`).
flush_denormals()

# Tests are small; one thread keeps them deterministic in speed and leaves the other core
# to parallel tests and worker subprocesses.
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # for notebook_port

# A user's monthly CSV with a date column (`write_sales`), as a spec's [series] table names it.
SALES_SERIES = """
[series]
source = "file"
path = "sales.csv"
column = "sales"
time_column = "month"
"""


def write_sales(folder: Path, seed: int = 0) -> None:
    """Eight years of monthly sales: a trend, a yearly cycle and noise drawn with `seed`."""
    t = np.arange(96)
    sales = 100 + t + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 2, size=len(t))
    months = pd.date_range("2010-01-01", periods=len(t), freq="MS").strftime("%Y-%m-%d")
    # written beside it and renamed over it: a trial reading it mid-write would see a half file
    pd.DataFrame({"month": months, "sales": sales}).to_csv(folder / "sales.csv.new", index=False)
    os.replace(folder / "sales.csv.new", folder / "sales.csv")


CELLS = ("rnn", "lstm", "gru")
POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[optuna.storages.BaseStorage]:
    """Each storage backend the suite has (Optuna's own storage tests are the pattern)."""
    if request.param == "memory":
        yield optuna.storages.InMemoryStorage()
    elif request.param == "sqlite":
        yield open_storage(f"sqlite:///{tmp_path / 'c.db'}")
    elif POSTGRES_URL is None:
        pytest.skip("set HARNESS_TEST_POSTGRES_URL (.ci/run starts a server) to run PostgreSQL tests")
    else:
        yield open_storage(POSTGRES_URL)


def new_study(storage: optuna.storages.BaseStorage, **kwargs: object) -> optuna.Study:
    """A study of a fresh name (a PostgreSQL server keeps the studies of earlier runs)."""
    return optuna.create_study(study_name=f"test-{uuid.uuid4().hex[:8]}", storage=storage, **kwargs)  # type: ignore[arg-type]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def dashboard_server(url: str, artifacts: Path) -> Iterator[str]:
    """The real optuna-dashboard app on a free loopback port, as `harness dashboard` serves it;
    yields its base URL."""
    import optuna_dashboard  # here, not at the top: the GPU machine runs tests/training/test_cuda.py without it

    app = optuna_dashboard.wsgi(url, artifact_store=FileSystemArtifactStore(str(artifacts)))
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def assert_figures_shown(out: Path) -> None:
    """Every PNG a report wrote into `out` is linked from its report.md, and every image link
    there names a file that exists."""
    import re

    md = (out / "report.md").read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(set(linked)), "figures written but not shown"
    assert all((out / link).is_file() for link in linked), "a link to a missing figure"
