"""Panels through train.py and predict.py, as a user runs them (generated prices).

The OHLCV files here are generated random walks (tests/panel_fakes.py); the
long-format run uses the real sample panel shipped in data/panel_long.csv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import TINY_FLAGS
from panel_fakes import random_walk_ohlcv

from forecaster.workflows.runs import train_report

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def write_panel(folder: Path) -> list[str]:
    folder.mkdir()
    paths = []
    for k, name in enumerate(["AAA", "BBB", "CCC"]):
        path = folder / f"{name}.csv"
        random_walk_ohlcv(260, seed=k).to_csv(path, date_format="%Y-%m-%d")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def panel_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("panel")
    paths = write_panel(root / "prices")
    out = root / "bundle"
    done = run(
        "train.py",
        "--csv",
        *paths,
        "--features",
        "close,range,volume",
        "--horizon",
        "2",
        *TINY_FLAGS,
        "--out",
        str(out),
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def test_train_prints_one_row_per_series_and_the_panel(panel_bundle):
    out, stdout = panel_bundle
    for name in ("AAA", "BBB", "CCC"):
        assert any(line.strip().startswith(name) for line in stdout.splitlines())
    assert "panel of 3: mean ratio to naive" in stdout
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["panel"]["series"] == ["AAA", "BBB", "CCC"]
    assert meta["panel"]["features"] == ["close", "range", "volume"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["series"]) == {"AAA", "BBB", "CCC"}


def test_predict_writes_the_long_forecast_and_the_grid(panel_bundle, tmp_path):
    out, _ = panel_bundle
    done = run(
        "predict.py",
        "--model",
        str(out),
        "--days",
        "2",
        "--series",
        "BBB",
        "CCC",
        "--out",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    frame = pd.read_csv(tmp_path / "forecast.csv")
    assert list(frame["series"]) == ["BBB", "BBB", "CCC", "CCC"]
    assert {"date", "forecast", "lower_95", "upper_95"} <= set(frame.columns)
    assert (tmp_path / "forecast.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_past_the_horizon_is_a_one_line_error(panel_bundle, tmp_path):
    out, _ = panel_bundle
    done = run(
        "predict.py",
        "--model",
        str(out),
        "--days",
        "5",
        "--out",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: --days must be at most the model's horizon 2")
    assert not (tmp_path / "forecast.csv").exists()


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_one_bad_file_is_named_or_skipped(tmp_path):
    paths = write_panel(tmp_path / "prices")
    Path(paths[1]).write_text("Date,Close\n2020-01-01,abc\n")
    refused = run(
        "train.py", "--csv-dir", str(tmp_path / "prices"), *TINY_FLAGS, cwd=tmp_path
    )
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "BBB.csv" in line
    assert not (tmp_path / "models").exists()


def test_predict_a_series_the_panel_never_saw(panel_bundle, tmp_path):
    out, _ = panel_bundle
    path = tmp_path / "DDD.csv"
    random_walk_ohlcv(150, seed=7).to_csv(path, date_format="%Y-%m-%d")
    done = run(
        "predict.py",
        "--model",
        str(out),
        "--days",
        "2",
        "--csv",
        str(path),
        "--out",
        str(tmp_path / "new"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # 150 days less the 20 that the volume feature needs to warm up
    said = "DDD is not a series of this panel (AAA, BBB, CCC): it is scaled by its "
    assert said + "own min and max over its last 130 days" in done.stderr
    frame = pd.read_csv(tmp_path / "new" / "forecast.csv")
    assert list(frame["series"]) == ["DDD", "DDD"]
    assert (
        frame["forecast"].between(0.5 * frame["lower_95"], 2 * frame["upper_95"]).all()
    )


def test_a_panel_of_one_prints_its_series_whole_table(tmp_path):
    """One file with input features is a panel of one: train.py shows that
    series' whole table (its distribution beside the anchors), as the same
    file without features does, not the panel's one-row summary."""
    results = {"AAA": {"table": "AAA's table, anchors and all"}}
    model = SimpleNamespace(
        is_panel=True,
        evaluation_={"series": results, "table": None},
        metrics_={"panel": {}},
        notes_=[],
    )
    assert train_report(tmp_path, model).table == "AAA's table, anchors and all"
