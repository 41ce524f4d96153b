"""Forecasting in prices: paths from many origins, the future forecast with bands.

The bands are split-conformal (forecaster.evaluate.intervals) for a point model, and
quantiles of the model's own distribution for a probabilistic head.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.config import check_at_least
from forecaster.data.calendars import DEFAULT_CALENDAR
from forecaster.errors import ForecasterError
from forecaster.evaluate.calibration import widen_quantiles
from forecaster.evaluate.intervals import (
    INTERVAL_LEVELS,
    RESIDUAL_SCALE,
    half_widths,
    scale_of,
)
from forecaster.model.paths import block_for


def _band_levels() -> dict[str, float]:
    """Column -> quantile level of a distribution forecast: median and the bands."""
    levels = {"median": 0.5}
    for level in INTERVAL_LEVELS:
        tag = round(level * 100)
        levels[f"lower_{tag}"] = round((1 - level) / 2, 10)
        levels[f"upper_{tag}"] = round((1 + level) / 2, 10)
    return levels


BAND_LEVELS = _band_levels()  # median 0.5, lower_80 0.1, upper_80 0.9, ...


def forecast_future(
    engine,
    values: pd.Series,
    scaler,
    days: int,
    method: str,
    intervals: dict | None = None,
    block: int | None = None,
    calendar: str = DEFAULT_CALENDAR,
    samples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Forecast `days` sessions of `calendar` past the last date of `values` (prices).

    Returns columns date, forecast and, when `intervals` are given,
    lower_80, upper_80, lower_95, upper_95 (price units). A model with a
    probabilistic head gives its own distribution instead of `intervals`:
    columns date, forecast, median and the four bands, read from the head
    when `days` fit in one model call, else quantiles of `samples` paths
    drawn with `seed` (see `distribution_quantiles`).
    """
    check_at_least("days", days)
    window = engine.window
    _check_length(values, window)
    context = scaler.transform(values.to_numpy()[-window:])[None, :]
    block = block or block_for(method, engine.horizon)
    path = scaler.inverse_transform(engine.forecast(context, days, block))[0]
    if not engine.head.probabilistic:
        return banded_frame(values, path, intervals, window, calendar)
    scaled = distribution_quantiles(engine, context, days, block, samples, seed)
    scaled = widen_quantiles(scaled, list(BAND_LEVELS), (intervals or {}).get("cqr"))
    return quantile_frame(values, path, scaler.inverse_transform(scaled[0]), calendar)


def distribution_quantiles(
    engine, context, days: int, block: int, samples: int, seed: int, extra=None
) -> np.ndarray:
    """The BAND_LEVELS quantiles of each day, (b, days, len(BAND_LEVELS)) scaled.

    From the head of one model call when `days` fit in one `block` (a direct
    forecast, or one step), else from `samples` paths drawn with `seed`
    (Engine.sample_paths). `extra`: input features, one call only.
    """
    check_at_least("samples", samples)
    levels = list(BAND_LEVELS.values())
    if days <= block or extra is not None:
        return engine.step_quantiles(context, days, levels, extra)
    paths = engine.sample_paths(context, days, samples, seed, block)
    quantiles = np.moveaxis(np.quantile(paths, levels, axis=1), 0, -1)
    # the first call's days are known exactly from the head: no sampling noise
    quantiles[:, :block] = engine.step_quantiles(context, block, levels)
    return quantiles


def quantile_frame(values, path, quantiles, calendar: str) -> pd.DataFrame:
    """A forecast `path` (days,) and its quantiles (days, len(BAND_LEVELS)) as a frame.

    Columns date, forecast, median, lower_80, upper_80, lower_95, upper_95.
    """
    frame = _dated_frame(values, path, calendar)
    for column, values_at in zip(BAND_LEVELS, np.asarray(quantiles).T, strict=True):
        frame[column] = values_at
    return frame


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
    frame = _dated_frame(values, path, calendar)
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


def _dated_frame(values, path, calendar: str) -> pd.DataFrame:
    """Columns date (the sessions after the last of `values`) and forecast `path`."""
    dates = future_dates(values.index[-1], len(path), calendar)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "forecast": path})


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
    samples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every series of a panel forecast in one batched engine call (or loop).

    `parts`: name -> windows.Prepared (its last `window` days are the
    context, with their extra features); `intervals`: name -> intervals.
    Returns the long frame: series, date, forecast and the bands (with a
    median, from the model's distribution, for a probabilistic head: see
    `forecast_future`).
    """
    check_at_least("days", days)
    window = engine.window
    names = list(parts)
    contexts = np.stack([parts[n].scaled[-window:] for n in names])
    extra = None
    block = block_for(method, engine.horizon)
    if parts[names[0]].extra is not None:
        check_direct_days(days, engine.horizon)
        extra = np.stack([parts[n].extra[-window:] for n in names])
        block = engine.horizon
    scaled = engine.forecast(contexts, days, block, extra)
    quantiles = None
    if engine.head.probabilistic:
        quantiles = distribution_quantiles(
            engine, contexts, days, block, samples, seed, extra
        )
    frames = []
    for row, name in enumerate(names):
        part = parts[name]
        values = pd.Series(part.prices, index=part.dates)
        path = part.scaler.inverse_transform(scaled[row])
        if quantiles is None:
            frame = banded_frame(values, path, intervals.get(name), window, calendar)
        else:
            cqr = (intervals.get(name) or {}).get("cqr")
            own = widen_quantiles(quantiles[row : row + 1], list(BAND_LEVELS), cqr)
            in_prices = part.scaler.inverse_transform(own[0])
            frame = quantile_frame(values, path, in_prices, calendar)
        frames.append(frame.assign(series=name))
    long = pd.concat(frames, ignore_index=True)
    return long[["series", *[c for c in long.columns if c != "series"]]]


def check_direct_days(days: int, horizon: int) -> None:
    """With input features beside the price, a forecast reaches `horizon` days."""
    from forecaster.model.engines import check_direct_steps

    check_direct_steps(days, horizon, name="days")


def future_dates(
    last: pd.Timestamp, days: int, calendar: str = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    """The next `days` sessions of exchange `calendar` after `last` (no holidays)."""
    from forecaster.data.calendars import sessions_after

    return sessions_after(last, days, calendar)
