"""The bundle's report.html: one self-contained page of interactive charts and tables.

The page embeds plotly.js inline (no CDN, opens offline) and shows the price
history (candlesticks when the source CSV has Open/High/Low/Close), the
test-period predictions, naive, the forecast with its 80% and 95% bands, the
loss curves, the model-vs-naive scores, the error by step, the interval
coverage, and the settings and data source. A direction model's page
(objective="direction") shows the history, its P(up) scores beside the base
rate with the reliability diagram, and the next session's P(up) instead of
the price forecast. Parts a bundle lacks are listed at the top instead of
failing.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

REPORT_FILE = "report.html"
SHOWN_DAYS = 250  # trading days of history in the price chart's first view
OHLC = ("open", "high", "low", "close")


@dataclass
class ReportParts:
    """What a report is drawn from; None where the bundle lacks that part."""

    metadata: dict | None = None
    metrics: dict | None = None
    losses: pd.DataFrame | None = None  # history.csv: epoch, loss, val_loss
    test: pd.DataFrame | None = None  # date, actual, predicted, naive
    steps: pd.DataFrame | None = None  # step, recursive, [direct,] naive
    forecast: pd.DataFrame | None = None  # date, forecast, lower_80, ... upper_95
    #   (a direction model's: date, p_up)
    prices: pd.Series | None = None  # the history, indexed by date
    ohlc: pd.DataFrame | None = None  # open, high, low, close on the price's scale
    missing: list[str] = field(default_factory=list)  # "what (why)" per lacking part
    direction: bool = False  # a direction model's: P(up), no price forecast


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
    from forecaster.io import write_file_atomically

    target = Path(path) if path else Path(bundle_dir) / REPORT_FILE
    if (Path(bundle_dir) / "recent_panel.csv").is_file():
        page = render_panel_report(bundle_dir, forecast)
    else:
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
    """The report's HTML text (see `build_report`)."""
    parts = read_parts(Path(bundle_dir), prices, forecast, own_source)
    if parts.direction:  # the chart shows the history only: no price forecast
        results = [
            _price_section(replace(parts, test=None, forecast=None)),
            _direction_section(parts),
        ]
    else:
        results = [_price_section(parts), _scores_section(parts)]
    body = "".join(
        [
            _header(parts, Path(bundle_dir)),
            _missing_section(parts),
            *results,
            _loss_section(parts),
            _steps_section(parts),
            _settings_section(parts),
        ]
    )
    return _page(_title(parts, Path(bundle_dir)), body)


# ------------------------------------------------------------------ reading


def read_parts(
    bundle_dir: Path,
    prices: pd.Series | None = None,
    forecast: pd.DataFrame | None = None,
    own_source: bool = True,
) -> ReportParts:
    """Each part of the bundle the report shows, and which are missing and why."""
    parts = ReportParts()
    parts.metadata = _json(
        bundle_dir / "metadata.json", "settings and data source", parts
    )
    parts.metrics = _json(bundle_dir / "metrics.json", "test scores", parts)
    parts.direction = _is_direction(parts.metadata, parts.metrics)
    parts.losses = _csv(bundle_dir / "history.csv", "loss curves", parts)
    if own_source:
        parts.test = _csv(
            bundle_dir / "test_predictions.csv", "test predictions", parts
        )
    else:
        parts.missing.append("test predictions (the forecast is on other data)")
    if not parts.direction:  # a direction model has no price path to score
        parts.steps = _csv(bundle_dir / "rmse_by_step.csv", "error by step", parts)
    if forecast is None and not (bundle_dir / "forecast.csv").is_file():
        parts.missing.append(
            "forecast (no forecast.csv yet: forecast with this bundle first)"
        )
    elif forecast is None:
        forecast = _csv(bundle_dir / "forecast.csv", "forecast", parts)
    parts.forecast = forecast
    source = (parts.metadata or {}).get("source", {}) if own_source else {}
    parts.prices = prices if prices is not None else _source_prices(source, parts)
    if parts.prices is not None and source:
        parts.ohlc = _source_ohlc(source, parts.prices)
    coverage = "interval_coverage_one_step" in (parts.metrics or {})
    if parts.metrics is not None and not parts.direction and not coverage:
        parts.missing.append("interval coverage (not in metrics.json)")
    return parts


