"""The report's plotly charts: prices with the forecast, losses, error by step.

plotly is imported inside the functions: only drawing a report needs it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.errors import ForecasterError
from forecaster.model.heads import head_kind
from forecaster.report.html_blocks import (
    ReportParts,
    details_html,
    number_text,
    section_html,
    table_html,
)

SHOWN_DAYS = 250  # trading days of history in the price chart's first view


def figure_html(figure, div_id: str) -> str:
    """A plotly figure as a <div> (plotly.js is inlined once, by page_html)."""
    import plotly.io as pio

    return pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True, "scrollZoom": True},
    )


def price_section(parts: ReportParts) -> str:
    """The price chart: history, test predictions and the forecast."""
    if parts.prices is None and parts.forecast is None:
        return section_html(
            "Prices", "<p>No price history and no forecast to draw.</p>"
        )
    import plotly.graph_objects as go

    figure = go.Figure()
    history_traces(figure, parts)
    test_traces(figure, parts.test)
    forecast_traces(figure, parts.forecast)
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
    return section_html("Prices", note + figure_html(figure, "price-chart"))


def history_traces(figure, parts: ReportParts) -> None:
    """The price history: candlesticks when there are bars, else a line."""
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


def test_traces(figure, test: pd.DataFrame | None) -> None:
    """The test days' one-day-ahead predictions, and naive (hidden at first)."""
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


def forecast_traces(figure, forecast: pd.DataFrame | None) -> None:
    """The forecast line with its 95% and 80% bands, when there are bands."""
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
    if "median" in forecast:  # a sampled forecast's median path, beside its mean
        figure.add_trace(
            go.Scatter(
                x=dates,
                y=forecast["median"],
                name="median",
                line={"color": "rgb(31, 119, 180)", "width": 1.5, "dash": "dash"},
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


def loss_section(parts: ReportParts) -> str:
    """Training and validation loss per epoch, the kept epoch marked."""
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
    model = ((parts.metadata or {}).get("settings") or {}).get("model") or {}
    figure.update_layout(
        height=360,
        xaxis_title="epoch",
        yaxis={"title": loss_label(model), "type": loss_axis(losses)},
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
    )
    return section_html("Loss per epoch", figure_html(figure, "loss-chart"))


LOSS_LABELS = {  # each head's training loss (forecaster.model.heads), for an axis
    "mse": "MSE (scaled units)",
    "normal": "normal negative log-likelihood",
    "student-t": "Student-t negative log-likelihood",
    "quantile": "pinball loss (scaled units)",
    "direction": "binary cross-entropy",
}


def loss_label(model: dict) -> str:
    """What the training loss of a model with these saved settings is called."""
    objective = model.get("objective") or "price"
    if "loss" not in model:  # saved before the loss could be chosen: MSE
        return LOSS_LABELS["direction" if objective == "direction" else "mse"]
    try:
        kind = head_kind(model.get("loss"), objective)
    except ForecasterError:  # a loss this version does not know: its own name
        return f"{model.get('loss')} loss"
    return LOSS_LABELS.get(kind, f"{kind} loss")


def loss_axis(losses: pd.DataFrame) -> str:
    """ "log" when every loss is positive, else "linear" (a likelihood can be < 0)."""
    columns = [name for name in ("loss", "val_loss") if name in losses]
    values = losses[columns].to_numpy(dtype=float).ravel()
    values = values[np.isfinite(values)]
    return "log" if len(values) and (values > 0).all() else "linear"


def steps_section(parts: ReportParts) -> str:
    """Test RMSE by step ahead, chart and table."""
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
    table = table_html(
        list(steps.columns),
        [[number_text(v) for v in row] for row in steps.itertuples(index=False)],
    )
    return section_html(
        "Error by step", figure_html(figure, "steps-chart") + details_html(table)
    )


def reliability_figure(shown: pd.DataFrame):
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
