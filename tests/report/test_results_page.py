"""The results page (`harness results`): its header, the benchmarks' tables and speed-ups from
pytest-benchmark JSON, the main job's studies from a real storage, and the sections that say
how to make a source that does not exist yet."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from harness.cli import main
from harness.errors import ConfigError
from harness.report import results_page
from harness.report.markdown import md_escape
from harness.search.storage import open_storage
from harness.training.device import cpu_name

SMOKE = Path(__file__).parents[2] / "studies" / "smoke.toml"
NOW = datetime.datetime(2030, 1, 2, 3, 4, tzinfo=datetime.UTC)
COLLECTION = "tests/benchmarks/test_bench_collection.py"
SEED = "tests/benchmarks/test_bench_seed.py"
PLAIN = "tests/benchmarks/test_bench_plain.py"


def record(
    fullname: str, params: dict[str, Any], median: float, group: str | None = None, **extra_info: Any
) -> dict[str, Any]:
    """One benchmark as pytest-benchmark 5 writes it (the shape read from a real
    `--benchmark-autosave` file); `fullname` without the parameters."""
    suffix = f"[{'-'.join(map(str, params.values()))}]" if params else ""
    stats = {"min": median * 0.9, "max": median * 1.2, "mean": median, "stddev": median * 0.1, "rounds": 3,
             "median": median, "iqr": median * 0.05, "q1": median * 0.97, "q3": median * 1.02, "iqr_outliers": 0,
             "stddev_outliers": 1, "outliers": "1;0", "ld15iqr": median * 0.9, "hd15iqr": median * 1.2,
             "ops": 1 / median, "total": 3 * median, "iterations": 1}  # fmt: skip
    options = {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5, "max_time": 1.0, "min_time": 5e-06,
               "precision": None, "confidence": None, "warmup": False}  # fmt: skip
    return {"group": group, "name": fullname.split("::")[1] + suffix, "fullname": fullname + suffix,
            "params": params or None, "param": "-".join(map(str, params.values())) or None,
            "extra_info": extra_info, "options": options, "stats": stats}  # fmt: skip


def write_run(folder: Path, number: int, when: datetime.datetime, benchmarks: list[dict[str, Any]]) -> Path:
    """A session's file where `--benchmark-storage=folder --benchmark-autosave` puts it."""
    commit = f"{number:x}" * 40
    machine_info = {"node": "vm", "processor": "", "machine": "x86_64", "python_implementation": "CPython",
                    "python_version": "3.11.7", "release": "6.1", "system": "Linux",
                    "cpu": {"arch": "X86_64", "bits": 64, "count": 16, "brand_raw": "Test CPU 9000",
                            "vendor_id_raw": "AuthenticAMD"}}  # fmt: skip
    data = {"machine_info": machine_info,
            "commit_info": {"id": commit, "time": when.isoformat(), "author_time": when.isoformat(), "dirty": False,
                            "project": "main", "branch": "main"},
            "benchmarks": benchmarks, "datetime": when.isoformat(), "version": "5.3.1"}  # fmt: skip
    path = folder / "Linux-CPython-3.11-64bit" / f"{number:04d}_{commit}_{when:%Y%m%d_%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4))
    return path


def section(page: str, heading: str) -> str:
    """The text under `heading` up to the next heading of its level or above."""
    level = heading.split(" ")[0]
    rest = page.split(heading + "\n", 1)[1]
    ends = [rest.find("\n" + "#" * n + " ") for n in range(1, len(level) + 1)]
    ends = [end for end in ends if end >= 0]
    return rest[: min(ends)] if ends else rest