def _is_direction(metadata: dict | None, metrics: dict | None) -> bool:
    """Whether the bundle's model forecasts P(up) (objective="direction")."""
    model = ((metadata or {}).get("settings") or {}).get("model") or {}
    return model.get("objective") == "direction" or "direction" in (metrics or {})


def _json(path: Path, what: str, parts: ReportParts) -> dict | None:
    if not path.is_file():
        parts.missing.append(f"{what} (no {path.name})")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        parts.missing.append(f"{what} ({path.name} unreadable: {type(err).__name__})")
        return None


def _csv(path: Path, what: str, parts: ReportParts) -> pd.DataFrame | None:
    if not path.is_file():
        parts.missing.append(f"{what} (no {path.name})")
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        parts.missing.append(f"{what} ({path.name} unreadable: {type(err).__name__})")
        return None
    if frame.empty:
        parts.missing.append(f"{what} ({path.name} has no rows)")
        return None
    return frame


def _source_file(source: dict) -> str | None:
    return source.get("path") if source.get("kind") == "csv" else source.get("cache")


def _source_prices(source: dict, parts: ReportParts) -> pd.Series | None:
    """The history re-read from the source CSV (or the ticker's cache): no network."""
    from forecaster.data import read_price_csv
    from forecaster.errors import ForecasterError

    file = _source_file(source)
    if not file or not Path(file).is_file():
        parts.missing.append(f"price history (source file {file!r} not found)")
        return None
    try:
        return read_price_csv(file, source.get("column")).values
    except ForecasterError as err:
        parts.missing.append(f"price history ({err})")
        return None


def _source_ohlc(source: dict, prices: pd.Series) -> pd.DataFrame | None:
    """Open/High/Low/Close from the source CSV, scaled to the price's scale each day.

    The loader keeps only the price column, so the bars are read here from
    the same file. When the price is an adjusted close, each day's bar is
    multiplied by price / Close, the day's adjustment factor. None when the
    file lacks any of the four columns or cannot be read.
    """
    file = _source_file(source)
    try:
        table = pd.read_csv(file)
    except (OSError, ValueError, TypeError):
        return None
    names = {str(c).strip().lower(): c for c in table.columns}
    date = names.get("date") or names.get("datetime") or names.get("timestamp")
    if date is None or not all(name in names for name in OHLC):
        return None
    dates = pd.to_datetime(table[date], errors="coerce", format="mixed")
    bars = pd.DataFrame(
        {name: pd.to_numeric(table[names[name]], errors="coerce") for name in OHLC}
    ).set_index(pd.DatetimeIndex(dates))
    bars = bars[bars.index.notna() & ~bars.index.duplicated()].reindex(prices.index)
    factor = (prices / bars["close"]).replace([np.inf, -np.inf], np.nan)
    bars = bars.mul(factor, axis=0).dropna()
    return bars if len(bars) else None


# ------------------------------------------------------------------- charts


def _figure_html(figure, div_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True, "scrollZoom": True},
    )


def _price_section(parts: ReportParts) -> str:
    if parts.prices is None and parts.forecast is None:
        return _section("Prices", "<p>No price history and no forecast to draw.</p>")
    import plotly.graph_objects as go

    figure = go.Figure()
    _history_traces(figure, parts)
    _test_traces(figure, parts.test)
    _forecast_traces(figure, parts.forecast)
    view = _first_view(parts)
    figure.update_layout(
        height=560,
        hovermode="x unified",
        dragmode="pan",
        xaxis={"rangeslider": {"visible": False}, "range": view},
        yaxis={"title": "price", "range": _price_range(parts, view)},
        legend={"orientation": "h", "y": -0.12, "traceorder": "normal"},
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
    )
    note = (
        "<p>Drag to pan, scroll or drag a box to zoom, double-click to see all; "
        "click a legend entry to show or hide it.</p>"
    )
    return _section("Prices", note + _figure_html(figure, "price-chart"))


