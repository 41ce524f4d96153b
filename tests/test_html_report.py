"""Tests for report.html: self-contained, missing parts named, renders in Chromium."""

import base64
import html
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.report.charts import loss_axis, loss_label
from forecaster.report.html import REPORT_FILE, build_report, panel_page, read_parts
from forecaster.report.html_blocks import ReportParts
from forecaster.report.tables import combination_line, format_anchors
from forecaster.workflows.runs import run_forecast

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _plot_data(page: str, div_id: str) -> list[dict]:
    """The traces plotly is told to draw in the div `div_id`."""
    return _plot_arguments(page, div_id)[0]


def _plot_arguments(page: str, div_id: str) -> tuple[list[dict], dict]:
    """The traces and the layout plotly is told to draw in the div `div_id`."""
    start = page.index(f'Plotly.newPlot(                        "{div_id}",')
    text = page[start:].split(",", 1)[1].lstrip()
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text)
    layout, _ = decoder.raw_decode(text[end:].lstrip(", \n"))
    return data, layout


def _values(array) -> list[float]:
    """A plotly array as numbers: plotly.py writes NumPy arrays as base64 bytes."""
    if isinstance(array, dict):
        raw = base64.b64decode(array["bdata"])
        return np.frombuffer(raw, dtype=array["dtype"]).astype(float).tolist()
    return [float(value) for value in array]


def _rows(page: str, table_class: str) -> list[list[str]]:
    """The body cells of the first table of class `table_class`."""
    body = page.split(f"<table class='{table_class}'>", 1)[1].split("</table>")[0]
    body = body.split("<tbody>", 1)[1]
    return [re.findall(r"<td>(.*?)</td>", row) for row in body.split("</tr>")[:-1]]


def test_training_writes_a_self_contained_report(trained_bundle):
    page = (trained_bundle / REPORT_FILE).read_text()
    # Nothing to fetch: no script or stylesheet by address (plotly.js is inline).
    assert not re.search(r"<script[^>]* src=|<link", page)
    for div in ("price-chart", "loss-chart", "steps-chart"):
        assert f'id="{div}"' in page
    names = [trace.get("name", "") for trace in _plot_data(page, "price-chart")]
    assert names[:3] == [
        "price (open, high, low, close)",  # the fixture CSV has OHLC columns
        "model, test days (one day ahead)",
        "naive (tomorrow = today)",
    ]
    assert "Model vs naive" in page and "Interval coverage" in page
    assert "Settings and data source" in page and "Missing parts" in page
    assert "forecast (no forecast.csv yet: forecast with this bundle first)" in page
    # written inside the save's temporary directory, titled by the bundle's name
    assert "<h1>forecaster report: WALK (bundle)</h1>" in page
    assert ".tmp-" not in page


def test_predict_refreshes_the_report_with_the_forecast(bundle_copy):
    run_forecast(str(bundle_copy), days=5)
    page = (bundle_copy / REPORT_FILE).read_text()
    names = [trace.get("name", "") for trace in _plot_data(page, "price-chart")]
    assert "forecast" in names and "80% interval" in names and "95% interval" in names
    median = _plot_data(page, "price-chart")[names.index("median")]
    forecast = pd.read_csv(bundle_copy / "forecast.csv")
    assert _values(median["y"]) == pytest.approx(forecast["median"].tolist())
    assert "Missing parts" not in page


def test_the_loss_chart_names_the_loss_and_fits_its_axis(trained_bundle):
    """The default head's loss is a Student-t NLL, which can be negative."""
    page = (trained_bundle / REPORT_FILE).read_text()
    traces, layout = _plot_arguments(page, "loss-chart")
    losses = pd.read_csv(trained_bundle / "history.csv")
    assert layout["yaxis"]["title"]["text"] == "Student-t negative log-likelihood"
    assert layout["yaxis"]["type"] == loss_axis(losses)
    assert _values(traces[0]["y"]) == pytest.approx(losses["loss"].tolist())


def test_loss_names_and_axes():
    assert loss_label({"loss": None, "objective": "price"}).startswith("Student-t")
    assert loss_label({"loss": "mse"}) == "MSE (scaled units)"
    assert loss_label({"loss": None, "objective": "direction"}) == (
        "binary cross-entropy"
    )
    assert loss_label({"cell": "lstm"}) == "MSE (scaled units)"  # before losses
    below = pd.DataFrame({"loss": [-3.3, -3.5], "val_loss": [-3.6, -3.7]})
    assert loss_axis(below) == "linear"
    assert loss_axis(below.abs()) == "log"
    assert loss_axis(pd.DataFrame({"loss": [0.5, 0.0]})) == "linear"


