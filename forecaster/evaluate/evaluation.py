"""Evaluation in price units: the model beside the naive "tomorrow = today" forecast.

Every figure is computed for the model and for the naive baseline on the same
days. Prediction intervals are split-conformal: their widths come from the
model's residuals on the validation slice (end of the training part), never
from the test part, which only measures the coverage they achieve
(forecaster.evaluate.intervals).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecaster.evaluate import direction
from forecaster.evaluate.calibration import fit_cqr
from forecaster.evaluate.comparison import bounds_columns, compare
from forecaster.evaluate.drift import choose_drift
from forecaster.evaluate.intervals import (
    INTERVAL_LEVELS,
    MAX_INTERVAL_STEPS,
    conformal_intervals,
    coverage,
    interval_steps,
    scale_of,
)
from forecaster.evaluate.multistep import future_record, multi_step
from forecaster.model.paths import block_for, damp_drift, paths
from forecaster.prep.windows import feature_view, window_view

MIN_EVAL_STEPS = 10  # error-by-step is reported for at least this many steps


def test_predictions(engine, prepared) -> pd.DataFrame:
    """One-step predictions for every test day: columns date, actual, predicted, naive.

    Each test day t is predicted from the `window` prices before it (the
    first ones come from the end of the training part); naive = price on t-1.
    """
    start, stop = _test_range(prepared)
    scaled = _first_step(engine.predict, prepared)
    return pd.DataFrame(
        {
            "date": prepared.dates[start:stop].strftime("%Y-%m-%d"),
            "actual": prepared.prices[start:stop],
            "predicted": prepared.scaler.inverse_transform(scaled),
            "naive": prepared.prices[start - 1 : stop - 1],
        }
    )


def _test_range(prepared) -> tuple[int, int]:
    """(start, stop): every test day, whatever the horizon (only step 1 is used)."""
    return prepared.split.test_targets[0], prepared.split.n


def _first_step(call, prepared, batch: int = 4096) -> np.ndarray:
    """Step 1 of `call(windows, extra)` for every test day, (n_test_days,)."""
    window = prepared.split.window
    days = _test_range(prepared)
    contexts = window_view(prepared.scaled, window, days)
    extra = feature_view(prepared.extra, window, days)
    return np.concatenate(
        [
            call(
                contexts[i : i + batch], None if extra is None else extra[i : i + batch]
            )[:, 0]
            for i in range(0, len(contexts), batch)
        ]
    )


def scores(actual, predicted, previous) -> dict:
    """RMSE, MAE, MAPE (%) and directional accuracy of `predicted` against `actual`.

    All arrays (n,) in price units; `previous` is the last known price before
    each day. Directional accuracy counts the days the price moved on which
    the predicted move had the same sign as the real one.
    """
    actual, predicted, previous = (
        np.asarray(a, dtype=np.float64) for a in (actual, predicted, previous)
    )
    error = predicted - actual
    moved = actual != previous
    same = np.sign(predicted - previous) == np.sign(actual - previous)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error) / actual) * 100),
        "directional_accuracy": float(same[moved].mean()) if moved.any() else math.nan,
    }


def naive_scores(actual, previous) -> dict:
    """The naive forecast's scores: tomorrow = today.

    "Tomorrow = today" predicts no move, so its directional accuracy is
    reported as that of the simplest direction forecast, "always up".
    """
    previous = np.asarray(previous, dtype=np.float64)
    result = scores(actual, previous, previous)
    actual = np.asarray(actual, dtype=np.float64)
    moved = actual != previous
    result["directional_accuracy"] = (
        float((actual > previous)[moved].mean()) if moved.any() else math.nan
    )
    return result


def format_table(model: dict, naive: dict, title: str = "test") -> str:
    """A small text table of the model's scores beside the naive baseline's."""
    rows = [
        ("RMSE", "rmse", "{:.4f}"),
        ("MAE", "mae", "{:.4f}"),
        ("MAPE %", "mape", "{:.3f}"),
        ("Direction", "directional_accuracy", "{:.3f}"),
    ]
    lines = [f"{title:<12}{'model':>12}{'naive':>12}{'model/naive':>14}"]
    for label, key, fmt in rows:
        ratio = model[key] / naive[key] if naive[key] else math.nan
        lines.append(
            f"{label:<12}{fmt.format(model[key]):>12}{fmt.format(naive[key]):>12}"
            f"{ratio:>14.3f}"
        )
    lines.append("(naive = tomorrow's price is today's; its direction = always up)")
    return "\n".join(lines)


# ------------------------------------------------------------------ multi-step


def step_errors(engine, prepared, steps: int, drift: float = 1.0) -> pd.DataFrame:
    """Test RMSE by step 1..steps: recursive, direct (if horizon > 1) and naive.

    Only origins whose whole path lies in the test part count, so every step
    is scored on the same origins. A model with input features beside the
    price has no recursive loop: only its direct column is scored. With a
    `drift` weight below 1 (forecaster.model.paths.choose_drift) the recursive
    path's move is damped by it, and the raw path is scored as "undamped".
    """
    split, prices = prepared.split, prepared.prices
    start, stop = split.test_targets[0], split.n - steps + 1
    if stop <= start:
        return pd.DataFrame(columns=["step", "recursive", "naive"])
    actual = np.lib.stride_tricks.sliding_window_view(
        prices[start : stop + steps - 1], steps
    )
    last = prices[start - 1 : stop - 1, None]
    table = {"step": np.arange(1, steps + 1)}
    features = prepared.extra is not None
    if not features:
        raw = paths(engine, prepared, (start, stop), steps, 1)
        damped = damp_drift(raw, last, drift, prepared.scaler.log)
        table["recursive"] = _rmse_by_step(damped, actual)
        if drift != 1.0:
            table["undamped"] = _rmse_by_step(raw, actual)
    if engine.horizon > 1 or features:
        table["direct"] = _rmse_by_step(
            paths(engine, prepared, (start, stop), steps, engine.horizon), actual
        )
    table["naive"] = _rmse_by_step(np.broadcast_to(last, actual.shape), actual)
    return pd.DataFrame(table)


def _conformal_coverage(prepared, predictions, one_step: dict) -> dict:
    """Share of test days inside each one-step conformal band, by level (as text)."""
    split = prepared.split
    scale = scale_of(
        window_view(prepared.prices, split.window, (split.n_train, split.n))
    )
    return {
        str(level): coverage(
            predictions["actual"],
            predictions["predicted"],
            scale,
            one_step[str(level)][0],
        )
        for level in INTERVAL_LEVELS
    }


def _rmse_by_step(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((predicted - actual) ** 2, axis=0))


def evaluate(engine, prepared, calibrate: bool = False) -> dict:
    """Test scores beside naive, error by step, intervals and their test coverage.

    `engine` is any forecasting engine of the trained model (forecaster.model.engines).
    A probabilistic head's CQR correction (forecaster.evaluate.calibration) is
    measured on validation and kept in each method's intervals; `calibrate`
    applies it to the test bounds (and, through intervals.json, forecasts).
    Returns predictions (DataFrame), metrics (dict for metrics.json),
    intervals (per method), by_step (DataFrame), table (text) and the
    default method. A direction model (objective="direction") is scored by
    `evaluate_direction` instead.
    """
    if engine.head.kind == "direction":
        return evaluate_direction(engine, prepared)
    predictions = test_predictions(engine, prepared)
    actual, previous = predictions["actual"], predictions["naive"]
    model_scores = scores(actual, predictions["predicted"], previous)
    baseline = naive_scores(actual, previous)
    horizon = engine.horizon
    features = prepared.extra is not None
    default_method = "direct" if horizon > 1 or features else "recursive"
    # With input features only one model call per origin is possible (direct).
    methods = {default_method} if features else {"recursive", default_method}
    intervals = {
        method: engine_intervals(engine, prepared, block_for(method, horizon))
        for method in methods
    }
    one_step_method = intervals["recursive" if "recursive" in methods else "direct"]
    achieved = _conformal_coverage(prepared, predictions, one_step_method["levels"])
    cqr = fit_cqr(engine, prepared, calibrate) if engine.head.probabilistic else None
    for entry in intervals.values():
        if cqr is not None:
            entry["cqr"] = cqr
    # one BLAS thread for the scores and anchors: small products, and OpenBLAS's
    # threads spin for the cores on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        distribution, main = compare(
            engine, prepared, predictions, one_step_method, cqr
        )
    predictions = predictions.assign(**bounds_columns(main))
    pool = distribution.get("combination")
    if pool and distribution["main"] == "combined":  # forecasts pool their bands
        pool["future"] = future_record(prepared, pool)
    if engine.head.probabilistic:  # the bands a forecast shows are the head's
        scored = distribution["methods"][distribution["main"]]
        achieved = {str(k): scored[f"coverage_{k:g}"] for k in INTERVAL_LEVELS}
    steps = horizon if features else max(horizon, MIN_EVAL_STEPS)
    drift = None if features else choose_drift(engine, prepared, steps)
    by_step = step_errors(engine, prepared, steps, drift["weight"] if drift else 1.0)
    metrics = {
        "test_days": len(predictions),
        "test_start": predictions["date"].iloc[0],
        "test_end": predictions["date"].iloc[-1],
        "model": model_scores,
        "naive": baseline,
        "rmse_ratio_to_naive": model_scores["rmse"] / baseline["rmse"],
        "interval_coverage_one_step": achieved,
        "rmse_by_step": by_step.to_dict(orient="list"),
        "drift": drift,  # the recursive path's damping, chosen on validation
        "distribution": distribution,
        "multi_step": multi_step(engine, prepared, distribution),  # 5, 10 days
    }
    return {
        "predictions": predictions,
        "metrics": metrics,
        "intervals": intervals,
        "by_step": by_step,
        "table": format_table(model_scores, baseline),
        "default_method": default_method,
    }


# ------------------------------------------------------------------ direction


def direction_predictions(engine, prepared) -> pd.DataFrame:
    """P(up) for every test day: columns date, actual, previous, p_up, up.

    Each test day t gets the model's P(price on t > price on t-1) from the
    `window` prices before it, as `test_predictions` predicts the price;
    up is 1 or 0, and empty on a day the price did not move.
    """
    start, stop = _test_range(prepared)
    actual = prepared.prices[start:stop]
    previous = prepared.prices[start - 1 : stop - 1]
    up = pd.array((actual > previous).astype(int), dtype="Int64")
    up[actual == previous] = pd.NA
    return pd.DataFrame(
        {
            "date": prepared.dates[start:stop].strftime("%Y-%m-%d"),
            "actual": actual,
            "previous": previous,
            "p_up": _first_step(engine.predict_head, prepared),
            "up": up,
        }
    )


def evaluate_direction(engine, prepared) -> dict:
    """A direction model's test scores beside the base rate and "always up".

    The same keys as `evaluate`: predictions (`direction_predictions`),
    metrics (test days, the scores of forecaster.evaluate.direction.direction_scores
    under "direction", the reliability table as records under
    "reliability"), table (text), intervals ({}: no price bands), by_step
    (empty: no price path) and default_method ("direct": one model call).
    The base rate is the share of up days among the moved days of the
    training part only.
    """
    predictions = direction_predictions(engine, prepared)
    train_rate = direction.base_rate(prepared.prices[: prepared.split.n_train])
    actual, previous = predictions["actual"], predictions["previous"]
    p_up = predictions["p_up"].to_numpy()
    result = direction.direction_scores(p_up, actual, previous, train_rate)
    moved = direction.moved_days(actual, previous)
    up = direction.up_labels(actual, previous)
    table = direction.reliability(p_up[moved], up[moved])
    metrics = {
        "test_days": len(predictions),
        "test_start": predictions["date"].iloc[0],
        "test_end": predictions["date"].iloc[-1],
        "direction": result,
        "reliability": direction.reliability_records(table),
    }
    return {
        "predictions": predictions,
        "metrics": metrics,
        "intervals": {},
        "by_step": pd.DataFrame(),
        "table": direction.format_direction_table(result),
        "default_method": "direct",
    }


def engine_intervals(
    engine, prepared, block: int, max_steps: int = MAX_INTERVAL_STEPS
) -> dict:
    """Split-conformal intervals of an engine's forecasts from the validation origins.

    The engine forecasts up to `max_steps` ahead (fewer when the validation
    slice is short, see `interval_steps`), `block` steps per model call.
    """
    split = prepared.split
    steps = interval_steps(split, max_steps)
    if prepared.extra is not None:  # one call per origin: its horizon at most
        steps = min(steps, engine.horizon)
    predicted = paths(engine, prepared, split.val_targets, steps, block)
    return conformal_intervals(prepared.prices, split, predicted, block)


def score_table(metrics: dict) -> pd.DataFrame:
    """The model-vs-naive scores of `metrics` as a frame: one row per measure."""
    rows = {}
    for key in ("rmse", "mae", "mape", "directional_accuracy"):
        model, naive = metrics["model"][key], metrics["naive"][key]
        rows[key] = {
            "model": model,
            "naive": naive,
            "model/naive": model / naive if naive else math.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index")
