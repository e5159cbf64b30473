"""Tables (pandas) and figures (matplotlib) from a storage.

Each table and figure is computed by a function that returns a DataFrame, then drawn or
written by another, so tests check the numbers, not the pixels. The report reads only the
storage; the one exception is the prediction figures, which re-run each cell's best trial
from the config stored on it (`train.run`, the stored seed).
"""

from __future__ import annotations

import html
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch

from harness import evaluate, replicates
from harness.data import make_windows, split_indices
from harness.errors import ConfigError
from harness.signals import make_signal
from harness.spec import Range, StudySpec, spec_from_dict
from harness.train import RunConfig, run

CELL_ORDER = ("rnn", "lstm", "gru")
REFERENCES = ("persistence", "mean", "linear-ar")
TOP_CURVES = 3  # learning curves drawn per cell


@dataclass(frozen=True)
class StudyData:
    name: str
    spec: StudySpec
    trials: pd.DataFrame  # one row per trial, see `trials_frame`
    study: optuna.Study

    @property
    def signal_label(self) -> str:
        s = self.spec.signal
        return s.name + (f" (noise {s.noise_std:g})" if s.noise_std > 0 else "")


TRIAL_COLUMNS = ["number", "state", "value", "cell", "test_mse", "rollout_mse", "horizon", "train_seconds",
                 "seconds_per_epoch", "n_params", "overhead_seconds", "fail_reason", "curve"]  # fmt: skip


def trials_frame(study: optuna.Study, params: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per trial; every column is there even before any trial has reported it."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        config = a.get("config", {})
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.values[0] if t.values else np.nan,
                "cell": t.params.get("cell", config.get("cell")),
                **{k: v for k, v in t.params.items() if k != "cell"},
                **{k: a.get(k, np.nan) for k in ("test_mse", "rollout_mse", "horizon", "train_seconds")},
                **{k: a.get(k, np.nan) for k in ("seconds_per_epoch", "n_params", "overhead_seconds")},
                "fail_reason": a.get("fail_reason"),
                "curve": [t.intermediate_values[k] for k in sorted(t.intermediate_values)],
            }
        )
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=list(dict.fromkeys([*TRIAL_COLUMNS, *params, *frame.columns])))


def load_studies(storage: optuna.storages.BaseStorage, names: list[str] | None = None) -> list[StudyData]:
    available = [s for s in optuna.get_all_study_names(storage=storage) if not s.endswith("/confirm")]
    unknown = [n for n in names or [] if n not in available]
    if unknown:
        raise ConfigError("study", f"unknown study {unknown[0]!r}; allowed: {', '.join(available) or '(none yet)'}")
    out = []
    for name in names or available:
        study = optuna.load_study(study_name=name, storage=storage)
        if "spec" not in study.user_attrs:
            continue  # not made by the harness
        spec = spec_from_dict(study.user_attrs["spec"])
        out.append(StudyData(name, spec, trials_frame(study, tuple(spec.search)), study))
    return out


# ---------------------------------------------------------------- tables
def _count(frame: pd.DataFrame, state: str) -> int:
    return int((frame["state"] == state).sum())


def cell_summary(data: list[StudyData]) -> pd.DataFrame:
    """Table 1: per study (signal) x cell, counts, best and median validation MSE, and the
    best trial's test/free-running metrics, parameters and cost."""
    rows = []
    for d in data:
        for cell in [c for c in CELL_ORDER if c in set(d.trials["cell"])]:
            f = d.trials[d.trials["cell"] == cell]
            done = f[f["state"] == "COMPLETE"]
            row: dict[str, Any] = {"study": d.name, "signal": d.signal_label, "cell": cell}
            row |= {"complete": _count(f, "COMPLETE"), "pruned": _count(f, "PRUNED"), "failed": _count(f, "FAIL")}
            if len(done):
                best = done.loc[done["value"].idxmin()]
                row |= {
                    "best_val_mse": best["value"],
                    "median_val_mse": float(done["value"].median()),
                    "test_mse": best["test_mse"],
                    "rollout_mse": best["rollout_mse"],
                    "horizon": best["horizon"],
                    "trial": int(best["number"]),
                    **{p: best[p] for p in ("window", "hidden_size", "lr") if p in best},
                    "median_s_per_epoch": float(done["seconds_per_epoch"].median()),
                    "train_seconds": best["train_seconds"],
                    "n_params": best["n_params"],
                }
            rows.append(row)
    return pd.DataFrame(rows)


