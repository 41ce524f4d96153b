"""Evaluation in price units: the model beside the naive "tomorrow = today" forecast.

Every figure is computed for the model and for the naive baseline on the same
days. Prediction intervals are split-conformal: their widths come from the
model's residuals on the validation slice (end of the training part), never
from the test part, which only measures the coverage they achieve.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.windows import window_view

INTERVAL_LEVELS = (0.8, 0.95)  # two-sided coverage of the forecast bands
MAX_INTERVAL_STEPS = 30  # steps whose residuals are measured; later steps grow as sqrt
MIN_RESIDUALS = 20  # fewest validation residuals a step's quantile may rest on
VOLATILITY_DAYS = 20  # daily log returns whose spread scales the interval residuals
MIN_VOLATILITY = 1e-4  # floor on that spread, so flat prices still get a band
RESIDUAL_SCALE = "last_price_x_volatility"  # recorded in intervals.json


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


def paths(
    engine, prepared, targets: tuple[int, int], steps: int, block: int
) -> np.ndarray:
    """Forecasts from each origin t in `targets`, `steps` ahead: (n_origins, steps)."""
    contexts = window_view(prepared.scaled, prepared.split.window, targets)
    out = []
    for start in range(0, len(contexts), 2048):
        out.append(engine.forecast(contexts[start : start + 2048], steps, block))
    scaled = np.concatenate(out) if out else np.empty((0, steps))
    return prepared.scaler.inverse_transform(scaled)


def step_errors(engine, prepared, steps: int) -> pd.DataFrame:
    """Test RMSE by step 1..steps: recursive, direct (if horizon > 1) and naive.

    Only origins whose whole path lies in the test part count, so every step
    is scored on the same origins.
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
    table["recursive"] = _rmse_by_step(
        paths(engine, prepared, (start, stop), steps, 1), actual
    )
    if engine.horizon > 1:
        table["direct"] = _rmse_by_step(
            paths(engine, prepared, (start, stop), steps, engine.horizon), actual
        )
    table["naive"] = _rmse_by_step(np.broadcast_to(last, actual.shape), actual)
    return pd.DataFrame(table)


def _rmse_by_step(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((predicted - actual) ** 2, axis=0))


# ------------------------------------------------------------------- intervals


def conformal_intervals(
    engine, prepared, block: int, max_steps: int = MAX_INTERVAL_STEPS
):
    """Split-conformal interval half-widths per step, from validation residuals.

    Each residual is scaled by the price scale of its day, last price x recent
    volatility (`scale_of`), so a band keeps its meaning when prices leave the
    training range and widens in turbulent times. Returns
    {"steps": k, "levels": {"0.8": [q_1..q_k], "0.95": [...]}, ...}: the
    half-width for step h is q_h x scale.
    """
    split, prices = prepared.split, prepared.prices
    val_start, val_stop = split.val_targets
    steps = max(1, min(max_steps, split.n_train - val_start - MIN_RESIDUALS + 1))
    predicted = paths(engine, prepared, (val_start, val_stop), steps, block)
    scale = scale_of(window_view(prices, split.window, (val_start, val_stop)))
    quantiles = {str(level): [] for level in INTERVAL_LEVELS}
    counts = []
    for h in range(steps):
        t = np.arange(val_start, val_stop) + h
        ok = t < split.n_train
        residual = np.abs(prices[t[ok]] - predicted[ok, h]) / scale[ok]
        counts.append(int(ok.sum()))
        for level in INTERVAL_LEVELS:
            quantiles[str(level)].append(conformal_quantile(residual, level))
    return {
        "method": "split-conformal on the validation slice: |actual - forecast| / "
        "(last price x std of the last 20 daily log returns); steps past the "
        "measured ones grow with sqrt(step)",
        "scale": RESIDUAL_SCALE,
        "block": block,
        "steps": steps,
        "residuals_per_step": counts,
        "levels": quantiles,
    }


def scale_of(windows: np.ndarray) -> np.ndarray:
    """Price scale of each window (b, window) in prices: last price x recent volatility.

    Volatility is the standard deviation of the last `VOLATILITY_DAYS` daily
    log returns (fewer if the window is shorter), floored so that a flat
    stretch of prices cannot give a zero-width band. Returns (b,).
    """
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim == 1:
        windows = windows[None, :]
    returns = np.diff(np.log(windows[:, -(VOLATILITY_DAYS + 1) :]), axis=1)
    volatility = returns.std(axis=1) if returns.shape[1] > 1 else np.zeros(len(windows))
    return windows[:, -1] * np.maximum(volatility, MIN_VOLATILITY)


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest residual (finite-sample conformal rank)."""
    ordered = np.sort(np.asarray(residuals, dtype=np.float64))
    rank = min(len(ordered), math.ceil((len(ordered) + 1) * level))
    return float(ordered[rank - 1])


def half_widths(intervals: dict, level: float, steps: int) -> np.ndarray:
    """Relative half-widths for steps 1..steps; past the measured ones, grow as sqrt."""
    measured = np.asarray(intervals["levels"][str(level)], dtype=np.float64)
    if steps <= len(measured):
        return measured[:steps]
    extra = np.arange(len(measured) + 1, steps + 1)
    grown = measured[-1] * np.sqrt(extra / len(measured))
    return np.concatenate([measured, grown])


def coverage(actual, predicted, scale, half_width: float) -> float:
    """Share of days with |actual - predicted| <= half_width * scale (all (n,))."""
    actual, predicted, scale = (
        np.asarray(a, dtype=np.float64) for a in (actual, predicted, scale)
    )
    return float(np.mean(np.abs(actual - predicted) <= half_width * scale))
