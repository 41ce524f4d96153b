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
from forecaster.windows import feature_view, window_view

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
    _check_length(values, window)
    context = scaler.transform(values.to_numpy()[-window:])[None, :]
    block = block or block_for(method, engine.horizon)
    path = scaler.inverse_transform(engine.forecast(context, days, block))[0]
    return banded_frame(values, path, intervals, window, calendar)


def forecast_direction(
    engine, values: pd.Series, scaler, calendar: str = DEFAULT_CALENDAR
) -> pd.DataFrame:
    """A direction model's P(up) for the next session of `calendar` after `values`.

    From the last `window` prices (n,). One row: date, and p_up, the
    probability that that session closes above the last price.
    """
    window = engine.window
    _check_length(values, window)
    context = scaler.transform(values.to_numpy()[-window:])[None, :]
    p_up = float(engine.predict_head(context)[0, 0])
    date = future_dates(values.index[-1], 1, calendar).strftime("%Y-%m-%d")
    return pd.DataFrame({"date": date, "p_up": [p_up]})


def banded_frame(values, path, intervals, window: int, calendar: str) -> pd.DataFrame:
    """A forecast `path` (days,) after `values` as date, forecast and its bands.

    The bands are the conformal half-widths of `intervals` (none if None)
    times the price scale of the last `window` prices.
    """
    days = len(path)
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


def _check_length(values, window: int) -> None:
    if len(values) < window:
        raise ForecasterError(
            f"need at least {window} prices to forecast with window={window}, got "
            f"{len(values)}. Give a longer series."
        )


def forecast_panel(
    engine,
    parts: dict,
    days: int,
    method: str,
    intervals: dict,
    calendar: str = DEFAULT_CALENDAR,
) -> pd.DataFrame:
    """Every series of a panel forecast in one batched engine call (or loop).

    `parts`: name -> windows.Prepared (its last `window` days are the
    context, with their extra features); `intervals`: name -> intervals.
    Returns the long frame: series, date, forecast and the bands.
    """
    check_at_least("days", days)
    window = engine.window
    names = list(parts)
    contexts = np.stack([parts[n].scaled[-window:] for n in names])
    has_extra = parts[names[0]].extra is not None
    block = block_for(method, engine.horizon)
    if has_extra:
        if days > engine.horizon:
            raise ForecasterError(
                f"days must be at most the model's horizon {engine.horizon} when it "
                "takes input features other than the price: their future values "
                "are unknown, so no recursive loop can feed them. Train with a "
                f"larger horizon (direct forecasts). Received: days={days}"
            )
        extra = np.stack([parts[n].extra[-window:] for n in names])
        scaled = engine.forecast(contexts, days, engine.horizon, extra)
    else:
        scaled = engine.forecast(contexts, days, block)
    frames = []
    for row, name in enumerate(names):
        part = parts[name]
        values = pd.Series(part.prices, index=part.dates)
        path = part.scaler.inverse_transform(scaled[row])
        frame = banded_frame(values, path, intervals.get(name), window, calendar)
        frames.append(frame.assign(series=name))
    long = pd.concat(frames, ignore_index=True)
    return long[["series", *[c for c in long.columns if c != "series"]]]


def future_dates(
    last: pd.Timestamp, days: int, calendar: str = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    """The next `days` sessions of exchange `calendar` after `last` (no holidays)."""
    from forecaster.calendars import sessions_after

    return sessions_after(last, days, calendar)


def paths(
    engine, prepared, targets: tuple[int, int], steps: int, block: int
) -> np.ndarray:
    """Forecasts from each origin t in `targets`, `steps` ahead: (n_origins, steps).

    With extra input features (`prepared.extra`) the model is called once per
    origin (direct), so `steps` is at most its horizon.
    """
    contexts = window_view(prepared.scaled, prepared.split.window, targets)
    extra = feature_view(prepared.extra, prepared.split.window, targets)
    out = []
    for start in range(0, len(contexts), 2048):
        part = slice(start, start + 2048)
        if extra is None:
            out.append(engine.forecast(contexts[part], steps, block))
        else:
            out.append(engine.forecast(contexts[part], steps, block, extra[part]))
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