def rows(text: str) -> list[list[str]]:
    """The body rows of the markdown tables in `text`, as cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.fixture(scope="module")
def smoke_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'smoke.db'}"
    assert main(["launch", str(SMOKE), "--storage", url, "--trials", "2", "--no-progress"]) == 0
    return url


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    """`make bench`'s folder after two sessions: an older full one and a newer one that timed
    the seed benchmark's harness arm alone (as `pytest -k` does) and the plain benchmark again."""
    folder = tmp_path / "benchmarks"
    local = f"{COLLECTION}::test_a_local_trial_over_m3_monthly_against_the_plain_script"
    case, seed_group = {"cell": "rnn", "signal": "short-period", "window": 5}, "seed-rnn-short-period-W5"
    plain, plain_group = f"{PLAIN}::test_trials_per_hour_against_a_plain_script", "plain-short_period-gru"
    arm = {"study": "short_period", "cell": "gru"}
    older = [
        # group: all 1,428 series in 60 s; plain: 30 series in 12 s, so 571.2 s for all: 9.52 times the group's
        record(local, {"how": "group"}, 60.0, series=1428, test_smape=14.5),
        record(local, {"how": "plain"}, 12.0, series=30, scaled_to=1428),
        record(f"{SEED}::test_notebook_loop", case, 2.0, group=seed_group),
        record(f"{SEED}::test_harness_seed_protocol", case, 0.25, group=seed_group),
        # trials per hour, not seconds: the harness fills 3,000 an hour where the plain script fills 1,200
        record(plain, arm | {"how": "plain"}, 30.0, group=plain_group, trials_per_hour=1200.0),
        record(plain, arm | {"how": "harness"}, 5.0, group=plain_group, trials_per_hour=3000.0),
    ]
    write_run(folder, 1, NOW - datetime.timedelta(days=2), older)
    newer = [
        record(f"{SEED}::test_harness_seed_protocol", case, 0.5, group=seed_group),
        record(plain, arm | {"how": "plain"}, 36.0, group=plain_group, trials_per_hour=1000.0),
        record(plain, arm | {"how": "harness"}, 5.0, group=plain_group, trials_per_hour=3000.0),
    ]
    write_run(folder, 2, NOW - datetime.timedelta(days=1), newer)
    return folder


def test_the_header_names_the_machine_torch_the_date_and_the_commit(tmp_path: Path) -> None:
    page = results_page.results_page(None, None, now=NOW)
    head = section(page, "# Results").split("\n## ")[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent, check=False).stdout.strip() or "unknown"  # fmt: skip
    assert f"- machine: `{cpu_name()}, {os.cpu_count()} cores`" in head
    assert f"- torch: `{torch.__version__}`" in head
    assert "- date: `2030-01-02 03:04 UTC`" in head
    assert f"- commit: `{commit}" in head
    assert results_page.git_commit(tmp_path) == "unknown"  # outside a checkout


def test_benchmark_tables_take_each_benchmark_from_its_newest_run(bench_dir: Path) -> None:
    page = results_page.results_page(bench_dir, None, now=NOW)
    runs = section(page, "## Benchmarks")
    assert "1. `" in runs and "2. `" in runs and "Test CPU 9000, 16 cores" in runs
    assert "commit `2222222222`" in runs
    seed = rows(section(page, "### `test_bench_seed.py`"))
    assert seed[0] == ["test", "group", "median s", "IQR s", "rounds", "extra\\_info", "run"]
    by_test = {row[0]: row for row in seed[1:3]}
    # the harness arm from run 2 (0.5 s), the loop from run 1, which alone timed it
    assert by_test["test\\_harness\\_seed\\_protocol\\[rnn-short-period-5\\]"][2:] == ["0.5", "0.025", "3", "", "2"]
    assert by_test["test\\_notebook\\_loop\\[rnn-short-period-5\\]"][2:] == ["2", "0.1", "3", "", "1"]
    collection = rows(section(page, "### `test_bench_collection.py`"))
    assert ["scaled\\_to=1428" in row[5] for row in collection[1:3]] == [False, True]
    assert "test\\_smape=14.5" in collection[1][5]


def test_speed_ups_read_paired_arms_from_one_run(bench_dir: Path) -> None:
    page = results_page.results_page(bench_dir, None, now=NOW)
    collection = rows(section(page, "### `test_bench_collection.py`"))
    assert collection[-1] == ["", "", "group", "plain", "9.52", "1"]  # 12 s * 1428 / 30 / 60 s
    plain = rows(section(page, "### `test_bench_plain.py`"))
    # from run 2, the newest that timed both arms (run 1 said 2.5)
    assert plain[-1] == ["plain-short\\_period-gru", "cell=gru, study=short\\_period", "harness", "plain", "3", "2"]
    # run 2 timed the harness arm alone: its speed-up is run 1's (2 s / 0.25 s), never run 1's loop over run 2's arm
    seed = rows(section(page, "### `test_bench_seed.py`"))
    assert seed[-1][2:] == ["test\\_harness\\_seed\\_protocol", "test\\_notebook\\_loop", "8", "1"]


