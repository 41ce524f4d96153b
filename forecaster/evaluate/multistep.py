"""Distribution scores 5 and 10 days out: the model's sampled fan beside the anchors'.

At each scored origin t (a test day whose whole path lies in the test part)
the outcome is the cumulative h-day log return in percent,
100 ln(P[t + h - 1] / P[t - 1]). The model's forecast of it is the one a
forecast shows: read from the head of one model call for the days within the
model's horizon (a direct model: its output h is the distribution of that
same h-day move), else the fan of `MODEL_SAMPLES` paths it draws itself
(Engine.sample_paths, `horizon` steps kept per call: recursive for the
one-step default); each
anchor's is `SIMULATIONS` paths of forecaster.evaluate.anchor_paths, with its
parameters estimated on the training days only (the fits of the one-step
comparison) and its variance filtered through the day before t. Where
validation preferred the pool of the model and an anchor (one step,
forecaster.evaluate.combination), the pool's quantiles are the same average
at the same weight. Every method is scored on its five quantiles (0.025, 0.1,
0.5, 0.9, 0.975): qCRPS, the 80% and 95% interval scores and coverage.

To keep a run's cost to a few seconds, every `ORIGIN_STRIDE`-th test day is
an origin (their h-day outcomes overlap less, too).
"""

from __future__ import annotations

import logging

import numpy as np

from forecaster.evaluate import anchors, scores
from forecaster.evaluate.anchor_paths import (
    ARCH_FAMILIES,
    SIMULATIONS,
    AnchorState,
    arch_next_variance,
    cumulative_quantiles,
    simulate_returns,
)
from forecaster.prep.windows import window_view

log = logging.getLogger("forecaster")

HORIZONS = (5, 10)  # days ahead scored
ORIGIN_STRIDE = 10  # every this many test days is an origin (about 65 on AAPL)
MODEL_SAMPLES = 256  # paths the model draws per origin
LEVELS = (0.8, 0.95)  # central intervals scored
QUANTILES = scores.quantile_levels(LEVELS)  # 0.025, 0.1, 0.5, 0.9, 0.975
LOSSES = ("qcrps", "interval_score_0.8", "interval_score_0.95")
FAMILIES = (*ARCH_FAMILIES, "range_garch_t", "range_gjr_t", "log_har_t")
PAIRS_KEPT = 500  # training pairs a bundle keeps for the future bands (evenly spaced)


def origins(n_train: int, n: int, steps: int, stride: int = ORIGIN_STRIDE):
    """Origins t (first forecast day) whose `steps` days all lie in [n_train, n)."""
    return np.arange(n_train, n - steps + 1, stride)


def outcomes(prices, at, horizons=HORIZONS) -> dict:
    """{h: 100 ln(P[t + h - 1] / P[t - 1])} for every origin t in `at`, (b,)."""
    prices = np.asarray(prices, np.float64)
    return {h: 100 * np.log(prices[at + h - 1] / prices[at - 1]) for h in horizons}


def model_quantiles(engine, prepared, at, horizons=HORIZONS, samples=MODEL_SAMPLES):
    """{h: (b, 5)} QUANTILES of the model's h-day log returns (percent).

    As a forecast gives them (forecaster.forecast.future): h up to the
    model's horizon from the head of one call (Engine.step_quantiles), each
    further h from `samples` paths drawn `horizon` steps per call.
    """
    window = prepared.split.window
    contexts = np.stack(
        [window_view(prepared.scaled, window, (t, t + 1))[0] for t in at]
    )
    last = np.asarray(prepared.prices, np.float64)[at - 1]
    quantiles = {}
    read = [h for h in horizons if h <= engine.horizon]
    if read:
        scaled = engine.step_quantiles(contexts, max(read), QUANTILES)
        moves = _log_moves(prepared, scaled, last)  # (b, steps, 5)
        quantiles |= {h: moves[:, h - 1] for h in read}
    drawn = [h for h in horizons if h > engine.horizon]
    if drawn:
        paths = engine.sample_paths(
            contexts, max(drawn), samples, seed=0, block=engine.horizon
        )
        moves = _log_moves(prepared, paths, last)  # (b, samples, steps)
        quantiles |= {
            h: np.moveaxis(np.quantile(moves[..., h - 1], QUANTILES, axis=1), 0, -1)
            for h in drawn
        }
    return {h: quantiles[h] for h in horizons}


