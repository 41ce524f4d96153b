"""Predictive distributions: quantiles, intervals and their scores."""

import math

import numpy as np
import pytest
from scipy import stats

from forecaster.errors import ForecasterError
from forecaster.evaluate import scores
from forecaster.evaluate.predictive import LocationScale, QuantileBands


def test_normal_quantiles_and_interval():
    dist = LocationScale("n", np.array([100.0, 50.0]), np.array([2.0, 1.0]))
    lower, upper = dist.interval(0.95)
    np.testing.assert_allclose(upper, [100 + 2 * 1.959963985, 50 + 1.959963985])
    np.testing.assert_allclose(lower + upper, [200.0, 100.0])
    np.testing.assert_allclose(dist.quantile(0.5), [100.0, 50.0])


def test_student_t_quantile_uses_the_scale_not_the_std():
    dist = LocationScale("t", np.array([10.0]), np.array([2.0]), df=4.0)
    assert dist.quantile(0.9)[0] == pytest.approx(10 + 2 * stats.t.ppf(0.9, 4))
    assert dist.cdf([10.0])[0] == pytest.approx(0.5)


def test_quantile_bands_give_the_median_and_band_ends():
    bands = QuantileBands(
        "conformal",
        np.array([10.0, 20.0]),
        {0.8: np.array([1.0, 2.0]), 0.95: np.array([3.0, 4.0])},
    )
    np.testing.assert_allclose(bands.quantile(0.5), [10.0, 20.0])
    np.testing.assert_allclose(bands.quantile(0.1), [9.0, 18.0])
    np.testing.assert_allclose(bands.quantile(0.975), [13.0, 24.0])
    np.testing.assert_allclose(bands.interval(0.8)[1], [11.0, 22.0])


def test_quantile_bands_refuse_a_level_they_do_not_have():
    bands = QuantileBands("conformal", np.zeros(1), {0.8: np.ones(1)})
    with pytest.raises(
        ForecasterError,
        match=r"^level must be one of 0\.1, 0\.5, 0\.9 for conformal\. "
        r"Received: level=0\.3$",
    ):
        bands.quantile(0.3)
    with pytest.raises(ForecasterError, match=r"one of 0\.8 .*level=0\.9$"):
        bands.interval(0.9)


def test_score_predictive_of_a_normal_by_hand():
    dist = LocationScale("n", np.zeros(2), np.ones(2))
    actual = np.array([0.0, 3.0])  # 3 lies outside both bands
    got = scores.score_predictive(dist, actual)
    assert got["coverage_0.8"] == 0.5 and got["coverage_0.95"] == 0.5
    assert got["width_0.95"] == pytest.approx(2 * 1.959963985)
    upper = 1.959963985
    assert got["interval_score_0.95"] == pytest.approx(
        2 * upper + (2 / 0.05) * (3 - upper) / 2
    )
    assert got["crps"] == pytest.approx(np.mean(scores.crps_normal(actual, 0.0, 1.0)))
    assert got["log_score"] == pytest.approx(0.5 * math.log(2 * math.pi) + 9 / 4)


def test_score_predictive_of_bands_has_no_crps():
    bands = QuantileBands("c", np.zeros(1), {0.8: np.ones(1), 0.95: 2 * np.ones(1)})
    got = scores.score_predictive(bands, [0.0])
    assert math.isnan(got["crps"]) and math.isnan(got["log_score"])
    # pinball at y = q: 0; at the four ends: (1 - tau) |q| or tau |q|
    expected = 2 * np.mean([0.025 * 2, 0.1 * 1, 0, 0.1 * 1, 0.025 * 2])
    assert got["crps_quantiles"] == pytest.approx(expected)
