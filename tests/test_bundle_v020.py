"""Bundles written by forecaster 0.2.0 (one series, and a panel) load and forecast
the numbers that version forecast from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forecaster as fc

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
COLUMNS = ("forecast", "median", "lower_80", "upper_80", "lower_95", "upper_95")


@pytest.fixture
def copy_of(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the one-series bundle's source path is relative

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target)
        return target

    return copy


@pytest.mark.parametrize("name", ["bundle_v020", "bundle_v020_panel"])
def test_a_0_2_0_bundle_forecasts_the_numbers_it_did(copy_of, name):
    expected = pd.read_csv(FIXTURES / f"{name}_forecast.csv")
    got = fc.load(copy_of(name)).forecast(5, samples=200, seed=3)
    assert list(got.columns) == list(expected.columns)
    assert list(got["date"]) == list(expected["date"])
    # The point path and every one-step value are exact. Later steps' quantiles
    # come from 200 sampled paths, whose draws changed since 0.2.0 (shared
    # window starts, stratified draws): they agree within that Monte Carlo
    # error (0.8% at most here), far inside what a misread scaler or weight gives.
    keys = got["series"] if "series" in got else np.zeros(len(got))
    first = got["date"] == got.groupby(keys)["date"].transform("min")
    np.testing.assert_allclose(got["forecast"], expected["forecast"], rtol=1e-6)
    for column in COLUMNS:
        np.testing.assert_allclose(
            got.loc[first, column], expected.loc[first, column], rtol=1e-6
        )
        np.testing.assert_allclose(got[column], expected[column], rtol=0.015)


def test_a_0_2_0_panel_bundle_keeps_its_series(copy_of):
    model = fc.load(copy_of("bundle_v020_panel"))
    got = model.forecast(5, samples=200, seed=3)
    assert list(dict.fromkeys(got["series"])) == ["AAA", "BBB"]
    assert set(model.evaluate()["series"]) == {"AAA", "BBB"}


def test_a_0_2_0_bundle_through_predict(copy_of, tmp_path):
    from forecaster.workflows.runs import run_forecast

    report = run_forecast(str(copy_of("bundle_v020")), days=5, out=str(tmp_path))
    written = pd.read_csv(report.csv)
    expected = pd.read_csv(FIXTURES / "bundle_v020_forecast.csv")
    assert len(written) == 5
    np.testing.assert_allclose(written["lower_80"].iloc[0], expected["lower_80"][0])
