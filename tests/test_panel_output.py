"""A big panel's plots and report chart show its first series, and say so."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.report import html_distribution, html_sections, plots


def forecast_frame(names, days=3) -> pd.DataFrame:
    """A long forecast frame: series, date, forecast, median and the bands."""
    dates = pd.bdate_range("2024-01-02", periods=days).strftime("%Y-%m-%d")
    rows = []
    for k, name in enumerate(names):
        path = 10.0 + k + np.arange(days)
        rows.append(
            pd.DataFrame(
                {
                    "series": name,
                    "date": dates,
                    "forecast": path,
                    "median": path,
                    "lower_80": path - 1,
                    "upper_80": path + 1,
                    "lower_95": path - 2,
                    "upper_95": path + 2,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_big_panel_grid_is_bounded_and_says_so(monkeypatch):
    monkeypatch.setattr(plots, "GRID_PAGE", 2)
    names = ["A", "B", "C", "D", "E"]
    frame = forecast_frame(names)
    days = pd.bdate_range("2023-12-01", "2023-12-29")
    history = {name: pd.Series(np.linspace(9, 10, len(days)), days) for name in names}
    assert plots.grid_pages(frame) == plots.GRID_MAX_PAGES
    fig = plots.plot_panel_grid(history, frame, "title")
    assert [ax.get_title() for ax in fig.axes] == ["A", "B"]
    shown = 2 * plots.GRID_MAX_PAGES
    assert f"first {shown} of 5 series" in fig._suptitle.get_text()
    small = plots.plot_panel_grid(history, forecast_frame(names[:2]), "title")
    assert small._suptitle.get_text() == "title"  # nothing left out: no note


def test_big_panel_report_chart_is_bounded_and_says_so(monkeypatch):
    monkeypatch.setattr(html_sections, "CHART_MAX_SERIES", 2)
    names = ["A", "B", "C"]
    page = html_sections.panel_price_section(names, None, forecast_frame(names))
    assert "first 2 of 3 series" in page
    assert '"label":"B"' in page.replace(" ", "")
    assert '"label":"C"' not in page.replace(" ", "")


def test_panel_distribution_has_a_row_per_series_and_bounds_the_detail(monkeypatch):
    monkeypatch.setattr(html_distribution, "DETAIL_MAX_SERIES", 1)
    seen = []
    monkeypatch.setattr(
        html_distribution,
        "reliability_html",
        lambda rows, chart_id: seen.append(1) or f"<div id='{chart_id}'></div>",
    )
    monkeypatch.setattr(
        html_distribution, "direction_scores_html", lambda metrics, direction: ""
    )
    pool = {"preferred": True, "weight_model": 0.25, "anchor_label": "GARCH-t"}

    def one(crps, combination):
        methods = {"model": {"label": "model", "crps": crps}}
        distribution = {"main": "model", "methods": methods}
        distribution["direction"] = {"reliability": [[0.5, 0.5, 10]]}
        return {"distribution": distribution | combination}

    page = html_distribution.panel_distribution_section(
        {"series": {"A": one(1.5, {"combination": pool}), "B": one(2.5, {})}}
    )
    assert page.count("<table class='distribution'>") == 1  # A's detail only
    assert len(seen) == 1 and "first 1 of 2 series" in page
    table = page.split("<table class='panel-distribution'>")[1].split("</table>")[0]
    assert "<td>A</td>" in table and "<td>B</td>" in table
    assert "<td>1.5</td>" in table and "<td>2.5</td>" in table
    assert "<td>25% + GARCH-t</td>" in table and "<td>no pool</td>" in table
