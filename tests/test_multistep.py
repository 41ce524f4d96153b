"""The anchors' multi-step simulations and the 5- and 10-day scores (multistep)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster.evaluate import anchors, multistep
from forecaster.evaluate.anchor_paths import (
    AnchorState,
    cumulative_quantiles,
    simulate_returns,
    skew_t_draws,
    stack_states,
)
from forecaster.report.tables import format_multi_step

EXACT_PAIRS = np.array([[1.0, 0.7], [-1.0, 0.7]])  # |z| = 1: r^2 = h exactly


def ohlc_series(n=700, seed=3):
    """GARCH(1,1)-t prices whose daily ranges follow the variance (not market data)."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(6, n) * np.sqrt(4 / 6)
    h, returns, sigma = 1e-4, np.empty(n), np.empty(n)
    for j in range(n):
        sigma[j] = np.sqrt(h)
        returns[j] = sigma[j] * shocks[j]
        h = 2e-6 + 0.08 * returns[j] ** 2 + 0.9 * h
    close = 50 * np.exp(np.cumsum(returns))
    spread = sigma * rng.gamma(4.0, 0.3, n) + 1e-5
    high, low = close * np.exp(spread / 2), close * np.exp(-spread / 2)
    return close, np.stack([close, high, low, close], axis=1)


def test_skewed_t_draws_follow_arch_skewstudent():
    from arch.univariate import SkewStudent

    draws = skew_t_draws(7.0, -0.3, 400_000, np.random.default_rng(0))
    levels = np.array([0.025, 0.1, 0.5, 0.9, 0.975])
    expected = SkewStudent().ppf(levels, [7.0, -0.3])
    np.testing.assert_allclose(np.quantile(draws, levels), expected, atol=0.02)
    assert abs(draws.var() - 1) < 0.02 and abs(draws.mean()) < 0.01


@pytest.mark.parametrize("family", ["garch_t", "gjr_skewt", "egarch_t"])
def test_arch_family_simulation_matches_arch(family):
    """The mean simulated squared return at each step is arch's variance forecast."""
    from arch import arch_model

    close, ohlc = ohlc_series()
    n_train, origin = 500, 560
    state = multistep.anchor_state(family, close, n_train, ohlc, np.array([origin]))
    returns = anchors.percent_returns(close)
    model = arch_model(
        returns[: origin - 1], mean="Zero", p=1, q=1, rescale=False,
        **anchors.ARCH_SPECS[family],
    )  # fmt: skip
    method = "simulation" if family == "egarch_t" else "analytic"
    forecast = model.forecast(
        pd.Series(state.params), horizon=10, start=origin - 2, method=method,
        simulations=50_000, random_state=np.random.RandomState(0), reindex=False,
    )  # fmt: skip
    expected = forecast.variance.to_numpy()[-1]
    drawn = simulate_returns(
        AnchorState(family, state.params, np.array([expected[0]])), 10, 100_000
    )
    np.testing.assert_allclose((drawn[0] ** 2).mean(axis=0), expected, rtol=0.06)


def test_range_gjr_simulation_runs_the_recursion():
    params = {"omega": 0.05, "alpha": 0.3, "gamma": 0.2, "beta": 0.6, "nu": 8.0}
    state = AnchorState("range_gjr_t", params, np.array([1.0, 2.0]), None, EXACT_PAIRS)
    drawn = simulate_returns(state, 2, 500)
    h0 = np.array([[1.0], [2.0]])
    np.testing.assert_allclose(drawn[..., 0] ** 2, np.broadcast_to(h0, (2, 500)))
    assert (drawn[..., 0] < 0).any() and (drawn[..., 0] > 0).any()
    drive = (params["alpha"] + params["gamma"] * (drawn[..., 0] < 0)) * 0.7 * h0
    h1 = params["omega"] + drive + params["beta"] * h0
    np.testing.assert_allclose(drawn[..., 1] ** 2, h1)


@pytest.mark.parametrize("family", list(multistep.FAMILIES))
def test_stacked_states_draw_each_series_from_its_own_fit(family):
    """Series simulated together (a panel's pool) keep their own law."""
    close, ohlc = ohlc_series()
    calm = multistep.anchor_state(family, close, 500, ohlc, np.array([600]))
    other, other_ohlc = ohlc_series(seed=11)  # another fit: other parameters
    wild = multistep.anchor_state(family, other, 500, other_ohlc, np.array([690]))
    wild.variance = wild.variance * 9  # three times calm's scale, about
    if wild.pairs is not None:  # each origin draws from its own pairs
        wild.pairs = np.abs(wild.pairs)
    together = simulate_returns(stack_states([calm, wild]), 5, 40_000, seed=1)
    for row, state in enumerate((calm, wild)):
        alone = simulate_returns(state, 5, 40_000, seed=2)[0]
        levels = [0.05, 0.5, 0.95]
        np.testing.assert_allclose(
            np.quantile(together[row].sum(axis=1), levels),
            np.quantile(alone.sum(axis=1), levels),
            rtol=0.05, atol=0.03 * alone.sum(axis=1).std(),
        )  # fmt: skip
    if wild.pairs is not None:
        assert (together[1, :, 0] > 0).all() and (together[0, :, 0] < 0).any()