def _log_moves(prepared, scaled, last) -> np.ndarray:
    """100 ln(price / last): scaled values (b, ...) against each origin's last."""
    prices = prepared.scaler.inverse_transform(scaled)
    return 100 * np.log(prices / last.reshape(-1, *[1] * (prices.ndim - 1)))


def anchor_state(family: str, prices, n_train: int, ohlc, at, keep=None):
    """`family` fitted on the training returns, its next variance at each origin.

    Origins t in `at` go up to len(prices) (the day after the last: a
    forecast's). The fit is the one-step comparison's (cached by
    forecaster.evaluate.anchors); the range families keep their training
    days' pairs to draw from (`keep`: at most that many, evenly spaced).
    """
    returns = anchors.percent_returns(prices)
    ranges = None if ohlc is None else anchors.percent_ranges(ohlc)
    n_fit, at = n_train - 1, np.asarray(at)
    fitted = anchors.volatility(family, returns, ranges, n_fit)
    params = dict(fitted.params)
    sigma = np.append(fitted.sigma, _next_sigma(fitted, returns, ranges))
    variance = sigma[at - 1] ** 2  # return t - 1 ends on day t
    if family in ARCH_FAMILIES:
        return AnchorState(family, params, variance)
    z = returns[:n_fit] / sigma[:n_fit]
    history = None
    if family == "log_har_t":
        floor, _, resid = anchors.har_regression(ranges, n_fit)
        lag = max(anchors.HAR_LAGS)
        floored = np.maximum(ranges, floor)
        history = np.stack([floored[t - 1 - lag : t - 1] for t in at])
        pairs = np.stack([z[lag:], resid], axis=1)
    else:
        pairs = np.stack([z, ranges[:n_fit] / sigma[:n_fit] ** 2], axis=1)
    if keep is not None and len(pairs) > keep:
        pairs = pairs[np.linspace(0, len(pairs) - 1, keep).round().astype(int)]
    return AnchorState(family, params, variance, history, pairs)


def _next_sigma(fitted, returns, ranges) -> float:
    """The volatility of the return after the last one (percent)."""
    family, params = fitted.family, fitted.params
    variance = fitted.sigma[-1] ** 2
    if family in ARCH_FAMILIES:
        shock = returns[-1] / fitted.sigma[-1]
        return float(np.sqrt(arch_next_variance(family, params, variance, shock)))
    if family == "log_har_t":
        floored = np.maximum(np.append(ranges, ranges[-1]), params["floor"])
        design = anchors.har_design(floored)[-1]
        coef = np.array([params[f"b{k}"] for k in range(len(design))])
        expected = np.exp(design @ coef + params["resid_var"] / 2)
        return float(np.sqrt(params["factor"] * expected))
    leverage = params.get("gamma", 0.0) * (returns[-1] < 0)
    drive = (params["alpha"] + leverage) * ranges[-1]
    return float(np.sqrt(params["omega"] + drive + params["beta"] * variance))


def future_record(prepared, pool: dict) -> dict | None:
    """What a forecast needs to pool its bands with the anchor validation chose.

    The anchor's state at the day after the last (parameters from the
    training days, variance filtered through the last day, PAIRS_KEPT
    pairs), the pool's weight, and the last date and price it belongs to.
    """
    try:
        state = anchor_state(
            pool["anchor"], prepared.prices, prepared.split.n_train,
            prepared.ohlc, [len(prepared.prices)], keep=PAIRS_KEPT,
        )  # fmt: skip
        returns = anchors.percent_returns(prepared.prices)
        n_fit = prepared.split.n_train - 1
        anchors.check_volatility(
            pool["anchor"], np.sqrt(state.variance), returns, n_fit
        )
    except Exception as error:  # the forecast then shows the network's bands
        log.warning("the pool's anchor has no future state (%s)", error)
        return None
    return {
        "weight_model": pool["weight_model"],
        "anchor_label": pool.get("anchor_label", pool["anchor"]),
        "last_date": f"{prepared.dates[-1]:%Y-%m-%d}",
        "last_price": float(prepared.prices[-1]),
        "state": state.record(),
    }