@pytest.mark.slow  # a real launch of the smoke study
def test_the_studies_section_from_a_real_storage(smoke_url: str) -> None:
    storage = open_storage(smoke_url, must_exist=True)
    page = results_page.results_page(None, storage, smoke_url, now=NOW)
    study = optuna.load_study(study_name="smoke", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2
    best = min(t.value for t in complete if t.value is not None)
    wall = max(t.datetime_complete for t in complete) - min(t.datetime_start for t in complete)
    table = rows(section(page, "## The main job's studies"))
    took = sorted((t.datetime_complete - t.datetime_start).total_seconds() for t in complete)
    assert table[1] == ["smoke", "2", "2", "0", "0", "val\\_mse", f"{best:.4g}", f"{wall.total_seconds():.4g}",
                        f"{(took[0] + took[1]) / 2:.4g}"]  # fmt: skip
    env = rows(section(page, "### Where they ran"))
    assert env[0] == ["cpu", "gpus", "torch", "optuna", "python", "harness", "commit", "studies"]
    recorded = study.user_attrs["environment"]
    assert recorded["cpu"] == cpu_name() and recorded["torch_version"] == torch.__version__
    keys = ["cpu", "gpus", "torch_version", "optuna_version", "python_version", "harness_version"]
    shown = [md_escape(", ".join(recorded["gpus"]) or "none" if k == "gpus" else recorded[k]) for k in keys]
    assert env[1] == [*shown, (recorded["git_commit"] or "")[:10], "smoke"]
    assert f"From `{smoke_url}`" in page


def test_missing_sources_are_sections_saying_how_to_make_them(tmp_path: Path) -> None:
    page = results_page.results_page(tmp_path / "no-benchmarks", None, "sqlite:///results/harness.db", now=NOW)
    bench, studies = section(page, "## Benchmarks"), section(page, "## The main job's studies")
    assert "No pytest-benchmark JSON yet" in bench and "`make bench`" in bench and "| test |" not in bench
    assert "No database yet (`sqlite:///results/harness.db`)" in studies and "`make run`" in studies
    empty = open_storage(f"sqlite:///{tmp_path / 'empty.db'}")
    assert "holds no study yet: `make run`" in results_page.results_page(None, empty, "x", now=NOW)


def test_a_file_that_is_not_benchmark_json_is_a_mistake_naming_it(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "0001_x.json").write_text(json.dumps({"benchmarks": [{"name": "t"}]}))
    with pytest.raises(ConfigError, match=r"0001_x.json is not pytest-benchmark JSON") as e:
        results_page.results_page(tmp_path / "b", None)
    assert e.value.key == "benchmarks"


def test_the_command_writes_the_page_and_makes_its_folder(
    tmp_path: Path, bench_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs" / "deeper" / "results.md"
    missing_db = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["results", "--storage", missing_db, "--benchmarks", str(bench_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"results: {out}"
    page = out.read_text()
    assert "| group | plain | 9.52 | 1 |" in page and "No database yet" in page
    assert not (tmp_path / "none.db").exists()  # reading the page creates no database
    assert [p.name for p in out.parent.iterdir()] == ["results.md"]  # no partial file left


@pytest.mark.parametrize(
    "flags,line",
    [
        (["--out", "{tmp}/file.txt/results.md"], "harness results: --out: cannot write {tmp}/file.txt/results.md"),
        (["--benchmarks", "{tmp}/file.txt"], "harness results: --benchmarks: {tmp}/file.txt is a file, not a folder"),
        (["--storage", "results.db"], "harness results: --storage: not a storage URL: 'results.db'"),
    ],
)
def test_a_mistake_is_one_line_naming_the_flag(
    flags: list[str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    base = {"--out": str(tmp_path / "results.md"), "--benchmarks": str(tmp_path / "none"),
            "--storage": f"sqlite:///{tmp_path / 'none.db'}"}  # fmt: skip
    given = dict(zip(flags[::2], [f.format(tmp=tmp_path) for f in flags[1::2]], strict=True))
    argv = ["results", *(x for flag, value in (base | given).items() for x in (flag, value))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line.format(tmp=tmp_path))