def _history_traces(figure, parts: ReportParts) -> None:
    import plotly.graph_objects as go

    if parts.prices is None:
        return
    if parts.ohlc is not None:
        bars = parts.ohlc
        figure.add_trace(
            go.Candlestick(
                x=bars.index,
                open=bars["open"],
                high=bars["high"],
                low=bars["low"],
                close=bars["close"],
                name="price (open, high, low, close)",
            )
        )
        return
    figure.add_trace(
        go.Scatter(
            x=parts.prices.index,
            y=parts.prices.to_numpy(),
            name=f"actual ({parts.prices.name or 'price'})",
            line={"color": "black", "width": 1},
        )
    )


def _test_traces(figure, test: pd.DataFrame | None) -> None:
    import plotly.graph_objects as go

    if test is None:
        return
    dates = pd.to_datetime(test["date"])
    figure.add_trace(
        go.Scatter(
            x=dates,
            y=test["predicted"],
            name="model, test days (one day ahead)",
            line={"color": "darkorange", "width": 1},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=dates,
            y=test["naive"],
            name="naive (tomorrow = today)",
            line={"color": "grey", "width": 1, "dash": "dot"},
            visible="legendonly",
        )
    )


def _forecast_traces(figure, forecast: pd.DataFrame | None) -> None:
    import plotly.graph_objects as go

    if forecast is None:
        return
    dates = pd.to_datetime(forecast["date"])
    for level, opacity in ((95, 0.15), (80, 0.3)):
        if f"lower_{level}" not in forecast:
            continue
        band = {"x": dates, "mode": "lines", "line": {"width": 0}}
        figure.add_trace(
            go.Scatter(
                y=forecast[f"upper_{level}"],
                name=f"{level}% upper",
                showlegend=False,
                **band,
            )
        )
        figure.add_trace(
            go.Scatter(
                y=forecast[f"lower_{level}"],
                name=f"{level}% interval",
                fill="tonexty",
                fillcolor=f"rgba(31, 119, 180, {opacity})",
                **band,
            )
        )
    figure.add_trace(
        go.Scatter(
            x=dates,
            y=forecast["forecast"],
            name="forecast",
            line={"color": "rgb(31, 119, 180)", "width": 2},
        )
    )


def _first_view(parts: ReportParts) -> list[str] | None:
    """The last SHOWN_DAYS of history through the end of the forecast."""
    ends = []
    if parts.prices is not None and len(parts.prices):
        ends.append(parts.prices.index[max(0, len(parts.prices) - SHOWN_DAYS)])
        ends.append(parts.prices.index[-1])
    if parts.forecast is not None:
        ends.append(pd.Timestamp(parts.forecast["date"].iloc[-1]))
    if not ends:
        return None
    return [f"{min(ends):%Y-%m-%d}", f"{max(ends) + pd.Timedelta(days=3):%Y-%m-%d}"]


def _price_range(parts: ReportParts, view: list[str] | None) -> list[float] | None:
    """The y range of what the first view shows (plotly would fit all the history)."""
    if view is None:
        return None
    start = pd.Timestamp(view[0])
    shown = []
    if parts.prices is not None:
        shown.append(parts.prices[parts.prices.index >= start].to_numpy())
    if parts.forecast is not None:
        columns = [c for c in parts.forecast if c != "date"]
        shown.append(parts.forecast[columns].to_numpy().ravel())
    values = pd.Series(np.concatenate(shown)).dropna() if shown else pd.Series([])
    if values.empty:
        return None
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return [low - pad, high + pad]


def _loss_section(parts: ReportParts) -> str:
    if parts.losses is None:
        return ""
    import plotly.graph_objects as go

    losses = parts.losses
    figure = go.Figure()
    for name, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        if name in losses:
            figure.add_trace(
                go.Scatter(x=losses["epoch"], y=losses[name], name=label, mode="lines")
            )
    best = ((parts.metadata or {}).get("training") or {}).get("best_epoch")
    if best:
        figure.add_vline(
            x=best,
            line_dash="dash",
            line_color="grey",
            annotation_text=f"kept: epoch {best}",
            annotation_position="top left",
        )
    loss = "binary cross-entropy" if parts.direction else "MSE (scaled units)"
    figure.update_layout(
        height=360,
        xaxis_title="epoch",
        yaxis={"title": loss, "type": "log"},
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
    )
    return _section("Loss per epoch", _figure_html(figure, "loss-chart"))