def test_states_of_two_families_do_not_stack():
    garch = AnchorState("garch_t", {"nu": 5.0}, np.array([1.0]))
    egarch = AnchorState("egarch_t", {"nu": 5.0}, np.array([1.0]))
    with pytest.raises(ValueError, match="one family to stack"):
        stack_states([garch, egarch])


@pytest.mark.parametrize("family", list(multistep.FAMILIES))
def test_first_step_is_the_one_step_anchor(family):
    """Each state's first variance is the anchor's one-step sigma^2 at that day."""
    close, ohlc = ohlc_series()
    n_train, at = 500, np.array([520, 600, 650])
    state = multistep.anchor_state(family, close, n_train, ohlc, at)
    one_step = anchors.anchor(family, close, n_train, ohlc)
    sigma = (
        one_step.scale / np.sqrt((one_step.df - 2) / one_step.df)
        if hasattr(one_step, "df")
        else one_step.scale
    ) / close[n_train - 1 : -1]
    np.testing.assert_allclose(
        np.sqrt(state.variance) / 100, sigma[at - n_train], rtol=1e-9
    )
    if state.pairs is not None:
        exact = AnchorState(family, state.params, state.variance, state.history)
        exact.pairs = np.array([[1.0, 0.0], [-1.0, 0.0]])
        if family != "log_har_t":
            exact.pairs[:, 1] = 0.7
        first = simulate_returns(exact, 1, 50)[..., 0] ** 2
        np.testing.assert_allclose(first, np.repeat(state.variance[:, None], 50, 1))


def test_states_read_no_day_after_the_origin():
    close, ohlc = ohlc_series()
    n_train, at = 500, np.array([600])
    changed, changed_ohlc = close.copy(), ohlc.copy()
    changed[600:] *= 1.3
    changed_ohlc[600:] *= 1.3
    changed_ohlc[600:, 1] *= 1.05
    for family in multistep.FAMILIES:
        a = multistep.anchor_state(family, close, n_train, ohlc, at)
        b = multistep.anchor_state(family, changed, n_train, changed_ohlc, at)
        np.testing.assert_allclose(a.variance, b.variance, rtol=1e-9, err_msg=family)


def test_state_record_round_trips_through_json():
    close, ohlc = ohlc_series()
    state = multistep.anchor_state("log_har_t", close, 500, ohlc, np.array([600]))
    back = AnchorState.from_record(json.loads(json.dumps(state.record())))
    np.testing.assert_array_equal(
        simulate_returns(back, 3, 20), simulate_returns(state, 3, 20)
    )


def test_cumulative_quantiles_and_scores_by_hand():
    returns = np.array([[[1.0, 2.0], [3.0, -1.0], [0.0, 0.0]]])  # (1, 3 sims, 2)
    q = cumulative_quantiles(returns, (1, 2), [0.5])
    assert q[1][0, 0] == 1.0 and q[2][0, 0] == 2.0
    quantiles = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]])
    result = multistep.score(quantiles, np.array([3.0]))
    assert result["interval_score_0.8"] == pytest.approx(2 + 10 * 2)
    assert result["interval_score_0.95"] == pytest.approx(4 + 40 * 1)
    assert result["coverage_0.8"] == 0.0
    pinball = [
        (3 - q) * t for q, t in zip(quantiles[0], multistep.QUANTILES, strict=True)
    ]
    assert result["qcrps"] == pytest.approx(2 * np.mean(pinball))


def test_a_run_records_and_prints_the_multi_step_block(trained_bundle):
    metrics = json.loads((trained_bundle / "metrics.json").read_text())
    block = metrics["multi_step"]
    assert block["horizons"] == [5, 10] and block["origins"] >= 2
    assert {"model", "garch_t", "range_garch_t"} <= set(block["methods"])
    main = block["methods"][block["main"]]
    for h in ("5", "10"):
        assert main[h]["interval_score_0.95"] > 0
        ratio = block["ratio_to_anchor"]["garch_t"][h]["qcrps"]
        assert ratio == pytest.approx(
            main[h]["qcrps"] / block["methods"]["garch_t"][h]["qcrps"]
        )
    text = format_multi_step(block)
    assert "further out" in text and "Range-GARCH-t" in text


