"""Baseline predictive distributions: hand-computed scales, no test-day leakage."""

import numpy as np
import pytest

from forecaster.errors import ForecasterError
from forecaster.evaluate import baselines
from forecaster.evaluate.intervals import coverage
from forecaster.evaluate.scores import crps_quantiles, grid_crps, interval_coverage


def prices_from(returns) -> np.ndarray:
    """Prices starting at 100 whose daily log returns are `returns`."""
    return 100 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))


@pytest.fixture(scope="module")
def garch_prices() -> np.ndarray:
    """800 prices from a simulated GARCH(1,1)-t (omega 0.05, alpha 0.1, beta 0.85)."""
    rng = np.random.default_rng(7)
    nu, variance, returns = 6.0, 1.0, []
    for _ in range(799):
        shock = rng.standard_t(nu) * np.sqrt((nu - 2) / nu)
        returns.append(np.sqrt(variance) * shock)
        variance = 0.05 + 0.1 * returns[-1] ** 2 + 0.85 * variance
    return prices_from(np.array(returns) / 100)


def test_rolling_normal_by_hand():
    # returns alternate +-0.01: every 2-day window has std 0.01 (ddof 0)
    prices = prices_from([0.01, -0.01] * 4)
    dist = baselines.rolling_normal(prices, n_train=5, days=2)
    np.testing.assert_allclose(dist.location, prices[4:8])
    np.testing.assert_allclose(dist.scale, prices[4:8] * 0.01)
    assert dist.df is None


def test_ewma_by_hand():
    # decay 0.5; training returns 0.1, 0.3: seed (0.01 + 0.09) / 2 = 0.05
    # var1 = 0.5 x 0.05 + 0.5 x 0.01 = 0.03; var2 = 0.015 + 0.5 x 0.09 = 0.06;
    # var3 = 0.03 + 0.5 x 0.04 = 0.05 (return 2 is -0.2)
    prices = prices_from([0.1, 0.3, -0.2, 0.05])
    dist = baselines.ewma_normal(prices, n_train=3, decay=0.5)
    assert dist.params["seed_variance"] == pytest.approx(0.05)
    np.testing.assert_allclose(dist.scale, prices[2:4] * np.sqrt([0.06, 0.05]))
    np.testing.assert_allclose(dist.location, prices[2:4])


@pytest.mark.parametrize("make", [baselines.rolling_normal, baselines.ewma_normal])
def test_volatility_baselines_are_causal(make, garch_prices):
    """Changing the price of test day k changes no forecast up to day k."""
    n_train, k = 600, 650
    before = make(garch_prices, n_train)
    changed = garch_prices.copy()
    changed[k:] *= 1.3
    after = make(changed, n_train)
    day = k - n_train
    np.testing.assert_array_equal(after.scale[: day + 1], before.scale[: day + 1])
    assert after.scale[day + 1] != before.scale[day + 1]


def test_garch_parameters_ignore_the_test_days(garch_prices):
    n_train = 600
    fitted = baselines.garch_t(garch_prices, n_train)
    changed = garch_prices.copy()
    changed[n_train:] *= np.exp(np.cumsum(np.full(200, 0.05)))  # a wild test part
    assert baselines.garch_t(changed, n_train).params == fitted.params
    # and they equal a fit on the training returns alone
    from arch import arch_model

    train_returns = np.diff(np.log(garch_prices[:n_train])) * 100
    alone = arch_model(train_returns, mean="Zero", p=1, q=1, dist="t").fit(disp="off")
    for name, value in alone.params.items():
        assert fitted.params[name] == pytest.approx(value, rel=1e-6)


def test_garch_filters_the_test_days_with_fixed_parameters(garch_prices):
    """sigma2 of day t + 1 = omega + alpha r_t^2 + beta sigma2 of day t (percent)."""
    n_train = 600
    dist = baselines.garch_t(garch_prices, n_train)
    p, nu = dist.params, dist.df
    assert 0 < p["alpha[1]"] + p["beta[1]"] < 1 and 2 < nu < 50
    previous = garch_prices[n_train - 1 : -1]
    sigma2 = (dist.scale / previous / np.sqrt((nu - 2) / nu) * 100) ** 2
    returns = np.diff(np.log(garch_prices))[n_train - 1 :] * 100  # test days
    expected = (
        p["omega"] + p["alpha[1]"] * returns[:-1] ** 2 + p["beta[1]"] * sigma2[:-1]
    )
    np.testing.assert_allclose(sigma2[1:], expected, rtol=1e-9)
    np.testing.assert_allclose(dist.location, previous)


def test_garch_is_causal(garch_prices):
    n_train, k = 600, 700
    before = baselines.garch_t(garch_prices, n_train)
    changed = garch_prices.copy()
    changed[k:] *= 0.7
    after = baselines.garch_t(changed, n_train)
    day = k - n_train
    np.testing.assert_allclose(after.scale[: day + 1], before.scale[: day + 1])
    assert after.scale[day + 1] != pytest.approx(before.scale[day + 1])


def test_garch_with_a_constant_mean_shifts_the_location(garch_prices):
    dist = baselines.garch_t(garch_prices, 600, mean="Constant")
    drift = dist.params["mu"] / 100
    np.testing.assert_allclose(dist.location, garch_prices[599:-1] * (1 + drift))