def reference_rows(d: StudyData) -> pd.DataFrame:
    """Table 2's references on the study's own splits; linear AR at its best validation window."""
    spec = d.spec
    y = make_signal(spec.signal)
    window = spec.search.get("window", spec.fixed.get("window"))
    if isinstance(window, Range):
        windows = list(range(int(window.low), int(window.high) + 1))
    else:
        windows = list(getattr(window, "values", [window]))
    fits = {w: evaluate.references(y, split_indices(spec.signal.length, w)) for w in windows}
    best_w = min(windows, key=lambda w: fits[w]["linear-ar"]["val_mse"])
    rows = []
    for name in REFERENCES:
        w = best_w if name == "linear-ar" else 1
        ref = fits[best_w][name] if name == "linear-ar" else fits[windows[0]][name]
        rows.append({"study": d.name, "signal": d.signal_label, "cell": f"ref: {name}", "best_val_mse": ref["val_mse"],
                     "test_mse": ref["test_mse"], "window": w})  # fmt: skip
    return pd.DataFrame(rows)


def comparison_table(data: list[StudyData]) -> pd.DataFrame:
    """Tables 1 and 2 in one: every cell and reference, with `x_floor` = test MSE divided by
    the linear reference's test MSE on the same study."""
    parts = []
    for d in data:
        cells = cell_summary([d])
        refs = reference_rows(d)
        both = pd.concat([cells, refs], ignore_index=True)
        floor = float(refs.loc[refs["cell"] == "ref: linear-ar", "test_mse"].iloc[0])
        both["x_floor"] = both["test_mse"] / floor if floor > 0 else np.inf
        parts.append(both)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def side_by_side(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 3: per cell, each study's best validation MSE, horizon and best window, side by side."""
    cells = summary[summary["cell"].isin(CELL_ORDER)]
    if cells.empty or "best_val_mse" not in cells:
        return pd.DataFrame()
    wide = cells.pivot(index="cell", columns="study", values=["best_val_mse", "horizon", "window"])
    wide.columns = [f"{study}: {metric}" for metric, study in wide.columns]
    order = [c for c in CELL_ORDER if c in wide.index]
    return wide.loc[order].reset_index()


def importances(data: list[StudyData]) -> pd.DataFrame:
    """Table 4: Optuna's default parameter importances (PED-ANOVA in Optuna 5) per study."""
    rows = []
    for d in data:
        if _count(d.trials, "COMPLETE") < 2:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "low target values are important": yes
                found = optuna.importance.get_param_importances(d.study, target=lambda t: t.values[0])
        except (RuntimeError, ValueError):
            continue  # too few distinct values to say anything
        rows += [{"study": d.name, "param": p, "importance": v} for p, v in found.items()]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- figure data
def best_so_far(d: StudyData) -> pd.DataFrame:
    """Figure 3: per cell, the best validation MSE reached by each trial number."""
    done = d.trials[d.trials["state"] == "COMPLETE"].sort_values("number")
    parts = []
    for cell, f in done.groupby("cell"):
        parts.append(pd.DataFrame({"cell": cell, "number": f["number"], "best_so_far": f["value"].cummin()}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["cell", "number", "best_so_far"])


def learning_curves(d: StudyData, top: int = TOP_CURVES) -> pd.DataFrame:
    """Figure 4: validation MSE per epoch of the `top` best complete trials of each cell."""
    done = d.trials[d.trials["state"] == "COMPLETE"]
    rows = []
    for cell, f in done.groupby("cell"):
        for _, t in f.nsmallest(top, "value").iterrows():
            rows += [{"cell": cell, "number": t["number"], "epoch": e, "val_mse": v} for e, v in enumerate(t["curve"])]
    return pd.DataFrame(rows, columns=["cell", "number", "epoch", "val_mse"])


def pareto(d: StudyData) -> pd.DataFrame:
    """Figure 5: validation MSE against train seconds, with the non-dominated trials marked."""
    f = d.trials[(d.trials["state"] == "COMPLETE")][["number", "cell", "value", "train_seconds"]].copy()
    values, seconds = f["value"].to_numpy(), f["train_seconds"].to_numpy()
    f["on_front"] = [
        not np.any((values <= v) & (seconds <= s) & ((values < v) | (seconds < s)))
        for v, s in zip(values, seconds, strict=True)
    ]
    return f.reset_index(drop=True)


def param_scatter(d: StudyData) -> tuple[pd.DataFrame, dict[str, Range]]:
    """Figure 2: validation MSE against each searched numeric parameter, and each one's range
    (drawn as the axis limits, so a best value on an edge shows)."""
    params = {n: p for n, p in d.spec.search.items() if isinstance(p, Range)}
    done = d.trials[d.trials["state"] == "COMPLETE"]
    return done[["number", "cell", "value", *params]].reset_index(drop=True), params


def rerun_device(recorded: str, requested: str = "auto") -> str:
    """Where to re-run a stored trial: the requested device, or with `auto` the class of the
    device it was recorded on (cpu, cuda, mps), since the same config on another class of
    device need not give the same numbers. A class this machine lacks falls back to the CPU."""
    if requested != "auto":
        return requested
    kind = recorded.split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    return kind if available.get(kind, False) else "cpu"


def predictions(d: StudyData, device: str = "auto") -> pd.DataFrame:
    """Figures 1 and 6: each cell's best trial, re-run from its stored config, on the test
    region: truth, one-step and free-running predictions, and the free-running error."""
    best = cell_summary([d])
    if "best_val_mse" not in best:
        return pd.DataFrame()  # no complete trial yet
    frames = []
    for _, row in best.dropna(subset=["best_val_mse"]).iterrows():
        trial = d.study.trials[int(row["trial"])]
        config = RunConfig.from_dict(trial.user_attrs["config"])
        result = run(config, rerun_device(trial.user_attrs.get("device", "cpu"), device))
        assert result.model is not None
        data = make_windows(make_signal(config.signal), config.window, result.model.fc.weight.device,
                            config.train_frac, config.val_frac)  # fmt: skip
        s = data.splits
        truth = data.y[s.test].cpu().numpy()
        one = evaluate.predict(result.model, data, config.protocol, s.test).cpu().numpy()
        free = evaluate.rollout(result.model, data, config.protocol).cpu().numpy()
        frames.append(pd.DataFrame({
            "cell": row["cell"], "t": np.arange(s.test_start_time, s.test_start_time + len(truth)),
            "step": np.arange(1, len(truth) + 1), "truth": truth, "one_step": one, "free_running": free,
            "free_error": np.abs(free - truth),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------- markdown
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(value: Any) -> str:
    """Text from a storage (study names, attrs) shown as text, never as markup or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False)).replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no data)_\n"

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.4g}"
        return md_escape(v)

    header = "| " + " | ".join(md_escape(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "study"


def study_header(d: StudyData) -> dict[str, Any]:
    """What produced a study's numbers: budget, training settings, machine."""
    env = d.study.user_attrs.get("environment", {})
    t = d.spec.training
    return {"study": d.name, "signal": d.signal_label, "protocol": t.protocol, "epochs": t.epochs,
            "trials": len(d.trials), "sampler": d.spec.study.sampler, "pruner": d.spec.study.pruner,
            "cpu": env.get("cpu"), "gpus": ", ".join(env.get("gpus", [])) or "none",
            "torch": env.get("torch_version"), "git": (env.get("git_commit") or "")[:10]}  # fmt: skip


# ---------------------------------------------------------------- the report
def draw_figures(d: StudyData, out: Path, device: str = "auto") -> list[Path]:
    from harness import figures

    stem = slug(d.name)
    title = d.name if d.name == d.signal_label else f"{d.name} ({d.signal_label})"
    paths = []
    preds = predictions(d, device)
    if not preds.empty:
        paths.append(figures.predictions(preds, f"{title}, test region", out / f"{stem}-predictions.png"))
        paths.append(figures.rollout_error(preds, f"{title}: free-running error", out / f"{stem}-rollout-error.png"))
    scatter, ranges = param_scatter(d)
    if not scatter.empty:
        paths.append(figures.param_scatter(scatter, ranges, f"{title}: search space", out / f"{stem}-params.png"))
        paths.append(figures.best_so_far(best_so_far(d), f"{title}: best so far", out / f"{stem}-best-so-far.png"))
        paths.append(figures.learning_curves(learning_curves(d), f"{title}: learning curves",
                                             out / f"{stem}-learning-curves.png"))  # fmt: skip
        paths.append(figures.pareto(pareto(d), f"{title}: error vs cost", out / f"{stem}-pareto.png"))
    return paths


def upload_figures(d: StudyData, paths: list[Path], artifact_dir: Path) -> list[str]:
    """Attach the figures to the study as Optuna artifacts so optuna-dashboard shows them.

    A figure an earlier report uploaded keeps its artifact id and gets the new content, so
    reports never pile up copies. (Optuna 5's `get_all_artifact_meta` cannot read the null
    marker that the dashboard's delete button leaves, so entries are read here directly.)
    """
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifact_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    existing = {}
    for key, value in d.study._storage.get_study_system_attrs(d.study._study_id).items():
        meta = json.loads(value) if key.startswith("artifacts:") and isinstance(value, str) else None
        if isinstance(meta, dict):
            existing[meta["filename"]] = meta["artifact_id"]
    ids = []
    for path in paths:
        if path.name in existing:
            with path.open("rb") as f:
                store.write(existing[path.name], f)
            ids.append(existing[path.name])
        else:
            ids.append(upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=d.study))
    return ids


def write_report(
    storage: optuna.storages.BaseStorage,
    storage_label: str,
    out: Path,
    data: list[StudyData],
    artifact_dir: Path | None = None,
    device: str = "auto",
) -> Path:
    """Write report.md, the CSV tables and the figures of `data` (from `load_studies`)."""
    out.mkdir(parents=True, exist_ok=True)
    comparison = comparison_table(data)
    side = side_by_side(cell_summary(data))
    imp = importances(data)
    reps = replicates.replicate_frame(storage, [d.name for d in data])
    cis, tests = replicates.ci_table(reps), replicates.paired_tests(reps)
    tables = {"comparison": comparison, "side_by_side": side, "importances": imp, "replicates": cis,
              "paired_tests": tests}  # fmt: skip
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)

    lines = ["# Harness report", "", f"Storage: `{md_escape(storage_label)}`", ""]
    lines += ["## Studies", "", markdown_table(pd.DataFrame([study_header(d) for d in data]))]
    lines += ["## Cells and references", "",
              "Best trial per cell (by validation MSE) and the references on the same splits. `x_floor` is the "
              "test MSE divided by the linear autoregression's, which predicts a noiseless sine exactly.", "",
              markdown_table(comparison.drop(columns=["signal"], errors="ignore")), ""]  # fmt: skip
    lines += ["## Side by side", "", markdown_table(side), "", "## Parameter importances", "", markdown_table(imp)]
    if not reps.empty:
        from harness import figures

        lines += ["", "## Replicates (`harness confirm`)", "",
                  "Each cell's best configuration re-trained on the same seeds: mean and 95% confidence "
                  "interval (Student's t, or a bootstrap below 5 runs).", "", markdown_table(cis), "",
                  "Wilcoxon signed-rank test of test MSE, pair by pair on the same seeds; `lower` is the cell "
                  "with the lower median. With 5 seeds the smallest two-sided p-value possible is 0.0625.", "",
                  markdown_table(tests), ""]  # fmt: skip
        figures.replicates(replicates.best_config_only(reps), cis, "test MSE per seed", out / "replicates.png")
        lines += ["![replicates](replicates.png)"]
    for d in data:
        paths = draw_figures(d, out, device)
        if artifact_dir is not None and paths:
            upload_figures(d, paths, artifact_dir)
        lines += ["", f"## {md_escape(d.name)}: figures", ""]
        lines += [f"![{md_escape(p.stem)}]({p.name})" for p in paths] or ["_(no complete trials)_"]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report