def _steps_section(parts: ReportParts) -> str:
    if parts.steps is None:
        return ""
    import plotly.graph_objects as go

    steps = parts.steps
    figure = go.Figure()
    for name in steps.columns.drop("step"):
        figure.add_trace(
            go.Scatter(x=steps["step"], y=steps[name], name=name, mode="lines+markers")
        )
    figure.update_layout(
        height=360,
        xaxis_title="steps ahead",
        yaxis_title="test RMSE (price)",
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
    )
    table = _table(
        list(steps.columns),
        [[_number(v) for v in row] for row in steps.itertuples(index=False)],
    )
    return _section(
        "Error by step", _figure_html(figure, "steps-chart") + _details(table)
    )


# ------------------------------------------------------------------- tables


def _scores_section(parts: ReportParts) -> str:
    metrics = parts.metrics or {}
    blocks = []
    if "model" in metrics and "naive" in metrics:
        rows = []
        for label, key in (
            ("RMSE", "rmse"),
            ("MAE", "mae"),
            ("MAPE %", "mape"),
            ("Direction", "directional_accuracy"),
        ):
            model, naive = metrics["model"].get(key), metrics["naive"].get(key)
            ratio = model / naive if model is not None and naive else None
            rows.append([label, _number(model), _number(naive), _number(ratio)])
        span = (
            f"<p>{metrics.get('test_days', '?')} test days, "
            f"{html.escape(str(metrics.get('test_start', '?')))} to "
            f"{html.escape(str(metrics.get('test_end', '?')))}; naive = tomorrow's "
            "price is today's (its direction: always up).</p>"
        )
        blocks.append(span + _table(["test", "model", "naive", "model/naive"], rows))
    coverage = metrics.get("interval_coverage_one_step")
    if coverage:
        rows = [
            [f"{float(level):.0%}", f"{float(share):.1%}"]
            for level, share in coverage.items()
        ]
        blocks.append(
            "<h3>Interval coverage on the test days (one step ahead)</h3>"
            + _table(["band", "share of test days inside"], rows)
        )
    if not blocks:
        return ""
    return _section("Model vs naive", "".join(blocks))


def _direction_section(parts: ReportParts) -> str:
    """A direction model's next-session P(up), its scores, and its reliability."""
    metrics = parts.metrics or {}
    scores = metrics.get("direction")
    blocks = []
    if parts.forecast is not None and "p_up" in parts.forecast:
        row = parts.forecast.iloc[0]
        base = f" (base rate {scores['base_rate']:.3f})" if scores else ""
        blocks.append(
            f"<p>Next session, {html.escape(str(row['date']))}: "
            f"<b>P(up) = {float(row['p_up']):.3f}</b>{html.escape(base)}.</p>"
        )
    if scores:
        blocks.append(_direction_scores(metrics, scores))
    if metrics.get("reliability"):
        blocks.append(_reliability_block(metrics["reliability"]))
    if not blocks:
        return ""
    return _section("Direction: P(up) beside the base rate", "".join(blocks))


def _direction_scores(metrics: dict, scores: dict) -> str:
    from forecaster.evaluate.direction import score_frame

    frame = score_frame(scores)
    rows = [
        [key.replace("_", " "), *(_number(float(v)) for v in values)]
        for key, values in zip(frame.index, frame.to_numpy(), strict=True)
    ]
    span = (
        f"<p>{metrics.get('test_days', '?')} test days, "
        f"{html.escape(str(metrics.get('test_start', '?')))} to "
        f"{html.escape(str(metrics.get('test_end', '?')))}, {scores['days']} of them "
        "moved; benchmark = the base rate, up with the training part's frequency "
        f"({scores['base_rate']:.3f}); for accuracy, always up.</p>"
    )
    interval = (
        f"<p>Brier: {html.escape(scores['verdict'])}; "
        f"{scores['interval_level']:.0%} block-bootstrap interval of the "
        f"difference [{scores['brier_difference_lower']:+.4f}, "
        f"{scores['brier_difference_upper']:+.4f}].</p>"
    )
    table = _table(["test", "model", "benchmark", "model/benchmark"], rows)
    return span + table + interval


