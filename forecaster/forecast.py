"""Forecasting: test-day predictions and the future forecast, in prices, with bands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.config import DataSettings, ModelSettings
from forecaster.data import SAMPLE_CSV
from forecaster.errors import ForecasterError
from forecaster.evaluation import (
    INTERVAL_LEVELS,
    RESIDUAL_SCALE,
    half_widths,
    scale_of,
)
from forecaster.windows import window_view

METHODS = ("recursive", "direct")


def test_predictions(engine, prepared) -> pd.DataFrame:
    """One-step predictions for every test day: columns date, actual, predicted, naive.

    Each test day t is predicted from the `window` prices before it (the
    first ones come from the end of the training part); naive = price on t-1.
    """
    split = prepared.split
    start = split.test_targets[0]
    stop = split.n  # every test day, whatever the horizon: only step 1 is used
    contexts = window_view(prepared.scaled, split.window, (start, stop))
    scaled = np.concatenate(
        [
            engine.predict(contexts[i : i + 4096])[:, 0]
            for i in range(0, len(contexts), 4096)
        ]
    )
    return pd.DataFrame(
        {
            "date": prepared.dates[start:stop].strftime("%Y-%m-%d"),
            "actual": prepared.prices[start:stop],
            "predicted": prepared.scaler.inverse_transform(scaled),
            "naive": prepared.prices[start - 1 : stop - 1],
        }
    )


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
) -> pd.DataFrame:
    """Forecast `days` business days past the last date of `values` (prices).

    Returns columns date, forecast and, when `intervals` are given,
    lower_80, upper_80, lower_95, upper_95 (price units).
    """
    if days < 1:
        raise ForecasterError(f"--days must be at least 1. Received: days={days}")
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
            "date": future_dates(values.index[-1], days).strftime("%Y-%m-%d"),
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


def future_dates(last: pd.Timestamp, days: int) -> pd.DatetimeIndex:
    """The next `days` business days after `last` (weekends skipped, holidays not)."""
    return pd.bdate_range(pd.Timestamp(last) + pd.offsets.BDay(1), periods=days)


# What the default `python train.py` writes: models/<sample>-<default cell>.
DEFAULT_BUNDLE = f"models/{Path(SAMPLE_CSV).stem}-{ModelSettings().cell}"


@dataclass
class ForecastReport:
    """What `run_forecast` wrote."""

    csv: Path
    png: Path
    engine: str
    method: str
    frame: pd.DataFrame
    last_date: str
    notes: list[str]


def run_forecast(
    model_dir: str | None = None,
    days: int = 30,
    method: str | None = None,
    block: int | None = None,
    engine: str = "auto",
    data: DataSettings | None = None,
    out: str | None = None,
    download=None,
) -> ForecastReport:
    """Load a bundle, read the latest prices, forecast `days` ahead, write CSV and PNG.

    The prices come from the bundle's own source unless `data` names a CSV or
    a ticker (reusing the saved model on new data). Files go into the bundle
    directory unless `out` is given; both are replaced only once both are
    complete, so a failed run leaves an earlier forecast as it was.
    """
    from forecaster.bundle import load_bundle, write_files_atomically
    from forecaster.data import load_prices
    from forecaster.engines import make_engine

    if days < 1:
        raise ForecasterError(f"--days must be at least 1. Received: days={days}")
    bundle = load_bundle(model_dir or DEFAULT_BUNDLE)
    method = method or bundle.metadata.get("default_method", "recursive")
    block = _choose_block(method, block, bundle.horizon)
    own_source = data is None or not (data.csv or data.ticker)
    prices = load_prices(
        _source_settings(bundle, data) if own_source else data, download=download
    )
    model_engine = make_engine(bundle, engine)
    intervals = (bundle.intervals or {}).get(method) or (bundle.intervals or {}).get(
        "recursive"
    )
    frame = forecast_future(
        model_engine, prices.values, bundle.scaler, days, method, intervals, block=block
    )
    out_dir = Path(out) if out else bundle.path
    test = None
    if own_source and (bundle.path / "test_predictions.csv").exists():
        test = pd.read_csv(bundle.path / "test_predictions.csv")
    from forecaster.plotting import plot_forecast

    title = (
        f"{prices.source.get('ticker') or Path(prices.source['path']).stem}: "
        f"{days}-day {method} forecast ({bundle.settings.model.cell}, "
        f"{model_engine.name} engine)"
    )
    csv, png = out_dir / "forecast.csv", out_dir / "forecast.png"
    write_files_atomically(
        {
            csv: lambda tmp: frame.to_csv(tmp, index=False),
            png: lambda tmp: plot_forecast(prices.values, frame, tmp, title, test),
        }
    )
    return ForecastReport(
        csv, png, model_engine.name, method, frame, prices.last_date, prices.notes
    )


def _choose_block(method: str, block: int | None, horizon: int) -> int:
    default = block_for(method, horizon)
    if block is None:
        return default
    if block > horizon:
        raise ForecasterError(
            f"--horizon {block} is larger than the bundle was trained for ({horizon}): "
            f"retrain with `train.py --horizon {block}` or use --horizon {horizon} or "
            "less."
        )
    if block < 1:
        raise ForecasterError(
            f"--horizon must be at least 1. Received: horizon={block}"
        )
    return block


def _source_settings(bundle, data: DataSettings | None) -> DataSettings:
    """DataSettings that re-read the bundle's own source, up to today for a ticker."""
    source = bundle.metadata.get("source", {})
    column = source.get("column")
    cache_dir = data.cache_dir if data else DataSettings().cache_dir
    if source.get("kind") == "ticker":
        return DataSettings(
            ticker=source["ticker"],
            start=source.get("start"),
            column=column,
            cache_dir=cache_dir,
        )
    return DataSettings(
        csv=source.get("path"), column=column, decimal=source.get("decimal", ".")
    )
