"""A bundle written by forecaster 0.1 loads and forecasts the numbers it did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forecaster as fc
from forecaster.store.bundle import load_bundle

ROOT = Path(__file__).resolve().parent.parent
V1 = ROOT / "tests" / "fixtures" / "bundle_v1"


@pytest.fixture
def v1_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # its source path is relative to the repository
    target = tmp_path / "bundle_v1"
    shutil.copytree(V1, target)
    return target


def test_a_version_1_bundle_loads(v1_copy):
    bundle = load_bundle(v1_copy)
    assert bundle.metadata["format_version"] == 1
    assert bundle.window == 10 and bundle.horizon == 1
    assert not (v1_copy / "recent_prices.csv").exists()


def test_a_version_1_bundle_forecasts_the_numbers_it_did(v1_copy):
    expected = pd.read_csv(ROOT / "tests" / "fixtures" / "bundle_v1_forecast.csv")
    got = fc.load(v1_copy).forecast(5)  # from its source CSV: no recent prices
    for column in ("forecast", "lower_80", "upper_80", "lower_95", "upper_95"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-6)
    # the dates are now the exchange's sessions: New Year's Day is skipped
    assert "2021-01-01" in set(expected["date"])
    assert list(got["date"]) == [
        "2020-12-30",
        "2020-12-31",
        "2021-01-04",
        "2021-01-05",
        "2021-01-06",
    ]


def test_a_version_1_bundle_through_predict(v1_copy, tmp_path):
    from forecaster.workflows.runs import run_forecast

    report = run_forecast(str(v1_copy), days=5, out=str(tmp_path))
    written = pd.read_csv(report.csv)
    expected = pd.read_csv(ROOT / "tests" / "fixtures" / "bundle_v1_forecast.csv")
    np.testing.assert_allclose(written["forecast"], expected["forecast"], rtol=1e-6)
    meta = json.loads((v1_copy / "metadata.json").read_text())
    assert meta["format_version"] == 1  # loading rewrote nothing