def _reliability_block(records: list[dict]) -> str:
    """The reliability diagram of metrics.json's table, and the table itself."""
    table = pd.DataFrame(records).astype(float)
    shown = table[table["count"] > 0]
    rows = [
        [*(_number(v) for v in row[:-1]), int(row[-1])]  # the last column: count
        for row in shown.itertuples(index=False)
    ]
    return (
        "<h3>Reliability on the test days</h3>"
        + _figure_html(_reliability_figure(shown), "reliability-chart")
        + _details(_table(list(table.columns), rows))
    )


def _reliability_figure(shown: pd.DataFrame):
    """Observed share of up days against mean P(up), per bin, beside the diagonal."""
    import plotly.graph_objects as go

    figure = go.Figure()
    diagonal = {"dash": "dash", "color": "grey"}
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], name="calibrated", line=diagonal))
    figure.add_trace(
        go.Scatter(
            x=shown["mean_forecast"],
            y=shown["observed_frequency"],
            name="model",
            mode="lines+markers",
            marker={"size": 6 + 30 * shown["count"] / max(shown["count"].sum(), 1)},
            text=[f"{int(n)} days" for n in shown["count"]],
        )
    )
    figure.update_layout(
        height=420,
        xaxis={"title": "forecast P(up), mean in bin", "range": [0, 1]},
        yaxis={"title": "observed share of up days", "range": [0, 1]},
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
    )
    return figure


def _settings_section(parts: ReportParts) -> str:
    metadata = parts.metadata
    if metadata is None:
        return ""
    rows = [["data source", k, v] for k, v in metadata.get("source", {}).items()]
    rows += [["dates", k, v] for k, v in metadata.get("date_range", {}).items()]
    rows += [["rows", k, v] for k, v in metadata.get("rows", {}).items()]
    for part, values in metadata.get("settings", {}).items():
        rows += [[f"settings.{part}", k, v] for k, v in values.items()]
    rows += [["training", k, v] for k, v in metadata.get("training", {}).items()]
    rows += [["versions", k, v] for k, v in metadata.get("versions", {}).items()]
    rows.append(["bundle", "created", metadata.get("created")])
    body = _table(["part", "name", "value"], [[a, b, _value(c)] for a, b, c in rows])
    body = body.replace("<table>", "<table class='settings'>", 1)
    return _section("Settings and data source", body)


def _missing_section(parts: ReportParts) -> str:
    if not parts.missing:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in parts.missing)
    return (
        "<section class='missing' id='missing'><h2>Missing parts</h2>"
        f"<p>This report lacks:</p><ul>{items}</ul></section>"
    )


def _header(parts: ReportParts, bundle_dir: Path) -> str:
    metadata = parts.metadata or {}
    settings = metadata.get("settings", {})
    model = settings.get("model", {})
    prep = settings.get("prep", {})
    bits = [
        f"cell {model.get('cell', '?')}",
        f"representation {prep.get('representation', '?')}",
        f"window {prep.get('window', '?')}, horizon {prep.get('horizon', '?')}",
        f"calendar {settings.get('data', {}).get('calendar', 'XNYS')}",
        f"created {metadata.get('created', '?')}",
    ]
    if parts.direction:
        bits.insert(1, "objective direction: P(up)")
    if parts.ohlc is not None:
        bits.append("candlesticks from the source's Open/High/Low/Close")
    return (
        f"<h1>{html.escape(_title(parts, bundle_dir))}</h1>"
        f"<p class='meta'>{html.escape(' · '.join(bits))}</p>"
    )


def _title(parts: ReportParts, bundle_dir: Path) -> str:
    source = (parts.metadata or {}).get("source", {})
    series = source.get("ticker") or Path(source.get("path") or bundle_dir.name).stem
    return f"forecaster report: {series} ({bundle_dir.name})"


