"""Forecasting in prices: paths from many origins, the future forecast with bands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.calendars import DEFAULT_CALENDAR
from forecaster.config import check_at_least
from forecaster.errors import ForecasterError
from forecaster.intervals import (
    INTERVAL_LEVELS,
    RESIDUAL_SCALE,
    half_widths,
    scale_of,
)
from forecaster.windows import window_view

METHODS = ("recursive", "direct")


def block_for(method: str, horizon: int) -> int:
    """Steps kept per model call: 1 for recursive, the model's horizon for direct."""
    if method not in METHODS:
        raise ForecasterError(
            f"Unknown method {method!r}: choose one of {', '.join(METHODS)}."
        )
    return 1 if method == "recursive" else horizon


def forecast_future(
    engine,
    values: pd.Series,
    scaler,
    days: int,
    method: str,
    intervals: dict | None = None,
    block: int | None = None,
    calendar: str = DEFAULT_CALENDAR,
) -> pd.DataFrame:
    """Forecast `days` sessions of `calendar` past the last date of `values` (prices).

    Returns columns date, forecast and, when `intervals` are given,
    lower_80, upper_80, lower_95, upper_95 (price units).
    """
    check_at_least("days", days)
    window = engine.window
    if len(values) < window:
        raise ForecasterError(
            f"need at least {window} prices to forecast with window={window}, got "
            f"{len(values)}. Give a longer series."
        )
    context = scaler.transform(values.to_numpy()[-window:])[None, :]
    block = block or block_for(method, engine.horizon)
    path = scaler.inverse_transform(engine.forecast(context, days, block))[0]
    frame = pd.DataFrame(
        {
            "date": future_dates(values.index[-1], days, calendar).strftime("%Y-%m-%d"),
            "forecast": path,
        }
    )
    if intervals and intervals.get("scale") != RESIDUAL_SCALE:
        raise ForecasterError(
            f"The bundle's intervals use scale {intervals.get('scale')!r}, this "
            f"version expects {RESIDUAL_SCALE!r}: the bundle is incompatible, retrain "
            "it."
        )
    if intervals:
        scale = float(scale_of(values.to_numpy()[-window:])[0])
        for level in INTERVAL_LEVELS:
            width = half_widths(intervals, level, days) * scale
            tag = round(level * 100)
            frame[f"lower_{tag}"] = path - width
            frame[f"upper_{tag}"] = path + width
    return frame


def future_dates(
    last: pd.Timestamp, days: int, calendar: str = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    """The next `days` sessions of exchange `calendar` after `last` (no holidays)."""
    from forecaster.calendars import sessions_after

    return sessions_after(last, days, calendar)


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


def check_block(method: str, horizon: int | None, trained: int) -> int:
    """Steps kept per model call for `method`; `horizon` may lower the direct one.

    `trained` is the model's own horizon. Raises when `horizon` is outside
    1..trained.
    """
    default = block_for(method, trained)
    if horizon is None:
        return default
    if horizon > trained:
        raise ForecasterError(
            f"horizon {horizon} is larger than the model was trained for "
            f"({trained}): retrain with horizon={horizon}, or use {trained} or less. "
            f"Received: horizon={horizon}"
        )
    if horizon < 1:
        raise ForecasterError(
            f"horizon must be at least 1. Received: horizon={horizon}"
        )
    return horizon