def anchor_quantiles(state: AnchorState, horizons=HORIZONS, sims=SIMULATIONS) -> dict:
    """{h: (b, 5)} QUANTILES of the anchor's simulated h-day log returns."""
    drawn = simulate_returns(state, max(horizons), sims, seed=0)
    return cumulative_quantiles(drawn, horizons, QUANTILES)


def score(quantiles, actual) -> dict:
    """qCRPS, interval scores and coverage of (b, 5) QUANTILES against (b,)."""
    lower80, upper80 = quantiles[:, 1], quantiles[:, 3]
    lower95, upper95 = quantiles[:, 0], quantiles[:, 4]
    return {
        "qcrps": float(scores.crps_quantiles(actual, quantiles, QUANTILES).mean()),
        "interval_score_0.8": float(
            scores.interval_score(actual, lower80, upper80, 0.8).mean()
        ),
        "interval_score_0.95": float(
            scores.interval_score(actual, lower95, upper95, 0.95).mean()
        ),
        "coverage_0.8": scores.interval_coverage(actual, lower80, upper80),
        "coverage_0.95": scores.interval_coverage(actual, lower95, upper95),
    }


def multi_step(
    engine, prepared, distribution: dict, horizons=HORIZONS, stride=ORIGIN_STRIDE
):
    """The "multi_step" block of metrics.json, or None without a distribution.

    `distribution`: the one-step comparison's record (its anchors, its main
    method and the pool's choice). A model with a point head, or with input
    features beside the price (one model call, no recursion), has no fan.
    Every `stride`-th test day is an origin.
    """
    if not engine.head.probabilistic or prepared.extra is not None:
        return None
    prices, n_train = prepared.prices, prepared.split.n_train
    at = origins(n_train, len(prices), max(horizons), stride)
    if len(at) < 2:
        return None
    quantiles = {"model": model_quantiles(engine, prepared, at, horizons)}
    for family in FAMILIES:
        if family not in distribution["methods"]:
            continue
        try:
            state = anchor_state(family, prices, n_train, prepared.ohlc, at)
            quantiles[family] = anchor_quantiles(state, horizons)
        except Exception as error:  # a failed fit is left out, as in one step
            log.warning("%s: no multi-step forecast (%s)", family, error)
    pool = distribution.get("combination") or {}
    main = "model"
    if pool.get("preferred") and pool.get("anchor") in quantiles:
        weight, anchor = pool["weight_model"], quantiles[pool["anchor"]]
        quantiles["combined"] = {
            h: weight * quantiles["model"][h] + (1 - weight) * anchor[h]
            for h in horizons
        }
        main = "combined" if distribution["main"] == "combined" else main
    actual = outcomes(prices, at, horizons)
    record = _record(quantiles, actual, main, at, distribution, horizons)
    # model_horizon: the days read from the head; further ones are sampled
    return record | {"origin_stride": stride, "model_horizon": engine.horizon}


def _record(quantiles, actual, main, at, distribution, horizons) -> dict:
    methods = {}
    for key, by_h in quantiles.items():
        label = distribution["methods"].get(key, {}).get("label", key)
        methods[key] = {"label": label} | {
            str(h): score(by_h[h], actual[h]) for h in horizons
        }
    ratios = {
        key: {
            str(h): {
                loss: methods[main][str(h)][loss] / methods[key][str(h)][loss]
                for loss in LOSSES
            }
            for h in horizons
        }
        for key in quantiles
        if key in FAMILIES
    }
    return {
        "horizons": list(horizons),
        "outcome": "cumulative log return over h days, percent",
        "origins": len(at),
        "model_samples": MODEL_SAMPLES,  # paths, for the days past model_horizon
        "anchor_simulations": SIMULATIONS,
        "main": main,
        "methods": methods,
        "ratio_to_anchor": ratios,  # main's mean loss / the anchor's
    }