def _table(header: list, rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _value(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _details(inner: str) -> str:
    return f"<details><summary>table</summary>{inner}</details>"


def _section(title: str, inner: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{inner}</section>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px;
  padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #555; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: right; }
th:first-child, td:first-child, .settings td { text-align: left; }
.missing { background: #fff6e0; border: 1px solid #e0b84c; padding: 0.5rem 1rem; }
"""


def _page(title: str, body: str) -> str:
    from plotly.offline import get_plotlyjs

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        # plotly.js inline: the page works offline and asks no CDN for anything.
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        f"</head><body>{body}</body></html>\n"
    )


# -------------------------------------------------------------------- panels


def render_panel_report(bundle_dir, forecast: pd.DataFrame | None = None) -> str:
    """A panel bundle's report: one row per series, and a chart with a selector.

    The chart shows one series at a time (a menu picks it): its test days
    with the model's and naive's one-day-ahead predictions, and the
    forecast with its bands when there is one.
    """
    bundle_dir = Path(bundle_dir)
    parts = ReportParts()
    parts.metadata = _json(bundle_dir / "metadata.json", "settings", parts)
    parts.metrics = _json(bundle_dir / "metrics.json", "test scores", parts)
    parts.losses = _csv(bundle_dir / "history.csv", "loss curves", parts)
    test = _csv(bundle_dir / "test_predictions.csv", "test predictions", parts)
    if forecast is None and (bundle_dir / "forecast.csv").is_file():
        forecast = _csv(bundle_dir / "forecast.csv", "forecast", parts)
    elif forecast is None:
        parts.missing.append(
            "forecast (no forecast.csv yet: forecast with this bundle first)"
        )
    names = ((parts.metadata or {}).get("panel") or {}).get("series", [])
    title = f"forecaster report: a panel of {len(names)} series ({bundle_dir.name})"
    body = "".join(
        [
            f"<h1>{html.escape(title)}</h1>",
            _missing_section(parts),
            _panel_scores_section(parts.metrics or {}),
            _panel_price_section(names, test, forecast),
            _loss_section(parts),
            _settings_section(parts),
        ]
    )
    return _page(title, body)


def _panel_scores_section(metrics: dict) -> str:
    per = metrics.get("series", {})
    if not per:
        return ""
    rows = []
    for name, one in per.items():
        model, naive = one["model"]["rmse"], one["naive"]["rmse"]
        cover = one.get("interval_coverage_one_step", {})
        rows.append(
            [
                name,
                one.get("test_days", ""),
                _number(model),
                _number(naive),
                _number(model / naive if naive else None),
                _number(cover.get("0.8")),
                _number(cover.get("0.95")),
            ]
        )
    summary = metrics.get("panel", {})
    note = (
        f"<p>Mean ratio to naive {_number(summary.get('mean_ratio'))}, worst "
        f"{_number(summary.get('worst_ratio'))} "
        f"({html.escape(str(summary.get('worst_series', '')))}); naive = "
        "tomorrow's price is today's, on the same test days.</p>"
    )
    header = ["series", "test days", "model RMSE", "naive RMSE", "model/naive"]
    table = _table(header + ["80% coverage", "95% coverage"], rows)
    return _section("Model vs naive, per series", note + table)


def _panel_price_section(names, test, forecast) -> str:
    if not names or (test is None and forecast is None):
        return ""
    import plotly.graph_objects as go

    figure, owners = go.Figure(), []
    for name in names:
        before = len(figure.data)
        one_test = None if test is None else test[test["series"] == name]
        if one_test is not None and len(one_test):
            actual = pd.Series(
                one_test["actual"].to_numpy(), index=pd.to_datetime(one_test["date"])
            )
            _history_traces(figure, ReportParts(prices=actual.rename(name)))
            _test_traces(figure, one_test)
        if forecast is not None:
            _forecast_traces(figure, forecast[forecast["series"] == name])
        owners += [name] * (len(figure.data) - before)
    shown = [
        trace.visible if trace.visible is not None else True for trace in figure.data
    ]

    def visible(name: str) -> list:
        return [shown[k] if owner == name else False for k, owner in enumerate(owners)]

    for trace, flag in zip(figure.data, visible(names[0]), strict=True):
        trace.visible = flag
    buttons = [
        {"label": name, "method": "update", "args": [{"visible": visible(name)}]}
        for name in names
    ]
    figure.update_layout(
        height=560,
        hovermode="x unified",
        dragmode="pan",
        updatemenus=[{"buttons": buttons, "x": 0, "y": 1.12, "xanchor": "left"}],
        legend={"orientation": "h", "y": -0.12},
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    note = "<p>Pick a series in the menu; drag to pan, scroll to zoom.</p>"
    return _section(
        "Prices, one series at a time", note + _figure_html(figure, "price-chart")
    )