def test_conformal_bands_cover_as_evaluation_counts(garch_prices):
    n_train, window = 600, 30
    rng = np.random.default_rng(1)
    actual = garch_prices[n_train:]
    predicted = garch_prices[n_train - 1 : -1] * (1 + rng.normal(0, 0.001, 200))
    intervals = {"levels": {"0.8": [1.2, 1.5], "0.95": [2.0, 2.4]}}
    bands = baselines.conformal_bands(
        predicted, garch_prices, n_train, window, intervals
    )
    from forecaster.evaluate.intervals import scale_of
    from forecaster.prep.windows import window_view

    scale = scale_of(window_view(garch_prices, window, (n_train, len(garch_prices))))
    for level, q in ((0.8, 1.2), (0.95, 2.0)):
        lower, upper = bands.interval(level)
        assert interval_coverage(actual, lower, upper) == coverage(
            actual, predicted, scale, q
        )
    np.testing.assert_allclose(bands.quantile(0.5), predicted)


def test_n_train_out_of_range_is_refused():
    with pytest.raises(
        ForecasterError,
        match=r"^n_train must be in \[3, 4\] for 5 prices\. Received: n_train=5$",
    ):
        baselines.ewma_normal(prices_from([0.1] * 4), n_train=5)


def test_unknown_garch_mean_lists_the_choices():
    with pytest.raises(
        ForecasterError, match=r"^Unknown mean 'AR': choose one of Zero, Constant\.$"
    ):
        baselines.garch_t(prices_from([0.01] * 200), 150, mean="AR")


def test_decay_outside_the_unit_interval_is_refused():
    with pytest.raises(ForecasterError, match=r"^decay must be in \(0, 1\)\. .*=1$"):
        baselines.ewma_normal(prices_from([0.1] * 4), n_train=3, decay=1)


def test_conformal_bands_need_one_forecast_per_test_day():
    with pytest.raises(ForecasterError, match=r"one value per test day \(2\)"):
        baselines.conformal_bands(
            [1.0], prices_from([0.1] * 4), 3, 2, {"levels": {"0.8": [1.0]}}
        )


def test_rolling_window_needs_two_returns():
    with pytest.raises(ForecasterError, match=r"^days must be at least 2\. .*=1$"):
        baselines.rolling_normal(prices_from([0.1] * 4), n_train=3, days=1)


def test_the_registry_makes_each_baseline_from_the_test_days(garch_prices):
    assert list(baselines.REGISTRY) == [
        "conformal",
        "rw20",
        "ewma",
        "garch_t",
        "gjr_skewt",
        "egarch_t",
        "range_garch_t",
        "range_gjr_t",
        "log_har_t",
        "best_refit",
    ]
    days = baselines.TestDays(garch_prices, 600)
    made = baselines.distribution("rw20", days)
    direct = baselines.rolling_normal(garch_prices, 600)
    np.testing.assert_array_equal(made.scale, direct.scale)
    assert baselines.label("garch_t") == "GARCH-t"
    with pytest.raises(ForecasterError, match=r"^Unknown baseline 'rw5': choose one"):
        baselines.distribution("rw5", days)
    with pytest.raises(ForecasterError, match=r"'rw20' is already registered"):
        baselines.baseline("rw20", "again")(lambda days: None)


def test_a_baseline_that_cannot_be_fitted_is_left_out(caplog):
    prices = prices_from([0.01, -0.02] * 75)  # 151 prices: too few for GARCH
    intervals = {"levels": {"0.8": [1.0], "0.95": [2.0]}}
    days = baselines.TestDays(prices, 50, prices[49:-1], 20, intervals)
    found = baselines.distributions(days)
    assert list(found) == ["conformal", "rw20", "ewma"]
    assert "GARCH(1,1)-t could not be estimated" in caplog.text
    assert "; left out" in caplog.text


def test_grid_crps_scores_any_distribution_on_its_quantiles(garch_prices):
    dist = baselines.rolling_normal(garch_prices, 600)
    actual = garch_prices[600:]
    grid = (0.25, 0.5, 0.75)
    values = np.stack([dist.quantile(t) for t in grid], axis=1)
    expected = np.mean(crps_quantiles(actual, values, np.asarray(grid)))
    assert grid_crps(dist, actual, grid) == pytest.approx(expected, rel=1e-12)


def test_the_search_yardstick_is_the_best_anchor_fitted_before_the_slice():
    from test_anchors import ohlc_prices

    from forecaster.evaluate.anchors import RANGE_FAMILIES

    prices, ohlc = ohlc_prices()
    start, stop, levels = 700, 800, (0.1, 0.5, 0.9)
    key, crps = baselines.best_anchor_crps(prices, ohlc, (start, stop), levels)
    days = baselines.TestDays(prices[:stop], start, ohlc=ohlc[:stop])
    each = {
        name: grid_crps(made, prices[start:stop], levels)
        for name, made in baselines.anchor_distributions(days).items()
    }
    assert "conformal" not in each
    assert {"rw20", "garch_t", "range_garch_t", "log_har_t", "best_refit"} <= set(each)
    assert crps == min(each.values()) == each[key]
    assert crps < each["rw20"]  # the search's old yardstick loses to the anchors
    changed, moved = prices.copy(), ohlc.copy()  # the days from `stop` on ...
    changed[stop:] *= 3.0
    moved[stop:] *= 3.0
    again = baselines.best_anchor_crps(changed, moved, (start, stop), levels)
    assert again == (key, crps)  # ... are never read
    close_only, _ = baselines.best_anchor_crps(prices, None, (start, stop), levels)
    assert close_only not in RANGE_FAMILIES
