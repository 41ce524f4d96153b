"""VaR backtests (hand-computed), the MCS, and the anchor comparison's record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from forecaster.errors import ForecasterError
from forecaster.evaluate import risk_tests
from forecaster.evaluate.predictive import LocationScale, QuantileBands


def test_kupiec_by_hand():
    # 3 hits in 100 days at 1%: LR = -2 [3 ln .01 + 97 ln .99 - 3 ln .03 - 97 ln .97]
    hits = np.zeros(100, bool)
    hits[[10, 50, 90]] = True
    result = risk_tests.kupiec(hits, 0.01)
    assert result["hits"] == 3 and result["rate"] == pytest.approx(0.03)
    assert result["statistic"] == pytest.approx(2.6323526355544766, rel=1e-12)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(2.6323526355544766, 1))


def test_kupiec_with_no_hits_is_finite():
    # x = 0: LR = -2 n ln(1 - p)
    result = risk_tests.kupiec(np.zeros(200, bool), 0.05)
    assert result["statistic"] == pytest.approx(-2 * 200 * np.log(0.95))


def test_christoffersen_by_hand():
    # n00 = 8, n01 = 1, n10 = 1, n11 = 2: pi01 = 1/9, pi11 = 2/3, pi = 1/4
    hits = np.array([0] * 5 + [1] * 3 + [0] * 5)
    result = risk_tests.christoffersen(hits)
    assert result["transitions"] == {"n00": 8, "n01": 1, "n10": 1, "n11": 2}
    assert result["statistic"] == pytest.approx(3.3979807359079466, rel=1e-12)


def test_christoffersen_is_zero_when_hits_do_not_cluster():
    # n00 = 4, n01 = 2, n10 = 2, n11 = 1: pi01 = pi11 = pi = 1/3
    result = risk_tests.christoffersen(np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0]))
    assert result["statistic"] == pytest.approx(0, abs=1e-12)
    assert result["p_value"] == pytest.approx(1)
    assert risk_tests.christoffersen(np.zeros(50))["p_value"] == 1


def test_bad_hits_and_levels_are_refused():
    with pytest.raises(ForecasterError, match=r"^level must be in \(0, 1\)"):
        risk_tests.kupiec(np.zeros(10, bool), 1.5)
    with pytest.raises(ForecasterError, match=r"^hits must be a 1-d array"):
        risk_tests.christoffersen(np.zeros((3, 3)))


def normal_days(n=600, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    actual = 100 + rng.standard_normal(n)
    return actual, LocationScale("n", np.full(n, 100.0), np.full(n, spread))


def test_a_calibrated_var_passes_and_a_narrow_one_fails():
    actual, good = normal_days()
    _, narrow = normal_days(spread=0.5)
    passed = risk_tests.var_backtest(good, actual)
    failed = risk_tests.var_backtest(narrow, actual)
    for level in ("0.01", "0.05"):
        assert passed[level]["kupiec"]["p_value"] > 0.05
        assert failed[level]["kupiec"]["p_value"] < 0.01
    bands = QuantileBands("b", np.full(600, 100.0), {0.8: np.ones(600)})
    assert risk_tests.var_backtest(bands, actual) is None


def test_mcs_keeps_the_better_model_and_drops_a_much_worse_one():
    rng = np.random.default_rng(3)
    base = rng.gamma(2.0, 1.0, 500)
    losses = {"good": base, "twin": base + rng.normal(0, 0.01, 500), "bad": base + 1}
    result = risk_tests.model_confidence_set(losses)
    assert {"good", "twin"} <= set(result["included"])
    assert "bad" not in result["included"]
    assert result["p_values"]["bad"] < 0.1
    again = risk_tests.model_confidence_set(losses)
    assert again == result  # seeded: a run gives the same set twice


def test_anchor_comparison_records_every_test():
    actual, good = normal_days(seed=1)
    _, wide = normal_days(seed=1, spread=2.0)
    _, narrow = normal_days(seed=1, spread=0.6)
    methods = {"model": good, "wide": wide, "narrow": narrow}
    result = risk_tests.anchor_comparison("model", methods, actual, ["wide", "narrow"])
    assert set(result["best"]) == set(risk_tests.LOSSES)
    crps = {k: np.mean(d.crps(actual)) for k, d in methods.items()}
    best = min(("wide", "narrow"), key=crps.get)
    assert result["best"]["crps"] == best
    assert result["ratio_to_best"]["crps"] == pytest.approx(crps["model"] / crps[best])
    assert result["ratio_to_best"]["crps"] < 1
    assert result["dm"]["wide"]["crps"]["p_value"] < 0.05
    assert set(result["var"]) == {"model", "wide", "narrow"}
    assert result["mcs"]["main_included"] and result["mcs"]["loss"] == "crps"
    json.dumps(result, allow_nan=False)  # metrics.json stays strict JSON


def test_a_model_identical_to_another_shares_its_mcs_result():
    actual, good = normal_days(seed=2)
    _, wide = normal_days(seed=2, spread=3.0)
    methods = {"model": good, "copy": good, "wide": wide}
    result = risk_tests.anchor_comparison("model", methods, actual, ["copy", "wide"])
    mcs = result["mcs"]
    assert mcs["p_values"]["copy"] == mcs["p_values"]["model"]
    assert "model" in mcs["included"] and "copy" in mcs["included"]
    assert result["dm"]["copy"]["crps"]["p_value"] == 1  # identical losses


def test_a_model_equal_to_another_up_to_rounding_shares_its_mcs_result():
    """A pool whose network weight is 0 is its anchor, computed another way."""
    rng = np.random.default_rng(5)
    base = rng.gamma(2.0, 1.0, 500)
    rounded = base * (1 + rng.uniform(-1e-14, 1e-14, 500))
    losses = {
        "pool": {"crps": rounded},
        "anchor": {"crps": base},
        "worse": {"crps": base + rng.normal(0.3, 0.05, 500)},
    }
    mcs = risk_tests._mcs(losses, "pool")
    assert mcs["p_values"]["pool"] == mcs["p_values"]["anchor"]
    assert {"pool", "anchor"} <= set(mcs["included"]) and mcs["main_included"]
