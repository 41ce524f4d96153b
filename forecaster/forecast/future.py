"""Forecasts past the last price: every series in one batched pass, with bands.

The bands are split-conformal (forecaster.evaluate.intervals) for a point model, and
quantiles of the model's own distribution for a probabilistic head.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from forecaster.config import check_at_least
from forecaster.data.calendars import DEFAULT_CALENDAR, sessions_after
from forecaster.errors import ForecasterError
from forecaster.evaluate.anchor_paths import (
    AnchorState,
    simulate_returns,
    stack_states,
)
from forecaster.evaluate.calibration import widen_quantiles
from forecaster.evaluate.intervals import (
    INTERVAL_LEVELS,
    RESIDUAL_SCALE,
    half_widths,
    scale_of,
)
from forecaster.model.engines import check_direct_steps
from forecaster.model.paths import damp_drift


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
    parts: dict,
    days: int,
    block: int,
    intervals: dict,
    calendar: str = DEFAULT_CALENDAR,
    samples: int = 512,
    seed: int = 0,
    drift: dict | None = None,
    anchored=(),
) -> pd.DataFrame:
    """Every series forecast `days` sessions of `calendar` past its last date.

    `parts`: name -> windows.Prepared (its last `window` days are the
    context, with their extra features); all series go through the engine
    in one batched call. `block`: steps kept per model call (1: recursive;
    with input features beside the price, the model's horizon).
    `intervals`: name -> that series' conformal intervals of the method
    used (or None). Returns the long frame: series, date, forecast and
    lower_80, upper_80, lower_95, upper_95 (price units). A model with a
    probabilistic head gives its own distribution instead of `intervals`:
    a median column too, and the bands read from the head when `days` fit
    in one model call, else quantiles of `samples` paths drawn with `seed`
    (see `distribution_quantiles`). `drift`: name -> the weight on the
    recursive point path's move that the evaluation chose and scored
    (metrics.json "drift", forecaster.evaluate.drift; 0 = the last price):
    the "forecast" column of a recursive forecast is that damped path, as
    the scored one was. A series missing from it keeps the raw path.
    `anchored`: names whose bands a pool takes wholly from its anchor
    (`anchored_series`): their paths are not drawn and their median and
    bands are NaN here, for `pool_series` to fill.
    """
    check_at_least("days", days)
    window = engine.window
    names = list(parts)
    for name in names:
        check_length(parts[name].prices, window)
    contexts = np.stack([parts[name].scaled[-window:] for name in names])
    extra = None
    if parts[names[0]].extra is not None:
        check_direct_days(days, engine.horizon)
        extra = np.stack([parts[name].extra[-window:] for name in names])
        block = engine.horizon
    scaled = engine.forecast(contexts, days, block, extra)
    quantiles = None
    if engine.head.probabilistic:
        drawn = [row for row, name in enumerate(names) if name not in anchored]
        quantiles = np.full((len(names), days, len(BAND_LEVELS)), np.nan)
        if drawn:
            quantiles[drawn] = distribution_quantiles(
                engine, contexts[drawn], days, block, samples, seed,
                None if extra is None else extra[drawn],
            )  # fmt: skip
    columns = []  # per series: (name, last date, {column: (days,) values})
    for row, name in enumerate(names):
        part = parts[name]
        path = part.scaler.inverse_transform(scaled[row])
        weight = (drift or {}).get(name)
        if weight is not None and block == 1 and extra is None:
            last = np.array([[part.prices[-1]]], np.float64)
            path = damp_drift(path[None], last, weight, part.scaler.log)[0]
        if quantiles is None:
            bands = band_columns(part.prices, path, intervals.get(name), window)
        elif name in anchored:
            bands = dict.fromkeys(BAND_LEVELS, np.full(days, np.nan))
        else:
            cqr = (intervals.get(name) or {}).get("cqr")
            own = widen_quantiles(quantiles[row : row + 1], list(BAND_LEVELS), cqr)
            in_prices = part.scaler.inverse_transform(own[0])
            bands = dict(zip(BAND_LEVELS, in_prices.T, strict=True))
        columns.append((name, part.dates[-1], {"forecast": path, **bands}))
    return long_frame(columns, days, calendar)


def forecast_pooled(
    engine, parts, days, block, intervals, calendar, samples, seed, drift, pools
) -> tuple[pd.DataFrame, str | None]:
    """(frame, line): `forecast_future`, its bands pooled as validation chose.

    The arguments are `forecast_future`'s, and `pools`: name -> the pool's
    record in metrics.json (distribution.combination, {} if none). A
    probabilistic head's bands pool with each series' anchor (`pool_plan`,
    `pool_series`); the anchors' paths are drawn on a thread of their own
    while the network's are sampled (NumPy's generators and kernels leave
    the GIL), and a series whose pool gives the network weight 0 draws no
    network paths at all. `line` says whose bands they are.
    """
    futures, line = {}, None  # a pool mixes quantiles: a probabilistic head's
    if engine.head.probabilistic:
        futures, line = pool_plan(parts, pools)
    with ThreadPoolExecutor(1) as beside:
        anchors = beside.submit(anchor_bands, futures, days, seed)
        frame = forecast_future(
            engine, parts, days, block, intervals, calendar, samples, seed, drift,
            anchored_series(futures),
        )  # fmt: skip
    return pool_series(frame, futures, anchors.result()), line


def long_frame(columns: list, days: int, calendar: str) -> pd.DataFrame:
    """The long frame series, date, then the columns of `columns`, built at once.

    `columns`: per series (name, its last date, {column: (days,) values});
    the dates are the `days` sessions of `calendar` after each last date
    (looked up once per distinct date). A column some series lack is NaN
    there.
    """
    names = list(dict.fromkeys(key for _, _, own in columns for key in own))
    dates = {
        last: future_dates(last, days, calendar).strftime("%Y-%m-%d").to_numpy()
        for last in {last for _, last, _ in columns}
    }
    gap = np.full(days, np.nan)
    frame = {
        "series": np.repeat([name for name, _, _ in columns], days),
        "date": np.concatenate([dates[last] for _, last, _ in columns]),
    }
    for key in names:
        frame[key] = np.concatenate([own.get(key, gap) for _, _, own in columns])
    return pd.DataFrame(frame)


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


POOL_SIMULATIONS = 2000  # the anchor's paths behind a pooled forecast's bands


def anchor_bands(futures: dict, days: int, seed: int = 0) -> dict:
    """name -> the anchor's BAND_LEVELS quantiles of the price, (days, levels).

    `futures`: name -> the pool's record (forecaster.evaluate.multistep.
    future_record). Each series' quantiles come from POOL_SIMULATIONS paths
    of its anchor's returns, drawn with `seed`; the series of one family
    (and one number of training pairs) are drawn together, in one array, so
    a panel's cost does not grow with a loop over its series.
    """
    groups = {}
    for name, future in futures.items():
        state = AnchorState.from_record(future["state"])
        key = (state.family, None if state.pairs is None else len(state.pairs))
        groups.setdefault(key, []).append((name, state, future["last_price"]))
    levels, bands = list(BAND_LEVELS.values()), {}
    for members in groups.values():
        names, states, last = zip(*members, strict=True)
        drawn = simulate_returns(stack_states(states), days, POOL_SIMULATIONS, seed)
        moves = np.quantile(np.cumsum(drawn, axis=-1), levels, axis=1)  # (l, b, d)
        prices = np.asarray(last)[None, :, None] * np.exp(moves / 100)
        bands.update(zip(names, np.moveaxis(prices, 0, -1), strict=True))
    return bands


def recorded_choices(metrics: dict, names, name: str, panel: bool):
    """(drift weights, pool records) by series in `names`, as the evaluation
    recorded them in `metrics` (metrics.json; per series for a `panel`,
    else the one series `name`'s).

    Drift: the recursive point path's weight (metrics "drift"); a series the
    model was not scored on takes the weight its series agree on, and one
    with no record (an older bundle) keeps the raw path (no entry). Pools:
    distribution.combination ({} if none).
    """
    # one series: its record whatever its part is called (a fitted
    # Forecaster's part and its saved bundle's name its series differently)
    by_series = (
        (metrics.get("series") or {}) if panel else dict.fromkeys(names, metrics)
    )
    weights = {
        key: (one.get("drift") or {}).get("weight") for key, one in by_series.items()
    }
    shared = {w for w in weights.values() if w is not None}
    default = shared.pop() if len(shared) == 1 else None
    drift = {key: weights.get(key, default) for key in names}
    pools = {
        key: ((by_series.get(key) or {}).get("distribution") or {}).get("combination")
        or {}
        for key in names
    }
    return {k: w for k, w in drift.items() if w is not None}, pools


def pool_plan(parts: dict, pools: dict) -> tuple[dict, str | None]:
    """(futures, line): the pool records that apply to `parts`, and whose bands.

    `pools`: name -> the pool's record in metrics.json
    (distribution.combination, {} if none). `futures`: name -> the pool's
    future record, for each series whose bands pool with its anchor; the
    anchor's state is the one after the bundle's last day, so a series whose
    prices end elsewhere keeps the network's bands. `line` says whose bands
    they are, and why (None when no series had a pool).
    """
    futures, lines = {}, set()
    for name, part in parts.items():
        pool = pools.get(name) or {}
        future = pool.get("future")
        if future and same_day(part, future):
            futures[name] = future
            weight = future["weight_model"]
            lines.add(
                f"bands: the pool chosen on validation, {weight:.0%} network + "
                f"{1 - weight:.0%} {future['anchor_label']}"
            )
        elif pool.get("preferred"):
            why = (
                f"its anchor state is for {future['last_date']}, these prices "
                f"end on {part.dates[-1]:%Y-%m-%d}"
                if future
                else "the bundle keeps no anchor state"
            )
            lines.add(
                "bands: the network's own (validation chose the pool with "
                f"{pool.get('anchor_label')}, but {why})"
            )
    return futures, "; ".join(sorted(lines)) or None


def anchored_series(futures: dict) -> set:
    """Names in `futures` (`pool_plan`) whose pool gives the network no weight.

    Their bands are the anchor's alone, so `forecast_future` need not draw
    their paths.
    """
    return {name for name, f in futures.items() if float(f["weight_model"]) == 0.0}


def pool_series(frame: pd.DataFrame, futures: dict, bands: dict) -> pd.DataFrame:
    """`frame` with each series in `futures` pooled with its anchor's `bands`.

    `frame`: forecast_future's long frame; `futures` from `pool_plan`;
    `bands`: `anchor_bands(futures, days)`. Each band column of a pooled
    series becomes w x the network's quantile + (1 - w) x the anchor's, w
    the model's weight validation chose; the "forecast" column is left
    alone.
    """
    if "median" not in frame or not futures:
        return frame
    rows_of = frame.groupby("series", sort=False).indices
    rows = np.concatenate([rows_of[name] for name in futures])
    days = len(rows_of[next(iter(futures))])
    weight = np.repeat([float(f["weight_model"]) for f in futures.values()], days)
    anchor = np.concatenate([bands[name] for name in futures])  # (rows, levels)
    pooled, own = frame.copy(), weight > 0  # weight 0: the network's were not drawn
    for k, column in enumerate(BAND_LEVELS):
        values = pooled[column].to_numpy(dtype=float, copy=True)
        mixed = (1 - weight) * anchor[:, k]
        mixed[own] += weight[own] * values[rows[own]]
        values[rows] = mixed
        pooled[column] = values
    return pooled


def same_day(part, future: dict) -> bool:
    """Whether `part` (a windows.Prepared) ends on the day `future` was filtered to."""
    last = f"{part.dates[-1]:%Y-%m-%d}"
    return last == future["last_date"] and math.isclose(
        float(part.prices[-1]), future["last_price"], rel_tol=1e-9
    )


def forecast_direction(engine, part, calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """A direction model's P(up) for the next session of `calendar` after `part`.

    From the last `window` days of `part` (a windows.Prepared). One row:
    date, and p_up, the probability that that session closes above the last
    price.
    """
    window = engine.window
    check_length(part.prices, window)
    p_up = float(engine.predict_head(part.scaled[-window:][None, :])[0, 0])
    date = future_dates(part.dates[-1], 1, calendar).strftime("%Y-%m-%d")
    return pd.DataFrame({"date": date, "p_up": [p_up]})


def band_columns(prices, path, intervals, window: int) -> dict:
    """The conformal bands {lower_80: (days,), upper_80: ...} around `path`.

    The half-widths of `intervals` (no bands if None) times the price scale
    of the last `window` of `prices`.
    """
    if intervals and intervals.get("scale") != RESIDUAL_SCALE:
        raise ForecasterError(
            f"The bundle's intervals use scale {intervals.get('scale')!r}, this "
            f"version expects {RESIDUAL_SCALE!r}: the bundle is incompatible, retrain "
            "it."
        )
    if not intervals:
        return {}
    scale = float(scale_of(np.asarray(prices)[-window:])[0])
    bands = {}
    for level in INTERVAL_LEVELS:
        width = half_widths(intervals, level, len(path)) * scale
        tag = round(level * 100)
        bands[f"lower_{tag}"] = path - width
        bands[f"upper_{tag}"] = path + width
    return bands


def check_length(prices, window: int) -> None:
    """A forecast needs at least `window` prices."""
    if len(prices) < window:
        raise ForecasterError(
            f"need at least {window} prices to forecast with window={window}, got "
            f"{len(prices)}. Give a longer series."
        )


def check_direct_days(days: int, horizon: int) -> None:
    """With input features beside the price, a forecast reaches `horizon` days."""
    check_direct_steps(days, horizon, name="days")


def future_dates(
    last: pd.Timestamp, days: int, calendar: str = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    """The next `days` sessions of exchange `calendar` after `last` (no holidays)."""
    return _sessions_after(pd.Timestamp(last), days, calendar)


@functools.lru_cache(maxsize=64)
def _sessions_after(last: pd.Timestamp, days: int, calendar: str):
    # the series of a panel mostly end on the same day: one calendar look-up
    return sessions_after(last, days, calendar)
