"""The HTML pieces report.html is built of, and the bundle parts it is drawn from."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import pandas as pd


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


def table_html(header: list, rows: list[list]) -> str:
    """An HTML table of `header` and `rows`, every cell escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def number_text(value) -> str:
    """A score as table text: four decimals, blank for None or NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def value_text(value) -> str:
    """A setting as table text: JSON for a dict or list, blank for None."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def details_html(inner: str) -> str:
    """`inner` folded away under a "table" summary."""
    return f"<details><summary>table</summary>{inner}</details>"


def section_html(title: str, inner: str) -> str:
    """One titled section of the page."""
    return f"<section><h2>{html.escape(title)}</h2>{inner}</section>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px;
  padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #555; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: right; }
th:first-child, td:first-child, .settings td { text-align: left; }
.tests td:last-child { text-align: left; }
.missing { background: #fff6e0; border: 1px solid #e0b84c; padding: 0.5rem 1rem; }
"""


def page_html(title: str, body: str) -> str:
    """The whole page: `body` with the style and plotly.js inline."""
    from plotly.offline import get_plotlyjs

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        # plotly.js inline: the page works offline and asks no CDN for anything.
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        f"</head><body>{body}</body></html>\n"
    )
