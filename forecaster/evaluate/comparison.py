"""The model's one-step forecast distribution on the test days beside the baselines.

For each test day the model's head (forecaster.model.heads) gives a distribution
of the price; a model trained on squared error has only its split-conformal
bands. Both are scored on the same days as every baseline registered in
forecaster.evaluate.baselines (each fitted on the training part only): random
walks with 20-day and EWMA volatility, the GARCH family, the range anchors
(forecaster.evaluate.anchors) and the conformal bands. The scores
are forecaster.evaluate.scores' (coverage, width, interval score, CRPS, log score,
PIT); the Diebold-Mariano tests (forecaster.evaluate.significance) compare the model
with GARCH-t on CRPS and the point forecast with naive on squared error;
"anchors" (forecaster.evaluate.risk_tests) holds the main distribution's ratio
to the best anchor, DM against each anchor on CRPS, IS80, IS95 and the log
score, VaR backtests and the 90% model confidence set;
P(up), the distribution's mass above the last price, is scored by
forecaster.evaluate.direction.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from forecaster.evaluate import baselines, combination, direction, scores
from forecaster.evaluate.calibration import widen_quantiles
from forecaster.evaluate.predictive import LocationScale, QuantileSet
from forecaster.evaluate.risk_tests import anchor_comparison
from forecaster.evaluate.significance import diebold_mariano, verdict
from forecaster.model.heads import QUANTILES, quantile_function
from forecaster.prep.windows import decode_outputs, feature_view, window_view

log = logging.getLogger("forecaster")

LEVELS = (0.8, 0.95)  # the central intervals scored (and written per day)
LABELS = {
    "model": "model",
    "model_cqr": "model + CQR",
    combination.KEY: combination.LABEL,
}  # the baselines' labels are theirs
NOT_ANCHORS = baselines.MODEL_BANDS  # baselines that are the model's own bands


def model_distribution(engine, prepared, cqr: dict | None = None):
    """The head's one-step distribution of each test day's price, or None (mse);
    see `head_distribution`."""
    split = prepared.split
    return head_distribution(engine, prepared, (split.test_targets[0], split.n), cqr)


def head_distribution(engine, prepared, targets: tuple[int, int], cqr=None):
    """The head's one-step distribution of the price on days `targets` (a range
    of indices into the series), or None for a point head.

    Normal and Student-t heads give a `LocationScale` (for "log-delta" the
    scale maps to prices to first order, P x scale, as the baselines do);
    quantile heads a `QuantileSet` (exact: quantiles map through the scaler).
    With a `cqr` record (forecaster.evaluate.calibration), the corrected bands as a
    `QuantileSet` at the median and the ends of the 80% and 95% intervals.
    """
    spec = engine.head
    if not spec.probabilistic:
        return None
    split = prepared.split
    contexts = window_view(prepared.scaled, split.window, targets)
    extra = feature_view(prepared.extra, split.window, targets)
    params = np.concatenate(
        [
            engine.predict_head(
                contexts[i : i + 4096], None if extra is None else extra[i : i + 4096]
            )[:, 0]
            for i in range(0, len(contexts), 4096)
        ]
    )
    base = decode_outputs(
        np.asarray(contexts, np.float64),
        np.zeros((len(contexts), 1)),
        engine.representation,
    )[:, 0]
    scaler = prepared.scaler
    name = f"model ({spec.kind})"
    if cqr is not None:
        return _corrected(spec, params[:, None], base, scaler, cqr)
    if spec.kind == "quantile":
        values = scaler.inverse_transform(base[:, None] + params)
        return QuantileSet(name, values, np.asarray(QUANTILES))
    location = scaler.inverse_transform(base + params[:, 0])
    scale = params[:, 1] / scaler.scale_ * (location if scaler.log else 1.0)
    df = float(params[0, 2]) if spec.kind == "student-t" else None
    return LocationScale(name, location, scale, df=df, params={"df": df})


def _corrected(spec, outputs, base, scaler, cqr) -> QuantileSet:
    levels = scores.quantile_levels(LEVELS)
    columns = [_column(level) for level in levels]
    moves = quantile_function(outputs, spec, levels)
    moves = widen_quantiles(moves, columns, dict(cqr, applied=True))[:, 0]
    return QuantileSet(
        "model + CQR", scaler.inverse_transform(base[:, None] + moves), levels
    )


def _column(level: float) -> str:
    """BAND_LEVELS' column name of a quantile level: lower_95, median, upper_80 ..."""
    if np.isclose(level, 0.5):
        return "median"
    band = round(abs(2 * level - 1) * 100)
    return f"{'lower' if level < 0.5 else 'upper'}_{band}"


