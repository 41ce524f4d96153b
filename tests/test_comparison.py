"""The model's test-day distribution beside the baselines, as evaluate reports it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_prices, tiny_settings

from forecaster.evaluate import baselines
from forecaster.evaluate.evaluation import evaluate
from forecaster.evaluate.panel import evaluation_jit
from forecaster.model.keras_engine import KerasEngine
from forecaster.prep.windows import prepare
from forecaster.report.tables import combination_line, format_distribution
from forecaster.train.fit import fit_model


def _engine(loss: str, representation: str = "log-delta"):
    settings = tiny_settings(model__loss=loss, prep__representation=representation)
    prepared = prepare(make_prices(400, seed=2), settings.prep)
    model = fit_model(prepared, settings).model
    args = (representation, settings.prep.window, 1)
    jit = evaluation_jit([prepared])  # as Forecaster.fit evaluates this test part
    return KerasEngine(model, *args, jit_compile=jit), prepared


def _evaluated(loss: str, representation: str = "log-delta"):
    engine, prepared = _engine(loss, representation)
    return evaluate(engine, prepared), prepared


@pytest.fixture(scope="module")
def trained():
    return _engine("student-t")


@pytest.fixture(scope="module")
def student_t(trained):
    engine, prepared = trained
    return evaluate(engine, prepared), prepared


def test_every_method_is_scored_on_the_same_test_days(student_t):
    result, prepared = student_t
    distribution = result["metrics"]["distribution"]
    preferred = distribution["combination"]["preferred"]
    assert distribution["main"] == ("combined" if preferred else "model")
    assert distribution["combination"]["chosen_on"] == "validation"
    assert list(distribution["methods"]) == [
        "model",
        "model_cqr",
        "combined",
        "conformal",
        "rw20",
        "ewma",
        "garch_t",
        "gjr_skewt",
        # no egarch_t: on this generated walk (no volatility clustering) its fit
        # wanders off (0.0009% one day against an sd of 1.02%): left out
        "best_refit",  # no High/Low here: the range anchors are left out
    ]
    model = distribution["methods"]["model"]
    assert 0 < model["crps"] < model["interval_score_0.8"]
    assert np.isfinite(model["log_score"])
    # bands have no closed-form CRPS: None, so metrics.json stays strict JSON
    assert distribution["methods"]["conformal"]["crps"] is None
    assert sum(distribution["pit_counts"]) == prepared.split.n - prepared.split.n_train
    json.dumps(result["metrics"], allow_nan=False)  # strict JSON
    anchors = distribution["anchors"]
    assert anchors["refit_family"] in ("garch_t", "gjr_skewt", "egarch_t")
    assert set(anchors["dm"]) == {
        "rw20",
        "ewma",
        "garch_t",
        "gjr_skewt",
        "best_refit",
    }
    assert set(anchors["dm"]["garch_t"]) == {
        "crps",
        "interval_score_0.8",
        "interval_score_0.95",
        "log_score",
    }
    assert set(anchors["var"]["model"]) == {"0.01", "0.05"}
    assert anchors["mcs"]["loss"] == "crps" and "model" in anchors["mcs"]["p_values"]
    printed = format_distribution(distribution)
    assert "model against each anchor" in printed and "VaR backtests" in printed


def test_a_baseline_registered_in_one_place_is_scored_and_printed(trained):
    engine, prepared = trained

    @baselines.baseline("rw5", "RW 5-day")
    def five_day(days):
        return baselines.rolling_normal(days.prices, days.n_train, days=5)

    try:
        distribution = evaluate(engine, prepared)["metrics"]["distribution"]
    finally:
        baselines.unregister("rw5")
    assert list(distribution["methods"])[-1] == "rw5"
    row = distribution["methods"]["rw5"]
    assert row["label"] == "RW 5-day" and row["crps"] > 0
    assert "\nRW 5-day" in format_distribution(distribution)
    assert "rw5" not in baselines.REGISTRY


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


def test_cqr_is_measured_for_every_head_and_applied_on_request():
    result, prepared = _evaluated("student-t")  # the fixture's model, retrained
    cqr = result["intervals"]["recursive"]["cqr"]
    assert cqr["method"] == "cqr" and cqr["applied"] is False
    assert cqr["validation_days"] == prepared.split.n_val
    distribution = result["metrics"]["distribution"]
    assert distribution["main"] == "model" and "model_cqr" in distribution["methods"]


def test_cqr_bands_cover_their_level_on_the_validation_days():
    from forecaster.evaluate.calibration import fit_cqr
    from forecaster.model.heads import quantile_function
    from forecaster.prep.windows import encode_targets, window_view

    settings = tiny_settings(model__loss="normal", prep__representation="log-delta")
    prepared = prepare(make_prices(400, seed=5), settings.prep)
    engine = KerasEngine(fit_model(prepared, settings).model, "log-delta", 10, 1)
    cqr = fit_cqr(engine, prepared, applied=True)
    start, stop = prepared.split.val_targets
    contexts = window_view(prepared.scaled, 10, (start, stop))
    moves = encode_targets(contexts, prepared.scaled[start:stop, None], "log-delta")
    outputs = engine.predict_head(contexts)
    for level in (0.8, 0.95):
        ends = quantile_function(
            outputs, engine.head, [(1 - level) / 2, (1 + level) / 2]
        )
        q = cqr["widen"][f"{level:g}"]
        inside = (moves[:, 0] >= ends[:, 0, 0] - q) & (moves[:, 0] <= ends[:, 0, 1] + q)
        assert inside.mean() >= level  # the conformal rank guarantees it in sample
        # and no smaller correction would: one step less leaves a day out
        tighter = (moves[:, 0] > ends[:, 0, 0] - q) & (moves[:, 0] < ends[:, 0, 1] + q)
        assert tighter.mean() < inside.mean() or q == 0


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_calibrated_evaluation_reports_the_corrected_bands():
    settings = tiny_settings(model__loss="student-t", train__calibrate=True)
    prepared = prepare(make_prices(400, seed=2), settings.prep)
    model = fit_model(prepared, settings).model
    engine = KerasEngine(model, "log-delta", 10, 1, evaluation_jit([prepared]))
    result = evaluate(engine, prepared, calibrate=True)
    distribution = result["metrics"]["distribution"]
    assert distribution["main"] == "model_cqr"
    assert result["intervals"]["recursive"]["cqr"]["applied"] is True
    corrected = distribution["methods"]["model_cqr"]
    assert corrected["log_score"] is None  # bands at five levels: no density
    frame = result["predictions"]
    ordered = frame[["lower_95", "lower_80", "median", "upper_80", "upper_95"]]
    assert (np.diff(ordered.to_numpy(), axis=1) >= 0).all()


def test_the_pool_row_says_its_anchor_and_the_network_weight():
    record = {"weight_model": 0.3, "anchor_label": "log-HAR-t"}
    line = combination_line(record, "combined")
    assert "30% the network's and 70% log-HAR-t's" in line
    assert "default's distribution" in line
    alone = combination_line(record | {"weight_model": 0.0}, "model")
    assert "weight 0, so it is log-HAR-t itself" in alone
    assert "default" not in alone
