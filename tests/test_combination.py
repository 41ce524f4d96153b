"""Tests for forecaster.evaluate.combination: the quantile average, the weight
chosen on validation, and that the anchor never sees a day after training."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.errors import ForecasterError
from forecaster.evaluate import baselines, combination
from forecaster.evaluate.combination import (
    GRID,
    choose_weight,
    combine,
    quantile_average,
    quantile_grid,
    validation_days,
)
from forecaster.evaluate.predictive import LocationScale


def normal(location, scale, n=50) -> LocationScale:
    return LocationScale("n", np.full(n, float(location)), np.full(n, float(scale)))


def test_quantile_average_of_two_normals_is_the_normal_between():
    pooled = quantile_average(normal(10, 1), normal(20, 3), 0.25)
    expected = quantile_grid(normal(0.25 * 10 + 0.75 * 20, 0.25 * 1 + 0.75 * 3))
    np.testing.assert_allclose(pooled.values, expected)
    np.testing.assert_allclose(pooled.levels, GRID)
    alone = quantile_average(normal(10, 1), normal(20, 3), 1.0)
    # 0.9 lies between two grid levels: interpolated, within 1e-5
    np.testing.assert_allclose(
        alone.quantile(0.9), normal(10, 1).quantile(0.9), rtol=1e-5
    )


def test_weight_outside_zero_one_names_it():
    with pytest.raises(ForecasterError, match=r"weight must be in \[0, 1\]. Received"):
        quantile_average(normal(0, 1), normal(0, 1), 1.5)


def test_choose_weight_finds_the_average_of_two_opposite_biases():
    rng = np.random.default_rng(0)
    actual = rng.normal(0.0, 1.0, 4000)
    above = quantile_grid(normal(1.0, 1.0, len(actual)))
    below = quantile_grid(normal(-1.0, 1.0, len(actual)))
    weight, crps = choose_weight(above, below, actual)
    assert weight == 0.5
    assert crps[0.5] < crps[1.0] and crps[0.5] < crps[0.0]


def test_choose_weight_keeps_the_model_when_the_anchor_does_not_help():
    rng = np.random.default_rng(1)
    actual = rng.normal(0.0, 1.0, 4000)
    right = quantile_grid(normal(0.0, 1.0, len(actual)))
    wrong = quantile_grid(normal(3.0, 5.0, len(actual)))
    assert choose_weight(right, wrong, actual)[0] == 1.0
    assert choose_weight(right, right, actual)[0] == 1.0  # a tie: the model


def test_validation_days_cut_every_array_to_the_training_part():
    prices = np.arange(1.0, 101.0)
    days = baselines.TestDays(prices, 80, np.ones(20), 10, {"x": 1})
    cut = validation_days(days, 60)
    np.testing.assert_array_equal(cut.prices, prices[:80])
    assert cut.n_train == 60
    assert cut.predicted is None and cut.intervals is None and cut.window == 10


def test_combine_fits_the_anchor_on_days_before_validation(monkeypatch):
    """The anchor chosen on validation sees prices[:n_train] only, with the
    validation slice as its test part; the test days use the `found` one."""
    seen = []

    @baselines.baseline("fake_anchor", "fake")
    def _fake(days):
        seen.append((len(days.prices), days.n_train))
        n = len(days.prices) - days.n_train
        return normal(99.0, 1.0, n)

    try:
        monkeypatch.setattr(combination, "ANCHORS", ("missing", "fake_anchor"))
        rng = np.random.default_rng(2)
        prices = 100 + rng.normal(0.0, 1.0, 3000)
        days = baselines.TestDays(prices, 2500)
        model_val = normal(101.0, 1.0, 500)  # validation days 2000..2499
        model_test = normal(101.0, 1.0, 500)
        found = {"fake_anchor": normal(99.0, 1.0, 500)}
        chosen = combine(model_val, model_test, days, 2000, found)
    finally:
        baselines.unregister("fake_anchor")
    assert seen == [(2500, 2000)]
    assert chosen.anchor == "fake_anchor" and chosen.preferred
    assert chosen.weight == 0.5
    np.testing.assert_allclose(chosen.distribution.quantile(0.5), 100.0)
    record = chosen.record()
    assert record["chosen_on"] == "validation"
    assert record["validation"]["by_anchor"]["fake_anchor"]["weight_model"] == 0.5


def test_combine_without_an_anchor_is_none():
    days = baselines.TestDays(np.arange(1.0, 101.0), 80)
    assert combine(normal(0, 1, 20), normal(0, 1, 20), days, 60, {}) is None
    assert combine(None, normal(0, 1, 20), days, 60, {"garch_t": normal(0, 1)}) is None


def test_the_pool_s_crps_is_within_5e_5_of_the_closed_form():
    # the midpoint grid; the old grid k / 200 overstated it by 0.5%
    rng = np.random.default_rng(2)
    location, scale = rng.normal(0, 1, 300), rng.uniform(0.5, 2.0, 300)
    model = LocationScale("t", location, scale, df=4.0)
    actual = location + scale * rng.standard_t(4, 300)
    pooled = quantile_average(model, normal(0, 1, 300), 1.0)
    exact = model.crps(actual).mean()
    assert pooled.crps(actual).mean() == pytest.approx(exact, rel=5e-5)
    lower, upper = pooled.interval(0.95)
    np.testing.assert_allclose(lower, model.quantile(0.025), rtol=1e-3, atol=1e-3)
