"""The model's test-day distribution beside the baselines, as evaluate reports it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_prices, tiny_settings

from forecaster.engines import KerasEngine
from forecaster.evaluation import evaluate
from forecaster.report import format_distribution
from forecaster.training import fit_model
from forecaster.windows import prepare


def _evaluated(loss: str, representation: str = "log-delta"):
    settings = tiny_settings(model__loss=loss, prep__representation=representation)
    prepared = prepare(make_prices(400, seed=2), settings.prep)
    model = fit_model(prepared, settings).model
    engine = KerasEngine(model, representation, settings.prep.window, 1)
    return evaluate(engine, prepared), prepared


@pytest.fixture(scope="module")
def student_t():
    return _evaluated("student-t")


def test_every_method_is_scored_on_the_same_test_days(student_t):
    result, prepared = student_t
    distribution = result["metrics"]["distribution"]
    assert distribution["main"] == "model"
    assert list(distribution["methods"]) == [
        "model",
        "conformal",
        "rw20",
        "ewma",
        "garch_t",
    ]
    model = distribution["methods"]["model"]
    assert 0 < model["crps"] < model["interval_score_0.8"]
    assert np.isfinite(model["log_score"])
    assert (
        distribution["methods"]["conformal"]["crps"]
        != distribution["methods"]["conformal"]["crps"]
    )  # NaN: bands have no closed-form CRPS
    assert sum(distribution["pit_counts"]) == prepared.split.n - prepared.split.n_train
    json.dumps(result["metrics"])  # metrics.json can hold it


def test_dm_tests_compare_model_with_garch_and_point_with_naive(student_t):
    tests = student_t[0]["metrics"]["distribution"]["tests"]
    assert set(tests) == {
        "point_vs_naive_squared_error",
        "model_vs_garch_crps",
        "model_vs_garch_interval_score_0.8",
        "model_vs_garch_interval_score_0.95",
    }
    for test in tests.values():
        assert 0 <= test["p_value"] <= 1
        assert ("significant" in test["verdict"]) and "DM p" in test["verdict"]


def test_test_predictions_carry_nested_bounds_and_median(student_t):
    frame = student_t[0]["predictions"]
    ordered = frame[["lower_95", "lower_80", "median", "upper_80", "upper_95"]]
    assert (np.diff(ordered.to_numpy(), axis=1) > 0).all()
    # a Student-t centred on the point forecast: its median is that forecast
    np.testing.assert_allclose(frame["median"], frame["predicted"], rtol=1e-6)


def test_direction_of_the_distribution_is_scored_against_the_base_rate(student_t):
    scores = student_t[0]["metrics"]["distribution"]["direction"]
    assert 0 < scores["brier"] < 1 and 0 < scores["base_rate"] < 1
    assert scores["days"] > 0


def test_table_prints_every_method_and_the_verdicts(student_t):
    text = format_distribution(student_t[0]["metrics"]["distribution"])
    for label in ("model", "conformal", "RW 20-day", "RW EWMA", "GARCH-t"):
        assert f"\n{label}" in text
    assert "model/GARCH" in text and "DM model vs garch crps" in text


def test_a_point_model_is_scored_by_its_conformal_bands():
    result, _ = _evaluated("mse", "delta")
    distribution = result["metrics"]["distribution"]
    assert (
        distribution["main"] == "conformal" and "model" not in distribution["methods"]
    )
    assert "direction" not in distribution  # bands give no P(up)
    frame = result["predictions"]
    np.testing.assert_allclose(frame["median"], frame["predicted"])
    assert (frame["upper_95"] > frame["upper_80"]).all()
