"""The report's tables and text: scores, direction, settings, header, panels."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from forecaster.evaluate.direction import score_frame
from forecaster.io import final_name
from forecaster.report.charts import (
    figure_html,
    forecast_traces,
    history_traces,
    reliability_figure,
    test_traces,
)
from forecaster.report.html_blocks import (
    ReportParts,
    details_html,
    number_text,
    section_html,
    table_html,
    value_text,
)


def scores_section(parts: ReportParts) -> str:
    """Test scores beside naive and the interval coverage."""
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
            rows.append(
                [label, number_text(model), number_text(naive), number_text(ratio)]
            )
        span = (
            f"<p>{metrics.get('test_days', '?')} test days, "
            f"{html.escape(str(metrics.get('test_start', '?')))} to "
            f"{html.escape(str(metrics.get('test_end', '?')))}; naive = tomorrow's "
            "price is today's (its direction: always up).</p>"
        )
        blocks.append(
            span + table_html(["test", "model", "naive", "model/naive"], rows)
        )
    coverage = metrics.get("interval_coverage_one_step")
    if coverage:
        rows = [
            [f"{float(level):.0%}", f"{float(share):.1%}"]
            for level, share in coverage.items()
        ]
        blocks.append(
            "<h3>Interval coverage on the test days (one step ahead)</h3>"
            + table_html(["band", "share of test days inside"], rows)
        )
    if not blocks:
        return ""
    return section_html("Model vs naive", "".join(blocks))


def direction_section(parts: ReportParts) -> str:
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
        blocks.append(direction_scores_html(metrics, scores))
    if metrics.get("reliability"):
        blocks.append(reliability_html(metrics["reliability"]))
    if not blocks:
        return ""
    return section_html("Direction: P(up) beside the base rate", "".join(blocks))


def direction_scores_html(metrics: dict, scores: dict) -> str:
    """P(up) scores beside the base rate, and the Brier verdict with its interval."""
    frame = score_frame(scores)
    rows = [
        [key.replace("_", " "), *(number_text(float(v)) for v in values)]
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
    table = table_html(["test", "model", "benchmark", "model/benchmark"], rows)
    return span + table + interval


def reliability_html(records: list[dict], div_id: str = "reliability-chart") -> str:
    """The reliability diagram of metrics.json's table, and the table itself."""
    table = pd.DataFrame(records).astype(float)
    shown = table[table["count"] > 0]
    rows = [
        [*(number_text(v) for v in row[:-1]), int(row[-1])]  # the last column: count
        for row in shown.itertuples(index=False)
    ]
    return (
        "<h3>Reliability on the test days</h3>"
        + figure_html(reliability_figure(shown), div_id)
        + details_html(table_html(list(table.columns), rows))
    )


def settings_section(parts: ReportParts) -> str:
    """The bundle's data source, dates, rows, settings and versions."""
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
    body = table_html(
        ["part", "name", "value"], [[a, b, value_text(c)] for a, b, c in rows]
    )
    body = body.replace("<table>", "<table class='settings'>", 1)
    return section_html("Settings and data source", body)


def missing_section(parts: ReportParts) -> str:
    """The parts the report lacks, and why; empty when none."""
    if not parts.missing:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in parts.missing)
    return (
        "<section class='missing' id='missing'><h2>Missing parts</h2>"
        f"<p>This report lacks:</p><ul>{items}</ul></section>"
    )


def header_html(parts: ReportParts, bundle_dir: Path) -> str:
    """The page's title and one line of what the model is."""
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
        f"<h1>{html.escape(page_title(parts, bundle_dir))}</h1>"
        f"<p class='meta'>{html.escape(' · '.join(bits))}</p>"
    )


def page_title(parts: ReportParts, bundle_dir: Path) -> str:
    """The title: the series (ticker or file) and the bundle directory."""
    source = (parts.metadata or {}).get("source", {})
    series = source.get("ticker") or Path(source.get("path") or bundle_dir.name).stem
    return f"forecaster report: {series} ({final_name(bundle_dir)})"


# -------------------------------------------------------------------- panels


def panel_scores_section(metrics: dict) -> str:
    """A panel's test RMSE beside naive and coverage, per series."""
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
                number_text(model),
                number_text(naive),
                number_text(model / naive if naive else None),
                number_text(cover.get("0.8")),
                number_text(cover.get("0.95")),
            ]
        )
    summary = metrics.get("panel", {})
    note = (
        f"<p>Mean ratio to naive {number_text(summary.get('mean_ratio'))}, worst "
        f"{number_text(summary.get('worst_ratio'))} "
        f"({html.escape(str(summary.get('worst_series', '')))}); naive = "
        "tomorrow's price is today's, on the same test days.</p>"
    )
    header = ["series", "test days", "model RMSE", "naive RMSE", "model/naive"]
    table = table_html(header + ["80% coverage", "95% coverage"], rows)
    return section_html("Model vs naive, per series", note + table)


CHART_MAX_SERIES = 25  # a bigger panel's chart offers its first ones in the menu


def panel_price_section(names, test, forecast) -> str:
    """The panel's chart, one series at a time: the first CHART_MAX_SERIES of them.

    Its traces and menu grow with the square of the series drawn (each
    button lists every trace): hundreds took tens of seconds, so a bigger
    panel's chart says it shows the first ones; the scores table and
    forecast.csv keep every series.
    """
    if not names or (test is None and forecast is None):
        return ""
    import plotly.graph_objects as go

    total, names = len(names), list(names)[:CHART_MAX_SERIES]
    figure, owners = go.Figure(), []
    for name in names:
        before = len(figure.data)
        one_test = None if test is None else test[test["series"] == name]
        if one_test is not None and len(one_test):
            actual = pd.Series(
                one_test["actual"].to_numpy(), index=pd.to_datetime(one_test["date"])
            )
            history_traces(figure, ReportParts(prices=actual.rename(name)))
            test_traces(figure, one_test)
        if forecast is not None:
            forecast_traces(figure, forecast[forecast["series"] == name])
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
    if total > len(names):
        note += (
            f"<p>The menu offers the first {len(names)} of {total} series; the "
            "forecast.csv file holds every series' forecast.</p>"
        )
    return section_html(
        "Prices, one series at a time", note + figure_html(figure, "price-chart")
    )
