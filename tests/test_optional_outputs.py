"""A trained model is never lost to an optional output, and the report reads its
source through the data layer (a yfinance history() CSV with daylight-saving
offsets, Dividends and Stock Splits)."""

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, tiny_settings, write_csv

import forecaster as fc
from forecaster.report import figures
from forecaster.report.html import read_parts
from forecaster.store.manifest import REPORT_FILE
from forecaster.workflows import runs
from forecaster.workflows.runs import run_forecast, run_training


def write_history_csv(path, n: int = 260) -> str:
    """A CSV as yfinance's `Ticker(...).history(...).to_csv(path)` writes it.

    Dates are midnight in New York with their UTC offset, which changes
    with daylight saving (-05:00 in winter, -04:00 in summer); the columns
    are Open, High, Low, Close, Volume, Dividends and Stock Splits, and
    there is no Adj Close (history() adjusts the prices itself).
    """
    close = make_prices(n, seed=3)
    dates = pd.bdate_range("2020-01-02", periods=n).tz_localize("America/New_York")
    frame = pd.DataFrame(
        {
            "Open": close.to_numpy() * 0.995,
            "High": close.to_numpy() * 1.01,
            "Low": close.to_numpy() * 0.985,
            "Close": close.to_numpy(),
            "Volume": np.arange(n) * 1000 + 50_000,
            "Dividends": 0.0,
            "Stock Splits": 0.0,
        },
        index=pd.DatetimeIndex(dates, name="Date"),
    )
    frame.iloc[40, frame.columns.get_loc("Dividends")] = 0.23
    frame.to_csv(path)
    return str(path)


def test_the_history_layout_is_what_yfinance_writes(tmp_path):
    lines = open(write_history_csv(tmp_path / "h.csv")).read().splitlines()
    assert lines[0] == "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits"
    offsets = {line.split(",")[0][-6:] for line in lines[1:]}
    assert offsets == {"-05:00", "-04:00"}  # the offset changes with DST
    assert lines[1].startswith("2020-01-02 00:00:00-05:00,")


@pytest.mark.slow
def test_a_yfinance_history_csv_trains_and_its_report_has_candlesticks(tmp_path):
    csv = write_history_csv(tmp_path / "HIST.csv")
    report = run_training(tiny_settings(csv, train__epochs=1), out=tmp_path / "b")
    page = (report.out / REPORT_FILE).read_text()
    assert "price (open, high, low, close)" in page
    parts = read_parts(report.out)
    assert parts.ohlc is not None and len(parts.ohlc) == len(parts.prices)
    assert parts.ohlc.index[0] == pd.Timestamp("2020-01-02")  # the day written
    np.testing.assert_allclose(parts.ohlc["close"], parts.prices.to_numpy())
    assert not [m for m in parts.missing if "price history" in m]
    fc.load(report.out)  # the manifest verifies


def test_a_failing_report_leaves_the_bundle_saved_with_one_warning(
    tmp_path, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise ValueError("Mixed timezones detected\nsecond line")

    monkeypatch.setattr(figures, "build_report", broken)
    csv = write_csv(tmp_path / "WALK.csv", make_prices())
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        report = run_training(tiny_settings(csv, train__epochs=1), out=tmp_path / "b")
    assert not (report.out / REPORT_FILE).exists()
    assert (report.out / "loss.png").is_file()  # the other outputs are kept
    fc.load(report.out)  # a complete, verified bundle without the report
    warnings = [r.getMessage() for r in caplog.records if REPORT_FILE in r.getMessage()]
    assert warnings == [
        "report.html was left out of the bundle: drawing it failed with ValueError "
        "(Mixed timezones detected); the model and its scores are saved"
    ]


def test_a_failing_report_does_not_cost_the_forecast(bundle_copy, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no luck")

    before = (bundle_copy / REPORT_FILE).read_text()
    monkeypatch.setattr(runs, "render_report", broken)
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        result = run_forecast(str(bundle_copy), days=3)
    assert result.html is None and result.csv.is_file()
    assert (bundle_copy / REPORT_FILE).read_text() == before
    assert any(
        "report.html was not refreshed" in r.getMessage() for r in caplog.records
    )


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["yahoo", "history"])
def test_the_report_reads_prices_as_training_did(tmp_path, layout):
    """The report's history is the data layer's series, for either layout."""
    from forecaster.data import read_prices

    if layout == "yahoo":
        csv = write_csv(tmp_path / "P.csv", make_prices())
    else:
        csv = write_history_csv(tmp_path / "P.csv")
    model = fc.Forecaster(window=10, units=4, layers=1, epochs=1, verbose=0)
    path = model.fit(read_prices(csv)).save(tmp_path / "b")
    parts = read_parts(path)
    pd.testing.assert_series_equal(
        parts.prices, read_prices(csv), check_names=False, check_freq=False
    )
