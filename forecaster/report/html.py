"""The bundle's report.html: one self-contained page of interactive charts and tables.

The page embeds plotly.js inline (no CDN, opens offline) and shows the price
history (candlesticks when the source CSV has Open/High/Low/Close), the
test-period predictions, naive, the forecast with its median and its 80% and
95% bands, the loss curves, the model-vs-naive scores, the forecast
distribution beside each baseline with the test verdicts and the P(up)
reliability (per series for a panel), the error by step, the interval
coverage, and the settings and data source. A direction model's page
(objective="direction") shows the history, its P(up) scores beside the base
rate with the reliability diagram, and the next session's P(up) instead of
the price forecast. Parts a bundle lacks are listed at the top instead of
failing.
"""

from __future__ import annotations

import html
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.config import DataSettings
from forecaster.data import Series, load_prices
from forecaster.errors import ForecasterError
from forecaster.io import final_name, write_file_atomically
from forecaster.report.charts import loss_section, price_section, steps_section
from forecaster.report.html_blocks import ReportParts, page_html
from forecaster.report.html_distribution import (
    distribution_section,
    panel_distribution_section,
)
from forecaster.report.html_sections import (
    direction_section,
    header_html,
    missing_section,
    page_title,
    panel_price_section,
    panel_scores_section,
    scores_section,
    settings_section,
)
from forecaster.store.bundle import (
    BY_STEP_FILE,
    HISTORY_FILE,
    METADATA_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    is_panel_bundle,
    read_part,
)
from forecaster.store.manifest import FORECAST_FILE, REPORT_FILE

OHLC = ("open", "high", "low", "close")


def build_report(
    bundle_dir: str | os.PathLike,
    prices: pd.Series | None = None,
    forecast: pd.DataFrame | None = None,
    path: str | os.PathLike | None = None,
    own_source: bool = True,
) -> Path:
    """Write `path` (default bundle_dir/report.html) atomically; returns its path.

    `prices` and `forecast` default to the bundle's source CSV and its
    forecast.csv. With `own_source=False` (a forecast on other data) the
    bundle's test predictions are left out: they belong to another series.
    """
    target = Path(path) if path else Path(bundle_dir) / REPORT_FILE
    page = render_report(bundle_dir, prices, forecast, own_source)
    return write_file_atomically(
        target, lambda tmp: tmp.write_text(page, encoding="utf-8")
    )


def render_report(
    bundle_dir: str | os.PathLike,
    prices: pd.Series | None = None,
    forecast: pd.DataFrame | None = None,
    own_source: bool = True,
) -> str:
    """The report's HTML text (see `build_report`): one series' or a panel's."""
    bundle_dir = Path(bundle_dir)
    panel = is_panel_bundle(bundle_dir)
    parts = read_parts(bundle_dir, prices, forecast, own_source, panel)
    if panel:
        return panel_page(parts, bundle_dir)
    if parts.direction:  # the chart shows the history only: no price forecast
        results = [
            price_section(replace(parts, test=None, forecast=None)),
            direction_section(parts),
        ]
    else:
        results = [
            price_section(parts),
            scores_section(parts),
            distribution_section(parts.metrics or {}),
        ]
    body = "".join(
        [
            header_html(parts, bundle_dir),
            missing_section(parts),
            *results,
            loss_section(parts),
            steps_section(parts),
            settings_section(parts),
        ]
    )
    return page_html(page_title(parts, bundle_dir), body)


# ------------------------------------------------------------------ reading


def read_parts(
    bundle_dir: Path,
    prices: pd.Series | None = None,
    forecast: pd.DataFrame | None = None,
    own_source: bool = True,
    panel: bool = False,
) -> ReportParts:
    """Each part of the bundle the report shows, and which are missing and why.

    A panel's (`panel`) has no error by step, coverage row or price history:
    its page shows each series' scores and a chart per series instead.
    """
    parts = ReportParts()
    what = "settings" if panel else "settings and data source"
    parts.metadata = _json(bundle_dir, METADATA_FILE, what, parts)
    parts.metrics = _json(bundle_dir, METRICS_FILE, "test scores", parts)
    parts.direction = _is_direction(parts.metadata, parts.metrics)
    parts.losses = _csv(bundle_dir, HISTORY_FILE, "loss curves", parts)
    if own_source:
        parts.test = _csv(bundle_dir, PREDICTIONS_FILE, "test predictions", parts)
    else:
        parts.missing.append("test predictions (the forecast is on other data)")
    if not (parts.direction or panel):  # no price path scored by step
        parts.steps = _csv(bundle_dir, BY_STEP_FILE, "error by step", parts)
    parts.forecast = _read_forecast(bundle_dir, forecast, parts)
    if panel:
        return parts
    source = (parts.metadata or {}).get("source", {}) if own_source else {}
    series = _source_series(source, parts, prices is None)
    parts.prices = prices if prices is not None else getattr(series, "values", None)
    if parts.prices is not None and series is not None:
        parts.ohlc = source_ohlc(series, parts.prices)
    coverage = "interval_coverage_one_step" in (parts.metrics or {})
    if parts.metrics is not None and not parts.direction and not coverage:
        parts.missing.append("interval coverage (not in metrics.json)")
    return parts


