"""Trained weights as Optuna trial artifacts: every complete trial keeps its model.

A checkpoint is a plain `torch.save` of a dict: the recurrent layer's shape (`cell`,
`input_size`, `hidden_size`, `num_layers`), the `state_dict` of the best-epoch weights (the
ones the trial's metrics came from; keys `rnn.*` are torch's `nn.RNN`/`nn.LSTM`/`nn.GRU`
with `batch_first=True`, `fc.*` a `nn.Linear(hidden_size, 1)` on its outputs) and the
trial's full `config`. It loads with `torch.load(path, weights_only=True)` and plain torch,
without the harness. Files go to Optuna's file-system artifact store (`results/artifacts/` by
default), which `harness dashboard` serves, so a trial's weights can be downloaded there too.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact

from harness.errors import ConfigError
from harness.search.optuna_internals import trial_artifacts
from harness.search.storage import default_artifacts, open_storage
from harness.training.models import RecurrentRegressor
from harness.training.train import RunConfig

FILENAME = "weights.pt"
FORMAT = "harness-weights/1"


def checkpoint(model: RecurrentRegressor, config: RunConfig) -> bytes:
    """The checkpoint of a trained model, as bytes (they cross process boundaries)."""
    rnn = model.rnn
    data = {
        "format": FORMAT,
        "cell": model.cell,
        "input_size": rnn.input_size,
        "hidden_size": rnn.hidden_size,
        "num_layers": rnn.num_layers,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict(),
    }
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


class WeightsMissing(ConfigError):
    """A trial recorded weights, but the artifact folder given does not hold them."""


def check_artifacts(folder: str | Path) -> None:
    """Refuse an artifact folder that cannot be written, before anything runs, and without
    creating it: the folder, or the nearest folder above it that exists, takes a test file."""
    path = Path(folder)
    existing = next((p for p in (path, *path.absolute().parents) if p.exists()), Path("/"))
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        tempfile.TemporaryFile(dir=existing).close()  # a real write: root passes os.access on read-only mounts
    except OSError as e:
        raise ConfigError("artifacts", f"cannot write to folder {path} ({e.strerror})") from None


def artifact_store(folder: str | Path) -> FileSystemArtifactStore:
    """The artifact store in `folder`, created if need be (check it first with `check_artifacts`)."""
    check_artifacts(folder)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("artifacts", f"cannot create folder {folder} ({e.strerror})") from None
    return FileSystemArtifactStore(str(folder))


def upload(
    store: FileSystemArtifactStore,
    trial: optuna.Trial | optuna.trial.FrozenTrial,
    blob: bytes,
    storage: optuna.storages.BaseStorage | None = None,
) -> str:
    """Attach a checkpoint to a trial (a running one: Optuna refuses finished trials, except
    a FrozenTrial added with `add_trial`, given its storage). Returns the artifact id."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, FILENAME)
        with open(path, "wb") as f:
            f.write(blob)
        return upload_artifact(artifact_store=store, file_path=path, study_or_trial=trial, storage=storage)


def load_checkpoint(trial: optuna.trial.FrozenTrial, artifacts: str | Path) -> dict[str, Any] | None:
    """The trial's checkpoint, or None if it kept none (pruned, failed, or recorded before
    trials kept their weights)."""
    ids = [meta["artifact_id"] for meta in trial_artifacts(trial) if meta.get("filename") == FILENAME]
    if not ids:
        return None
    store = FileSystemArtifactStore(str(artifacts))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, FILENAME)
        try:
            download_artifact(artifact_store=store, file_path=path, artifact_id=ids[-1])
        except Exception as e:  # the store's "not found" differs by backend
            raise WeightsMissing(
                "artifacts",
                f"trial {trial.number}'s weights are not in {artifacts} ({type(e).__name__}); "
                "give the artifact folder the study was launched with",
            ) from None
        return dict(torch.load(path, weights_only=True))


def model_from(data: dict[str, Any]) -> RecurrentRegressor:
    """A model holding a checkpoint's weights, on the CPU, in eval mode."""
    model = RecurrentRegressor(data["cell"], data["input_size"], data["hidden_size"], data["num_layers"])
    model.to(next(iter(data["state_dict"].values())).dtype)  # float64 for fp64 runs
    model.load_state_dict(data["state_dict"])
    return model.eval()


def load_model(
    storage: optuna.storages.BaseStorage | str,
    study: str,
    trial: int,
    artifacts: str | Path | None = None,
) -> RecurrentRegressor:
    """The trained model of trial number `trial` of `study` (a storage object or URL); the
    artifact folder defaults as on the command line (`artifacts/` beside a SQLite file)."""
    if artifacts is None:
        url = storage if isinstance(storage, str) else getattr(storage, "url", None)
        artifacts = default_artifacts(url) if url else "results/artifacts"
    backend = _backend(storage)
    frozen = find_trial(backend, study, trial)
    data = load_checkpoint(frozen, artifacts)
    if data is None:
        raise ConfigError("trial", f"trial {trial} of {study!r} kept no weights ({frozen.state.name}); "
                                   "only complete trials run since weights were kept have them")  # fmt: skip
    return model_from(data)


def _backend(storage: optuna.storages.BaseStorage | str) -> optuna.storages.BaseStorage:
    if isinstance(storage, str):
        return open_storage(storage, must_exist=True)
    return storage


def find_trial(storage: optuna.storages.BaseStorage | str, study: str, number: int) -> optuna.trial.FrozenTrial:
    backend = _backend(storage)
    names = optuna.get_all_study_names(storage=backend)
    if study not in names:
        raise ConfigError("study", f"unknown study {study!r}; allowed: {', '.join(names) or '(none yet)'}")
    trials = optuna.load_study(study_name=study, storage=backend).get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise ConfigError("trial", f"study {study!r} has no trial {number}; allowed: 0..{len(trials) - 1}")
    return trials[number]
