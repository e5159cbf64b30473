"""Scale-out: parallel workers on SQLite while readers watch, and separate launches sharing a
real PostgreSQL server as separate machines would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import optuna_dashboard
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from harness.cli import main
from harness.search.storage import open_storage

pytestmark = pytest.mark.slow  # worker processes, dashboards and PostgreSQL beside real launches

ROOT = Path(__file__).parents[2]
POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
FAST = ["--set", "training.epochs=1", "--set", "search.hidden_size={low=4, high=8}", "--no-progress"]


def launch(url: str, trials: int, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "harness", "launch", "studies/smoke.toml", "--storage", url, "--trials", str(trials)]
    return subprocess.Popen([*cmd, *FAST, *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_exact(url: str, name: str, n: int) -> list[optuna.trial.FrozenTrial]:
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == n
    assert not [t for t in trials if t.state != TrialState.COMPLETE], [t.user_attrs.get("fail_reason") for t in trials]
    return trials


def test_four_sqlite_workers_while_report_and_dashboard_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    proc = launch(url, 24, "--workers", "4")

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    while not (tmp_path / "h.db").exists() or "smoke" not in optuna.get_all_study_names(open_storage(url)):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(url), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reads = 0
    try:
        while proc.poll() is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/studies", timeout=60) as r:
                assert json.load(r)["study_summaries"][0]["study_name"] == "smoke"
            if reads % 5 == 0:
                assert main(["report", "--storage", url, "--out", str(tmp_path / "r"), "--device", "cpu"]) == 0
            reads += 1
            time.sleep(0.3)
    finally:
        server.shutdown()
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert reads >= 3
    assert "locked" not in err
    assert_exact(url, "smoke", 24)


def test_dashboard_binds_loopback_unless_told(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["launch", "studies/smoke.toml", "--storage", url, "--trials", "1", "--no-progress"]) == 0
    for extra, expected in (([], "0100007F"), (["--host", "0.0.0.0"], "00000000")):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "harness", "dashboard", "--storage", url, "--port", str(port), *extra]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline, bound = time.time() + 60, None
            while bound is None and time.time() < deadline:
                bound = listening_address(port)
                time.sleep(0.2)
            assert bound == expected
        finally:
            proc.terminate()
            proc.wait()


def listening_address(port: int) -> str | None:
    """The local address (hex, as the kernel writes it) of the socket listening on `port`."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                return address
    return None


requires_postgres = pytest.mark.skipif(
    POSTGRES_URL is None, reason="set HARNESS_TEST_POSTGRES_URL (.ci/run starts a server) to run PostgreSQL tests"
)


@requires_postgres
def test_two_machines_fill_one_postgres_study_exactly(tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    # A new, empty database: both machines also race to create Optuna's tables.
    database = f"harness_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    engine.dispose()
    url = make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    artifacts = ["--artifacts", str(tmp_path / "a")]  # shared like the database, as the guide says
    machines = [launch(url, 8, "--set", f"study.name={json.dumps(name)}", *artifacts) for _ in range(2)]
    outputs = [m.communicate(timeout=600) for m in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs
    trials = assert_exact(url, name, 8)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params)
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "report", "--storage", url, "--study", name, "--out", str(out),
         "--artifacts", str(tmp_path / "a"), "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = (out / "report.md").read_text()
    assert f"| {name} | " in text
    secret = make_url(POSTGRES_URL).password
    assert secret and all(secret not in text for o in outputs for text in o)
    assert secret not in proc.stdout + proc.stderr + (out / "report.md").read_text()