def test_the_report_shows_the_distribution_table_as_metrics_json_holds_it(
    bundle_copy,
):
    """Every method row and test verdict of metrics.json, and P(up) reliability;
    a method or test added to metrics.json appears without the report changing."""
    metrics = json.loads((bundle_copy / "metrics.json").read_text())
    distribution = metrics["distribution"]
    distribution["methods"]["anchor_x"] = {"label": "anchor X", "crps": 0.25}
    distribution["tests"]["mcs_x"] = {"p_value": 0.5, "kept": ["model", "anchor_x"]}
    (bundle_copy / "metrics.json").write_text(json.dumps(metrics))
    page = build_report(bundle_copy).read_text()
    assert "Forecast distribution beside the baselines" in page
    rows = _rows(page, "distribution")
    labels = [method["label"] for method in distribution["methods"].values()]
    assert [row[0] for row in rows] == labels
    assert rows[-1][1:].count("n/a") == len(rows[-1]) - 2  # only its CRPS is known
    tests = _rows(page, "tests")
    assert [row[0] for row in tests] == [
        k.replace("_", " ") for k in distribution["tests"]
    ]
    for test in distribution["tests"].values():
        if "verdict" in test:
            assert html.escape(test["verdict"]) in page
    assert "model, anchor_x" in tests[-1]
    # the anchors' block (DM against each, VaR, MCS) as train.py prints it
    assert distribution["anchors"]
    assert html.escape(format_anchors(distribution)) in page
    assert "model confidence set" in page
    if distribution.get("combination"):
        line = combination_line(distribution["combination"], distribution["main"])
        assert html.escape(line) in page
    assert 'id="up-reliability"' in page
    assert "Direction: P(up) beside the base rate" in page


def test_report_names_the_missing_parts(bundle_copy):
    for name in ("test_predictions.csv", "history.csv", "rmse_by_step.csv"):
        (bundle_copy / name).unlink()
    page = build_report(bundle_copy).read_text()
    missing = re.search(r"<ul>(.*?)</ul>", page).group(1)
    assert missing == (
        "<li>loss curves (no history.csv)</li>"
        "<li>test predictions (no test_predictions.csv)</li>"
        "<li>error by step (no rmse_by_step.csv)</li>"
        "<li>forecast (no forecast.csv yet: forecast with this bundle first)</li>"
    )
    assert 'id="price-chart"' in page and 'id="loss-chart"' not in page


def test_candlesticks_follow_an_adjusted_price(bundle_copy, tmp_path):
    meta = json.loads((bundle_copy / "metadata.json").read_text())
    table = pd.read_csv(meta["source"]["path"])
    table["Adj Close"] = table["Close"] / 2  # a 2:1 split adjustment
    table["Open"] = table["Close"] * 1.02
    table.to_csv(tmp_path / "HALF.csv", index=False)
    meta["source"]["path"] = str(tmp_path / "HALF.csv")
    (bundle_copy / "metadata.json").write_text(json.dumps(meta))
    parts = read_parts(bundle_copy)
    ratio = parts.ohlc["open"] / parts.prices.reindex(parts.ohlc.index)
    assert len(parts.ohlc) == len(parts.prices)
    assert ratio.round(9).eq(1.02).all()


def _chromium_or_skip():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, and CI=true needs this test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (requirements-dev.txt)")
        pytest.skip("playwright is not installed (pip install -r requirements-dev.txt)")
    return sync_playwright


def test_report_renders_in_headless_chromium(bundle_copy, tmp_path):
    sync_playwright = _chromium_or_skip()
    run_forecast(str(bundle_copy), days=10)
    url = (bundle_copy / REPORT_FILE).resolve().as_uri()
    problems, requests = [], []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS[1:],
            headless=True,
            viewport={"width": 1200, "height": 900},
        )
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, wait_until="load")
        page.wait_for_selector("#price-chart .main-svg", timeout=20_000)
        traces = page.evaluate(
            "() => document.getElementById('price-chart').calcdata"
            ".map(points => points.length)"
        )
        drawn = page.locator("#price-chart .trace").count()
        legend = page.evaluate(
            "() => Array.from(document.querySelectorAll('#price-chart .legendtext'))"
            ".map(text => text.textContent)"
        )
        page.wait_for_selector("#loss-chart .main-svg", timeout=20_000)
        loss_lines = page.evaluate(LINE_PATHS, "loss-chart")
        page.wait_for_selector("#up-reliability .main-svg", timeout=20_000)
        methods = page.locator("table.distribution tbody tr")
        shown = (methods.count(), methods.first.is_visible())
        verdicts = page.locator("table.tests tbody tr").count()
        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    print(f"report screenshot: {screenshot}")  # shown with -s, -rP or on failure
    assert problems == []
    assert [u for u in requests if not u.startswith("file:")] == []
    assert len(traces) >= 6 and all(n > 0 for n in traces)
    assert drawn >= 6 and "median" in legend
    # both loss curves are drawn: a path through every epoch, on any loss's sign
    epochs = len(pd.read_csv(bundle_copy / "history.csv"))
    assert len(loss_lines) == 2 and all(d.count("L") == epochs - 1 for d in loss_lines)
    metrics = json.loads((bundle_copy / "metrics.json").read_text())
    assert shown == (len(metrics["distribution"]["methods"]), True)
    assert verdicts == len(metrics["distribution"]["tests"])
    assert Path(screenshot).stat().st_size > 20_000