def compare(engine, prepared, predictions, intervals: dict, cqr=None) -> dict:
    """Scores of the model's distribution and the baselines on the test days.

    `predictions`: evaluation.test_predictions' frame (one-step point
    forecasts); `intervals`: the one-step conformal intervals of the
    default method; `cqr`: the CQR record, scored as "model_cqr" (and the
    main distribution when applied). Returns (a JSON-ready dict for
    metrics.json, the main distribution: the model's, else the bands).
    """
    prices, n_train = prepared.prices, prepared.split.n_train
    actual = prices[n_train:]
    days = baselines.TestDays(
        prices,
        n_train,
        predictions["predicted"].to_numpy(),
        prepared.split.window,
        intervals,
        prepared.ohlc,
    )
    found = baselines.distributions(days)
    model = model_distribution(engine, prepared)
    methods = {"model": model} if model is not None else {}
    if cqr is not None:
        methods["model_cqr"] = model_distribution(engine, prepared, cqr)
    combined = _combination(engine, prepared, model, days, found)
    if combined is not None:
        methods[combination.KEY] = combined.distribution
    methods.update(found)
    key = "model_cqr" if cqr and cqr["applied"] else "model" if model else "conformal"
    if key == "model" and combined is not None and combined.preferred:
        key = combination.KEY  # validation prefers the pool to the model alone
    main = methods[key]
    result = {"levels": list(LEVELS), "main": key}
    if combined is not None:
        result["combination"] = combined.record()
    result["methods"] = {
        key: {"label": _label(key), **_json(scores.score_predictive(d, actual, LEVELS))}
        for key, d in methods.items()
    }
    # Five quantiles (CQR): a CRPS from them is not the closed form the others
    # report, so only its qCRPS compares. The pool's grid is fine enough (the
    # midpoint rule, within 5e-5 of a closed form): its CRPS is kept.
    if "model_cqr" in result["methods"]:
        result["methods"]["model_cqr"]["crps"] = None
    result["tests"] = _tests(main, found.get("garch_t"), predictions, actual)
    anchors = [k for k in found if k not in NOT_ANCHORS]
    result["anchors"] = anchor_comparison(key, methods, actual, anchors)
    if "best_refit" in found:  # chosen by BIC on the training days
        result["anchors"]["refit_family"] = found["best_refit"].params["family"]
    if hasattr(main, "cdf"):
        pit = main.cdf(actual)
        result["pit_counts"] = [int(c) for c in scores.pit_histogram(pit)]
        previous = prices[n_train - 1 : -1]
        p_up = np.clip(1.0 - main.cdf(previous), 0.0, 1.0)
        result["direction"] = _direction(p_up, actual, previous, prices[:n_train])
    return result, main


def _combination(engine, prepared, model, days, found):
    """The model pooled with the best anchor, chosen on the validation slice."""
    if model is None:
        return None
    val_start = prepared.split.val_targets[0]
    model_val = head_distribution(engine, prepared, (val_start, days.n_train))
    return combination.combine(model_val, model, days, val_start, found)


def _json(scores_of_one: dict) -> dict:
    """NaN (a score a method has no value for) as None: metrics.json stays strict."""
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in scores_of_one.items()
    }


def _label(key: str) -> str:
    return LABELS[key] if key in LABELS else baselines.label(key)


def _tests(main, garch, predictions, actual) -> dict:
    """DM: the model vs GARCH-t on CRPS and interval scores; point vs naive on MSE."""
    tests = {}
    point = (predictions["predicted"] - predictions["actual"]) ** 2
    naive = (predictions["naive"] - predictions["actual"]) ** 2
    tests["point_vs_naive_squared_error"] = _dm(point, naive, "model", "naive")
    if garch is None:
        return tests
    if isinstance(main, (LocationScale, QuantileSet)):
        ours, theirs = main.crps(actual), _matching_crps(main, garch, actual)
    else:
        grid = scores.quantile_levels(LEVELS)
        ours, theirs = (
            scores.crps_quantiles(
                actual, np.stack([d.quantile(t) for t in grid], 1), grid
            )
            for d in (main, garch)
        )
    tests["model_vs_garch_crps"] = _dm(ours, theirs, "model", "GARCH-t")
    for level in LEVELS:
        losses = [
            scores.interval_score(actual, *d.interval(level), level)
            for d in (main, garch)
        ]
        tests[f"model_vs_garch_interval_score_{level:g}"] = _dm(
            *losses, "model", "GARCH-t"
        )
    return tests


def _matching_crps(main, garch, actual):
    """GARCH's CRPS scored the way the model's is: closed form, or on its levels."""
    if isinstance(main, QuantileSet):
        values = np.stack([garch.quantile(t) for t in main.levels], axis=1)
        return scores.crps_quantiles(actual, values, main.levels)
    return garch.crps(actual)


def _dm(loss_a, loss_b, name_a: str, name_b: str) -> dict:
    result = diebold_mariano(np.asarray(loss_a), np.asarray(loss_b))
    return {
        "ratio": result.ratio,
        "p_value": result.p_value,
        "statistic": result.statistic,
        "verdict": verdict(result, name_a, name_b),
    }


def _direction(p_up, actual, previous, train_prices) -> dict | None:
    """P(up) scored against the base rate, with its reliability table's rows."""
    try:
        result = direction.direction_scores(
            p_up, actual, previous, direction.base_rate(train_prices)
        )
    except Exception as error:  # too few moved days, a constant forecast
        log.warning("P(up) could not be scored: %s", error)
        return None
    moved = direction.moved_days(actual, previous)
    up = direction.up_labels(actual, previous)
    table = direction.reliability(p_up[moved], up[moved])
    return {**result, "reliability": direction.reliability_records(table)}


def bounds_columns(main) -> dict:
    """The model's one-step median and bounds per test day, for test_predictions.csv."""
    columns = {"median": main.quantile(0.5)}
    for level in LEVELS:
        lower, upper = main.interval(level)
        tag = round(level * 100)
        columns[f"lower_{tag}"], columns[f"upper_{tag}"] = lower, upper
    return columns