@pytest.mark.parametrize("family", ["egarch_t", "range_gjr_t", "log_har_t"])
def test_the_state_after_the_last_day_is_the_next_one_step_forecast(family):
    """Filtered through the last day: the sigma a one-day-longer series gives."""
    close, ohlc = ohlc_series()
    n_train, n = 500, 650
    state = multistep.anchor_state(family, close[:n], n_train, ohlc[:n], [n])
    longer = anchors.anchor(family, close[: n + 1], n_train, ohlc[: n + 1])
    sigma = longer.scale[-1] / close[n - 1]
    if hasattr(longer, "df"):
        sigma /= np.sqrt((longer.df - 2) / longer.df)
    assert np.sqrt(state.variance[0]) == pytest.approx(sigma * 100, rel=1e-9)


def prepared_series(close, ohlc, n_train: int = 600):
    """What future_record reads of a prepared series (prices, dates, split, ohlc)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        prices=close,
        dates=pd.bdate_range("2020-01-01", periods=len(close)),
        split=SimpleNamespace(n_train=n_train),
        ohlc=ohlc,
    )


def test_future_record_keeps_a_small_json_state():
    close, ohlc = ohlc_series()
    prepared = prepared_series(close, ohlc)
    pool = {"anchor": "range_garch_t", "anchor_label": "Range-GARCH-t"}
    record = multistep.future_record(prepared, pool | {"weight_model": 0.7})
    assert record["last_date"] == f"{prepared.dates[-1]:%Y-%m-%d}"
    assert record["last_price"] == close[-1] and record["weight_model"] == 0.7
    state = AnchorState.from_record(json.loads(json.dumps(record))["state"])
    assert len(state.pairs) == multistep.PAIRS_KEPT
    full = multistep.anchor_state("range_garch_t", close, 600, ohlc, [len(close)])
    np.testing.assert_allclose(state.variance, full.variance)


def test_a_pool_whose_anchor_collapses_after_the_last_day_keeps_no_state(
    monkeypatch, caplog
):
    """An EGARCH fit on a generated walk gave a next day 19 times calmer than
    the series' sd (its test days looked fine): such a future state is
    refused with one warning, and the forecast shows the network's bands
    instead of a band a twentieth of its width."""
    close, ohlc = ohlc_series()
    prepared = prepared_series(close, ohlc)
    sd = np.std(anchors.percent_returns(close)[:599])
    collapsed = AnchorState("garch_t", {"nu": 5.0}, np.array([(sd / 19) ** 2]))
    monkeypatch.setattr(multistep, "anchor_state", lambda *a, **k: collapsed)
    pool = {"anchor": "garch_t", "weight_model": 0.0}
    assert multistep.future_record(prepared, pool) is None
    assert "degenerate fit" in caplog.text
    believable = AnchorState("garch_t", {"nu": 5.0}, np.array([(sd / 2) ** 2]))
    monkeypatch.setattr(multistep, "anchor_state", lambda *a, **k: believable)
    assert multistep.future_record(prepared, pool)["weight_model"] == 0.0


def test_a_direct_model_is_scored_on_its_head_as_a_forecast_shows_it():
    """A horizon-10 model's 5- and 10-day quantiles are its outputs 5 and 10
    (each the distribution of the move from the day before the origin), not a
    fan sampled one step at a time; a forecast of 10 days reads the same."""
    from conftest import make_prices

    import forecaster as fc

    model = fc.Forecaster(
        window=10, horizon=10, units=4, layers=2, epochs=1, batch_size=32, verbose=0
    ).fit(make_prices(400))
    block = model.metrics_["multi_step"]
    assert block["model_horizon"] == 10 and block["origin_stride"] == 10
    engine, prepared = model.get_engine(), next(iter(model.panel_.parts.values()))
    at = multistep.origins(prepared.split.n_train, len(prepared.prices), 10)
    got = multistep.model_quantiles(engine, prepared, at)
    context = prepared.scaled[at[0] - 10 : at[0]][None]
    head = engine.step_quantiles(context, 10, multistep.QUANTILES)[0]
    moves = 100 * np.log(
        prepared.scaler.inverse_transform(head) / prepared.prices[at[0] - 1]
    )
    np.testing.assert_allclose(got[5][0], moves[4], atol=1e-5)
    np.testing.assert_allclose(got[10][0], moves[9], atol=1e-5)
    actual = multistep.outcomes(prepared.prices, at)[10]
    assert block["methods"]["model"]["10"] == multistep.score(got[10], actual)
    sampled = multistep.model_quantiles(engine, prepared, at[:1], horizons=(11,))
    assert sampled[11].shape == (1, 5)  # past the horizon: sampled paths