# The "d" of each drawn line of a plotly chart ("M x,y L x,y ..." per trace).
LINE_PATHS = """id => Array.from(
    document.querySelectorAll('#' + id + ' .scatterlayer path.js-line'))
    .map(p => p.getAttribute('d') || '')"""


@pytest.fixture(scope="module")
def panel_report(tmp_path_factory):
    """A tiny global model of two generated series, saved and forecast."""
    from panel_fakes import random_walk_ohlcv

    import forecaster as fc

    root = tmp_path_factory.mktemp("panel-report")
    prices = {"AAA": random_walk_ohlcv(200, 1), "BBB": random_walk_ohlcv(180, 2)}
    model = fc.Forecaster(window=10, units=4, layers=1, epochs=1, verbose=0)
    path = model.fit(prices).save(root / "panel")
    return path


def test_a_panel_report_has_a_row_per_series_and_a_series_menu(panel_report):
    page = (panel_report / REPORT_FILE).read_text()
    assert "Model vs naive, per series" in page
    assert "<td>AAA</td>" in page and "<td>BBB</td>" in page
    traces = _plot_data(page, "price-chart")
    shown = [t.get("name") for t in traces if t.get("visible") is True]
    assert shown and all(t.get("visible") is False for t in traces[len(traces) // 2 :])
    assert '"buttons"' in page and '"label":"AAA"' in page and '"label":"BBB"' in page
    assert "forecast (no forecast.csv yet" in page


def test_a_panel_report_shows_each_series_distribution(panel_report):
    page = (panel_report / REPORT_FILE).read_text()
    metrics = json.loads((panel_report / "metrics.json").read_text())
    assert "Forecast distribution beside the baselines, per series" in page
    for index, (name, one) in enumerate(metrics["series"].items()):
        assert f"<h3 id='distribution-{index}'>{name}</h3>" in page
        assert f'id="up-reliability-{index}"' in page
        for test in one["distribution"]["tests"].values():
            assert html.escape(test["verdict"]) in page
    assert page.count("<table class='distribution'>") == len(metrics["series"])


def test_a_panel_forecast_refreshes_its_report(panel_report, tmp_path):
    target = tmp_path / "panel"
    shutil.copytree(panel_report, target)
    run_forecast(str(target), days=3)
    page = (target / REPORT_FILE).read_text()
    names = [t.get("name") for t in _plot_data(page, "price-chart")]
    assert names.count("forecast") == 2 and "Missing parts" not in page


def test_a_panel_report_renders_in_headless_chromium(panel_report, tmp_path):
    sync_playwright = _chromium_or_skip()
    problems = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS[1:], headless=True
        )
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.goto((panel_report / REPORT_FILE).resolve().as_uri(), wait_until="load")
        page.wait_for_selector("#price-chart .updatemenu-container", timeout=20_000)
        drawn = page.locator("#price-chart .trace").count()
        for index in range(2):  # each series' P(up) reliability diagram
            page.wait_for_selector(f"#up-reliability-{index} .main-svg")
        tables = page.locator("table.distribution").count()
        page.screenshot(path=str(tmp_path / "panel.png"), full_page=True)
        browser.close()
    assert problems == [] and drawn >= 2
    assert tables == 2  # one distribution table per series


@pytest.mark.parametrize(
    ("series", "heading"),
    [
        (["QQQ"], "forecaster report: QQQ (quotes)"),
        (["AAA", "BBB"], "forecaster report: a panel of 2 series (quotes)"),
    ],
)
def test_a_panel_pages_heading_names_a_lone_series(tmp_path, series, heading):
    """One file with input features is a panel of one: its page is titled by
    the series, not "a panel of 1 series"; a real panel keeps its count."""
    parts = ReportParts(metadata={"panel": {"series": series}}, metrics={})
    page = panel_page(parts, tmp_path / "quotes")
    assert f"<h1>{heading}</h1>" in page
