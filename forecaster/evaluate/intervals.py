"""Split-conformal prediction intervals: half-widths from validation residuals.

The widths come from the model's residuals on the validation slice (the end
of the training part), never from the test part, which only measures the
coverage they achieve. Residuals are divided by a price scale, last price x
recent volatility, so a band keeps its meaning at new price levels.
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.prep.windows import window_view

INTERVAL_LEVELS = (0.8, 0.95)  # two-sided coverage of the forecast bands
MAX_INTERVAL_STEPS = 30  # steps whose residuals are measured; later steps grow as sqrt
MIN_RESIDUALS = 20  # fewest validation residuals a step's quantile may rest on
VOLATILITY_DAYS = 20  # daily log returns whose spread scales the interval residuals
MIN_VOLATILITY = 1e-4  # floor on that spread, so flat prices still get a band
RESIDUAL_SCALE = "last_price_x_volatility"  # recorded in intervals.json


def conformal_intervals(prices: np.ndarray, split, predicted: np.ndarray, block: int):
    """Split-conformal interval half-widths per step, from validation residuals.

    `prices` (n,) in price units; `predicted` (n_val, steps): the forecast
    paths from each validation origin t in `split.val_targets` (see
    `forecaster.model.paths.paths`). Each residual is scaled by the price scale
    of its day, last price x recent volatility (`scale_of`), so a band keeps
    its meaning when prices leave the training range and widens in turbulent
    times. Only residuals whose day lies in the training part count. Returns
    {"steps": k, "levels": {"0.8": [q_1..q_k], "0.95": [...]}, ...}: the
    half-width for step h is q_h x scale.
    """
    val_start, val_stop = split.val_targets
    steps = predicted.shape[1]
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


def interval_steps(split, max_steps: int = MAX_INTERVAL_STEPS) -> int:
    """Steps whose residuals rest on at least MIN_RESIDUALS validation days."""
    val_start = split.val_targets[0]
    return max(1, min(max_steps, split.n_train - val_start - MIN_RESIDUALS + 1))


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
