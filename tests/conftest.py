from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna_dashboard
import torch
from optuna.artifacts import FileSystemArtifactStore

# Tests are small; one thread keeps them deterministic in speed and leaves the other core
# to parallel tests and worker subprocesses.
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # for notebook_port

CELLS = ("rnn", "lstm", "gru")


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def dashboard_server(url: str, artifacts: Path) -> Iterator[str]:
    """The real optuna-dashboard app on a free loopback port, as `harness dashboard` serves it;
    yields its base URL."""
    app = optuna_dashboard.wsgi(url, artifact_store=FileSystemArtifactStore(str(artifacts)))
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