def _read_forecast(bundle_dir: Path, forecast, parts: ReportParts):
    """The forecast given, else the bundle's forecast.csv, else a missing note."""
    if forecast is not None:
        return forecast
    if not (bundle_dir / FORECAST_FILE).is_file():
        parts.missing.append(
            "forecast (no forecast.csv yet: forecast with this bundle first)"
        )
        return None
    return _csv(bundle_dir, FORECAST_FILE, "forecast", parts)


def _is_direction(metadata: dict | None, metrics: dict | None) -> bool:
    """Whether the bundle's model forecasts P(up) (objective="direction")."""
    model = ((metadata or {}).get("settings") or {}).get("model") or {}
    return model.get("objective") == "direction" or "direction" in (metrics or {})


def _json(directory: Path, name: str, what: str, parts: ReportParts):
    """A JSON file of the bundle, or None with why in `parts.missing`."""
    value, why = read_part(directory, name)
    if why:
        parts.missing.append(f"{what} ({why})")
    return value


_csv = _json  # store.read_part reads a CSV file as a DataFrame the same way


def _source_file(source: dict) -> str | None:
    return source.get("path") if source.get("kind") == "csv" else source.get("cache")


def _source_series(source: dict, parts: ReportParts, needed: bool) -> Series | None:
    """The history re-read from the source CSV (or the ticker's cache): no network.

    The data layer reads it, as training did (forecaster.data): the report
    never parses a source file of its own. When the prices are given
    (`needed` false) the file only adds candlesticks, and its absence is no
    missing part.
    """
    file = _source_file(source)
    if not file or not Path(file).is_file():
        if needed:
            parts.missing.append(f"price history (source file {file!r} not found)")
        return None
    settings = DataSettings(
        csv=file, column=source.get("column"), decimal=source.get("decimal", ".")
    )
    try:
        return load_prices(settings)  # the reader training used, OHLCV included
    except ForecasterError as err:
        parts.missing.append(f"{'price history' if needed else 'candlesticks'} ({err})")
        return None


def source_ohlc(series: Series, prices: pd.Series) -> pd.DataFrame | None:
    """Open/High/Low/Close of `series`, scaled to the scale of `prices` each day.

    When the price is an adjusted close, each day's bar is multiplied by
    price / Close, the day's adjustment factor. None when the source lacks
    any of the four columns.
    """
    names = {"open": "Open", "high": "High", "low": "Low", "close": "Close"}
    ohlcv = series.ohlcv
    if ohlcv is None or not all(column in ohlcv for column in names.values()):
        return None
    bars = ohlcv[list(names.values())].set_axis(list(names), axis=1)
    bars = bars.reindex(prices.index)
    factor = (prices / bars["close"]).replace([np.inf, -np.inf], np.nan)
    bars = bars.mul(factor, axis=0).dropna()
    return bars if len(bars) else None


# -------------------------------------------------------------------- panels


def panel_page(parts: ReportParts, bundle_dir: Path) -> str:
    """A panel bundle's page: one row per series, and a chart with a selector.

    The chart shows one series at a time (a menu picks it): its test days
    with the model's and naive's one-day-ahead predictions, and the
    forecast with its bands when there is one.
    """
    names = ((parts.metadata or {}).get("panel") or {}).get("series", [])
    name = final_name(bundle_dir)
    if len(names) == 1:  # one file with input features: a panel of one
        title = f"forecaster report: {names[0]} ({name})"
    else:
        title = f"forecaster report: a panel of {len(names)} series ({name})"
    body = "".join(
        [
            f"<h1>{html.escape(title)}</h1>",
            missing_section(parts),
            panel_scores_section(parts.metrics or {}),
            panel_distribution_section(parts.metrics or {}),
            panel_price_section(names, parts.test, parts.forecast),
            loss_section(parts),
            settings_section(parts),
        ]
    )
    return page_html(title, body)
