"""Tests for forecaster.data: CSV layouts, text prices, dates and the ticker cache."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance
from conftest import write
from yfinance.exceptions import YFRateLimitError

import forecaster.io
from forecaster.config import DataSettings
from forecaster.data import (
    SAMPLE_CSV,
    Series,
    cache_path,
    download_prices,
    flatten_download,
    load_prices,
    read_price_csv,
)
from forecaster.errors import ForecasterError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # hand-made, see README.md


def assert_clean(prices: Series) -> None:
    """The contract every result keeps: sorted unique dates, finite positive floats."""
    values = prices.values
    assert isinstance(values.index, pd.DatetimeIndex)
    assert values.index.is_monotonic_increasing and values.index.is_unique
    assert values.dtype == np.float64
    assert np.isfinite(values.to_numpy()).all() and (values.to_numpy() > 0).all()


def as_dict(prices: Series) -> dict[str, float]:
    return {f"{d:%Y-%m-%d}": v for d, v in prices.values.items()}


# ------------------------------------------------------------------ normal layouts


def test_yahoo_layout_prefers_adj_close():
    prices = read_price_csv(FIXTURES / "yahoo_synthetic.csv")
    assert_clean(prices)
    assert prices.source == {
        "kind": "csv",
        "path": str(FIXTURES / "yahoo_synthetic.csv"),
        "column": "Adj Close",
    }
    assert as_dict(prices) == {
        "2024-01-02": 5.25,
        "2024-01-03": 5.75,
        "2024-01-04": 6.25,
        "2024-01-05": 6.75,
    }
    assert prices.notes == []


def test_shipped_sample():
    prices = read_price_csv(ROOT / SAMPLE_CSV)
    assert_clean(prices)
    assert len(prices.values) == 3270
    assert prices.first_date == "2000-03-01"
    assert prices.last_date == "2013-03-01"
    assert prices.source["column"] == "Adj Close"
    assert prices.values.iloc[0] == pytest.approx(4.186663)


def test_load_prices_defaults_to_the_sample(monkeypatch):
    monkeypatch.chdir(ROOT)
    prices = load_prices(DataSettings())
    assert prices.source["path"] == SAMPLE_CSV
    assert len(prices.values) == 3270


@pytest.mark.parametrize(
    ("column", "chosen", "first"),
    [
        ("Close", "Close", 10.5),
        ("CLOSE", "Close", 10.5),
        ("close", "Close", 10.5),
        ("adj close", "Adj Close", 5.25),
        (" Open ", "Open", 10.0),
        ("volume", "Volume", 1000.0),
    ],
)
def test_column_choice_is_case_insensitive(column, chosen, first):
    prices = read_price_csv(FIXTURES / "yahoo_synthetic.csv", column=column)
    assert prices.source["column"] == chosen
    assert prices.values.name == chosen
    assert prices.values.iloc[0] == first


def test_close_is_used_when_there_is_no_adj_close(tmp_path):
    path = write(tmp_path, "Date,Open,Close\n2024-01-02,1,2\n2024-01-03,3,4\n")
    prices = read_price_csv(path)
    assert prices.source["column"] == "Close"
    assert as_dict(prices) == {"2024-01-02": 2.0, "2024-01-03": 4.0}


def test_nasdaq_layout_newest_first_with_dollars():
    prices = read_price_csv(FIXTURES / "nasdaq_synthetic.csv")
    assert_clean(prices)
    assert prices.source["column"] == "Close/Last"
    assert as_dict(prices) == {
        "2024-01-03": 1100.0,
        "2024-01-04": 101.0,
        "2024-01-05": 102.0,
        "2024-01-08": 103.0,
        "2024-01-09": 104.0,
        "2024-01-10": 105.0,
    }


def test_header_with_spaces_bom_and_trailing_commas(tmp_path):
    text = "\ufeff Date , Close ,\n2024-01-02, 10 ,\n2024-01-03,11,\n,,\n\n"
    prices = read_price_csv(write(tmp_path, text))
    assert as_dict(prices) == {"2024-01-02": 10.0, "2024-01-03": 11.0}


def test_first_column_used_as_dates_when_unnamed(tmp_path):
    path = write(tmp_path, "When,Close\n2024-01-02,10\n2024-01-03,11\n")
    assert as_dict(read_price_csv(path)) == {"2024-01-02": 10.0, "2024-01-03": 11.0}


def test_latin1_file(tmp_path):
    path = write(tmp_path, "Date,Close,Note\n2024-01-02,10,caf\xe9\n2024-01-03,11,\n")
    path.write_bytes(path.read_text().encode("latin-1"))
    assert as_dict(read_price_csv(path)) == {"2024-01-02": 10.0, "2024-01-03": 11.0}


# --------------------------------------------------------------------- text prices


def test_quoted_thousands_separators_and_dollars(tmp_path):
    text = (
        "Date,Close\n"
        '2024-01-02,"1,234.50"\n'
        '2024-01-03,"$1,235.25"\n'
        "2024-01-04,$12.00\n"
        '2024-01-05,"12,345,678"\n'
        "2024-01-08, +7.5\n"
        "2024-01-09,1e2\n"
    )
    assert as_dict(read_price_csv(write(tmp_path, text))) == {
        "2024-01-02": 1234.5,
        "2024-01-03": 1235.25,
        "2024-01-04": 12.0,
        "2024-01-05": 12345678.0,
        "2024-01-08": 7.5,
        "2024-01-09": 100.0,
    }


def test_gaps_are_dropped_with_a_warning(tmp_path, caplog):
    text = (
        "Date,Close\n"
        "2024-01-02,10\n"
        "2024-01-03,null\n"
        "2024-01-04,N/A\n"
        "2024-01-05,-\n"
        "2024-01-08,\n"
        "2024-01-09,NaN\n"
        "2024-01-10,nan\n"
        "2024-01-11,11\n"
        "2024-01-12\n"  # a short row: the missing cell is a gap too
        "2024-01-16,12\n"
    )
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = read_price_csv(write(tmp_path, text))
    assert_clean(prices)
    assert not prices.values.isna().any()
    assert as_dict(prices) == {
        "2024-01-02": 10.0,
        "2024-01-11": 11.0,
        "2024-01-16": 12.0,
    }
    note = (
        f"dropped 7 row(s) with no price in {str(tmp_path / 'prices.csv')!r}: "
        "2024-01-03, 2024-01-04, 2024-01-05, 2024-01-08, 2024-01-09 and 2 more"
    )
    assert prices.notes == [note]
    assert [r.getMessage() for r in caplog.records] == [note]
    assert caplog.records[0].levelno == logging.WARNING


def test_garbage_price_names_the_value_and_the_date(tmp_path):
    text = "Date,Close\n2024-01-02,10\n2024-01-03,abc\n2024-01-04,11\n"
    with pytest.raises(
        ForecasterError,
        match=r"Price column 'Close' .* number: 'abc' on 2024-01-03 \(line 3\)\. Fix",
    ):
        read_price_csv(write(tmp_path, text))


@pytest.mark.parametrize("cell", ["1.234,50", "1,5", "12 345", "(12.00)", "12%", "$"])
def test_ambiguous_number_text_is_refused_not_guessed(tmp_path, cell):
    text = f'Date,Close\n2024-01-02,10\n2024-01-03,"{cell}"\n'
    with pytest.raises(ForecasterError, match=r"not a number: .* on 2024-01-03"):
        read_price_csv(write(tmp_path, text))


# --------------------------------------------------------------------------- dates


def test_us_dates(tmp_path):
    path = write(tmp_path, "Date,Close\n01/30/2024,10\n01/31/2024,11\n02/01/2024,12\n")
    assert list(as_dict(read_price_csv(path))) == [
        "2024-01-30",
        "2024-01-31",
        "2024-02-01",
    ]


def test_day_first_dates_read_consistently(tmp_path):
    # 31/01 cannot be month-first, so the whole column is read day-first,
    # including 02/01 (2 January, not 1 February).
    path = write(tmp_path, "Date,Close\n31/12/2023,10\n02/01/2024,11\n03/01/2024,12\n")
    assert list(as_dict(read_price_csv(path))) == [
        "2023-12-31",
        "2024-01-02",
        "2024-01-03",
    ]


def test_utc_offsets_keep_the_written_day(tmp_path):
    # What Ticker.history().to_csv() writes: the offset changes with daylight saving.
    text = (
        "Date,Close\n"
        "2024-03-08 00:00:00-05:00,10\n"
        "2024-03-11 00:00:00-04:00,11\n"
        "2024-03-12 00:00:00+09:00,12\n"
        "2024-03-13T00:00:00Z,13\n"
    )
    assert list(as_dict(read_price_csv(write(tmp_path, text)))) == [
        "2024-03-08",
        "2024-03-11",
        "2024-03-12",
        "2024-03-13",
    ]


def test_shuffled_rows_are_sorted(tmp_path):
    text = "Date,Close\n2024-01-04,3\n2024-01-02,1\n2024-01-05,4\n2024-01-03,2\n"
    prices = read_price_csv(write(tmp_path, text))
    assert_clean(prices)
    assert list(prices.values) == [1.0, 2.0, 3.0, 4.0]


def test_identical_duplicates_are_dropped_with_a_warning(tmp_path, caplog):
    text = (
        "Date,Close\n"
        "2024-01-02,1\n"
        "2024-01-03,2\n"
        "2024-01-03,2.0\n"
        "2024-01-04,3\n"
        "2024-01-02,1\n"
    )
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = read_price_csv(write(tmp_path, text))
    assert as_dict(prices) == {"2024-01-02": 1.0, "2024-01-03": 2.0, "2024-01-04": 3.0}
    assert prices.notes == [
        f"dropped duplicate rows for 2 date(s) in {str(tmp_path / 'prices.csv')!r}: "
        "2024-01-02, 2024-01-03"
    ]
    assert [r.getMessage() for r in caplog.records] == prices.notes


def test_conflicting_duplicates_name_the_dates(tmp_path):
    text = (
        "Date,Close\n"
        "2024-01-02,1\n"
        "2024-01-03,2\n"
        "2024-01-03,2.5\n"
        "2024-01-04,3\n"
        "2024-01-04 15:30,3.1\n"
    )
    with pytest.raises(
        ForecasterError,
        match=r"Conflicting prices for the same date in .*: 2024-01-03, 2024-01-04\. "
        r"Keep one row per date\.",
    ):
        read_price_csv(write(tmp_path, text))


# ------------------------------------------------------------- unsafe price values


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("0", "0.0"),
        ("0.00", "0.0"),
        ("-5", "-5.0"),
        ("$-5.00", "-5.0"),
        ("-$5.00", "-5.0"),
        ("inf", "inf"),
        ("-inf", "-inf"),
        ("Infinity", "inf"),
        ("1e999", "inf"),
    ],
)
def test_zero_negative_and_infinite_prices_name_the_date(tmp_path, cell, shown):
    text = f"Date,Close\n2024-01-02,10\n2024-01-03,{cell}\n2024-01-04,11\n"
    with pytest.raises(
        ForecasterError,
        match=rf"Prices must be positive and finite: {shown} on 2024-01-03 in .*"
        r"\(1 such row\(s\)\)\. Fix or remove those rows\.",
    ):
        read_price_csv(write(tmp_path, text))


def test_nan_text_is_a_gap_not_an_error(tmp_path):
    # Policy: "nan"/"NaN" is how pandas and NumPy write a missing value, so it is
    # dropped like an empty cell; only an infinite or non-positive price is refused.
    text = "Date,Close\n2024-01-02,10\n2024-01-03,NaN\n2024-01-04,11\n"
    prices = read_price_csv(write(tmp_path, text))
    assert as_dict(prices) == {"2024-01-02": 10.0, "2024-01-04": 11.0}
    assert "dropped 1 row(s) with no price" in prices.notes[0]


# ------------------------------------------------- files from public data portals


@pytest.mark.parametrize("marker", [".", "NaN", "nan", "#N/A", "NA", "null"])
def test_portal_gap_markers_are_dropped_counted_and_dated(tmp_path, caplog, marker):
    text = f"Date,Close\n2024-01-02,10\n2024-01-03,{marker}\n2024-01-04,11\n"
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = read_price_csv(write(tmp_path, text))
    assert as_dict(prices) == {"2024-01-02": 10.0, "2024-01-04": 11.0}
    assert prices.notes == [
        f"dropped 1 row(s) with no price in {str(tmp_path / 'prices.csv')!r}: "
        "2024-01-03"
    ]
    assert prices.notes[0] in caplog.text


def test_fred_layout_uses_the_only_numeric_column_with_a_note(tmp_path, caplog):
    # FRED's download: DATE and a series code; "." marks a day with no value.
    text = "DATE,DGS10\n2024-01-02,3.95\n2024-01-03,.\n2024-01-04,3.99\n"
    path = write(tmp_path, text)
    with caplog.at_level(logging.INFO, logger="forecaster"):
        prices = read_price_csv(path)
    assert as_dict(prices) == {"2024-01-02": 3.95, "2024-01-04": 3.99}
    assert prices.source["column"] == "DGS10"
    assert prices.notes[0] == (
        f"using column 'DGS10' of {str(path)!r} for prices: it is the only numeric "
        "column (name another with --column)"
    )
    assert prices.notes[0] in caplog.text and len(prices.notes) == 2


def test_the_only_numeric_column_beside_text_columns(tmp_path):
    text = (
        "observation_date,series,SP500,comment\n"
        "2024-01-02,SP500,4742.83,first day\n"
        "2024-01-03,SP500,#N/A,holiday\n"
        "2024-01-04,SP500,4688.68,\n"
    )
    prices = read_price_csv(write(tmp_path, text))
    assert as_dict(prices) == {"2024-01-02": 4742.83, "2024-01-04": 4688.68}
    assert prices.source["column"] == "SP500"


def test_two_numeric_columns_without_close_are_still_refused(tmp_path):
    text = "DATE,DGS10,DGS2\n2024-01-02,3.95,4.3\n2024-01-03,3.9,4.4\n"
    with pytest.raises(ForecasterError, match=r"^No price column in .*--column\.$"):
        read_price_csv(write(tmp_path, text))


def test_excel_export_with_bom_and_crlf(tmp_path):
    raw = b"\xef\xbb\xbfDate,Close\r\n2024-01-02,10.5\r\n2024-01-03,#N/A\r\n"
    raw += b"2024-01-04,11.25\r\n"
    prices = read_price_csv(write(tmp_path, raw))
    assert as_dict(prices) == {"2024-01-02": 10.5, "2024-01-04": 11.25}
    assert prices.source["column"] == "Close"


def test_semicolons_and_decimal_commas_with_the_decimal_setting(tmp_path):
    text = (
        "Datum;Schlusskurs;Volumen\r\n"
        "02.01.2024;1.234,50;1.000\r\n"
        "03.01.2024;;1.100\r\n"
        "04.01.2024;1.240,25;900\r\n"
        "05.01.2024;999,5;800\r\n"
    )
    path = write(tmp_path, text.encode("utf-8-sig"))
    prices = read_price_csv(path, column="Schlusskurs", decimal=",")
    assert as_dict(prices) == {
        "2024-01-02": 1234.5,
        "2024-01-04": 1240.25,
        "2024-01-05": 999.5,
    }
    assert prices.source["decimal"] == ","
    settings = DataSettings(csv=str(path), column="schlusskurs", decimal=",")
    assert as_dict(load_prices(settings)) == as_dict(prices)


def test_semicolons_without_the_decimal_setting_suggest_it(tmp_path):
    text = "Date;Close\n2024-01-02;1,5\n2024-01-03;2,5\n"
    with pytest.raises(ForecasterError, match=r"pass --decimal , to read it\.$"):
        read_price_csv(write(tmp_path, text))


def test_decimal_comma_refuses_decimal_points_rather_than_misread(tmp_path):
    text = "Date;Close\n2024-01-02;1,5\n2024-01-03;2.5\n"
    with pytest.raises(ForecasterError, match=r"not a number: '2\.5' on 2024-01-03"):
        read_price_csv(write(tmp_path, text), decimal=",")


def test_unknown_decimal_is_refused(tmp_path):
    with pytest.raises(
        ForecasterError, match=r"^decimal must be '\.' or ','\. Received: decimal=';'$"
    ):
        read_price_csv(write(tmp_path, "Date,Close\n"), decimal=";")


# ------------------------------------------------------------ yfinance's to_csv


def yf_frame(ticker="MSFT", closes=(100.0, 101.0, 102.0), start="2024-01-02"):
    """A frame shaped exactly like `yfinance.download(ticker, auto_adjust=True)`.

    yfinance concatenates one history frame per ticker (Open, High, Low, Close,
    Volume) with keys and names ["Ticker", "Price"], swaps the levels to
    (Price, Ticker) and sorts them; the index is a tz-naive DatetimeIndex named
    "Date". `test_fake_frames_match_real_yfinance` checks this against yfinance.
    """
    closes = np.asarray(closes, dtype=np.float64)
    dates = pd.bdate_range(start, periods=len(closes)).strftime("%Y-%m-%d")
    history = pd.DataFrame(
        {
            "Open": closes - 0.5,
            "High": closes + 1.0,
            "Low": closes - 1.0,
            "Close": closes,
            "Volume": np.arange(1000, 1000 + len(closes), dtype=np.int64),
        },
        index=pd.DatetimeIndex(pd.to_datetime(list(dates)), name="Date"),
    )
    frame = pd.concat([history], axis=1, keys=[ticker], names=["Ticker", "Price"])
    frame.columns = frame.columns.swaplevel(0, 1)
    return frame.sort_index(axis=1, level=0)


def yf_flat_frame(ticker="MSFT", closes=(100.0, 101.0, 102.0)):
    """The same with `multi_level_index=False`: one level, unnamed."""
    frame = yf_frame(ticker, closes)
    return frame.droplevel("Ticker", axis=1).rename_axis(None, axis=1)


def yf_empty_frame(ticker="XYZQ"):
    """What yfinance.download returns when every ticker failed: no rows."""
    failed = pd.DataFrame(
        columns=["Open", "High", "Low", "Close", "Adj Close", "Volume"],
        index=pd.DatetimeIndex([], name="Date"),
        dtype=np.float64,
    )
    frame = pd.concat([failed], axis=1, keys=[ticker], names=["Ticker", "Price"])
    frame.columns = frame.columns.swaplevel(0, 1)
    return frame.sort_index(axis=1, level=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore:.*inplace.*")
def test_fake_frames_match_real_yfinance(monkeypatch):
    """Run the real yfinance.download with only its per-ticker history faked."""
    history = yf_flat_frame().loc[:, ["Open", "High", "Low", "Close", "Volume"]]
    history.index = history.index.tz_localize("America/New_York")
    monkeypatch.setattr(yfinance.Ticker, "history", lambda self, **kw: history.copy())
    real = yfinance.download(
        "MSFT", start="2024-01-01", auto_adjust=True, progress=False, threads=False
    )
    pd.testing.assert_frame_equal(real, yf_frame())
    assert list(real.columns.names) == ["Price", "Ticker"]
    flat = yfinance.download(
        "MSFT",
        start="2024-01-01",
        auto_adjust=True,
        progress=False,
        threads=False,
        multi_level_index=False,
    )
    pd.testing.assert_frame_equal(flat, yf_flat_frame())


def test_yfinance_to_csv_layout(tmp_path):
    path = tmp_path / "MSFT.csv"
    yf_frame().to_csv(path)
    assert path.read_text().splitlines()[:3] == [
        "Price,Close,High,Low,Open,Volume",
        "Ticker,MSFT,MSFT,MSFT,MSFT,MSFT",
        "Date,,,,,",
    ]
    prices = read_price_csv(path)
    assert_clean(prices)
    assert prices.source["column"] == "Close"
    assert as_dict(prices) == {
        "2024-01-02": 100.0,
        "2024-01-03": 101.0,
        "2024-01-04": 102.0,
    }
    assert read_price_csv(path, column="open").values.iloc[0] == 99.5


def test_yfinance_to_csv_with_two_tickers_is_refused(tmp_path):
    both = pd.concat([yf_frame("AAPL"), yf_frame("MSFT")], axis=1).sort_index(
        axis=1, level=0
    )
    path = tmp_path / "both.csv"
    both.to_csv(path)
    with pytest.raises(
        ForecasterError, match=r"several tickers \['AAPL', 'MSFT'\]: save one ticker"
    ):
        read_price_csv(path)


def test_flatten_download_forms():
    for frame in (yf_frame(), yf_flat_frame()):
        flat = flatten_download(frame, "MSFT")
        assert list(flat.columns) == ["Close", "High", "Low", "Open", "Volume"]
        assert flat.index.name == "Date"
    with pytest.raises(
        ForecasterError, match=r"holds other tickers: \['AAPL', 'IBM'\]"
    ):
        flatten_download(pd.concat([yf_frame("AAPL"), yf_frame("IBM")], axis=1), "MSFT")


# ------------------------------------------------------------------- ticker path


class FakeDownload:
    """Stands in for yfinance.download: returns a frame, raises, and/or logs."""

    def __init__(self, result=None, error=None, logged=None):
        self.result, self.error, self.logged = result, error, logged
        self.calls = []

    def __call__(self, tickers, **kwargs):
        self.calls.append((tickers, kwargs))
        if self.logged:
            # Real yfinance reports failures on its logger, not as exceptions.
            yf_log = logging.getLogger("yfinance")
            yf_log.error("\n1 Failed download:")
            yf_log.error(self.logged)
        if self.error is not None:
            raise self.error
        return self.result


def not_found(ticker):
    return (
        f"['{ticker}']: YFPricesMissingError('possibly delisted; no price data found')"
    )


RATE_LOGGED = (
    "['MSFT']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
)
DNS_LOGGED = (
    "['MSFT']: DNSError('Failed to perform, curl: (6) Could not resolve host: "
    "query2.finance.yahoo.com')"
)
IMPERSONATE_LOGGED = (
    "['MSFT']: ImpersonateError('Impersonating chrome150 is not supported')"
)
TLS_LOGGED = (
    "['MSFT']: CurlError('Failed to perform, curl: (59) failed setting cipher list. "
    "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.')"
)
REFUSED_LOGGED = (
    "['MSFT']: ConnectionError('Failed to perform, curl: (7) Failed to connect to "
    "127.0.0.1 port 9 after 0 ms: Could not connect to server')"
)
STACK = (
    r"The HTTP library that yfinance uses \(curl_cffi\) is broken in this Python, "
    r"so no request for 'MSFT' was sent",
    "This is an installation problem, not the symbol or the network: reinstall",
)
RATE = (r"Yahoo Finance is rate-limiting downloads of 'MSFT'", "Wait a few minutes")
NETWORK = (r"Could not reach Yahoo Finance to download 'MSFT'", "internet connection")
NO_PRICES = (r"yfinance returned no prices for 'MSFT'", "Check the symbol")
UNUSABLE = (r"yfinance returned unusable prices for 'MSFT'", "Retry later")
ALL_NAN = yf_frame(closes=(np.nan,) * 3)
ALL_NAN["Volume"] = np.nan
FAILURES = {
    # name: (make the fake download, (pattern of the reason, advice))
    "rate-raised": (lambda: FakeDownload(error=YFRateLimitError()), RATE),
    "rate-logged": (
        lambda: FakeDownload(result=yf_empty_frame("MSFT"), logged=RATE_LOGGED),
        RATE,
    ),
    "offline-raised": (
        lambda: FakeDownload(
            error=ConnectionError("Failed to resolve 'query2.finance.yahoo.com'")
        ),
        (
            NETWORK[0] + r" \(ConnectionError: Failed to resolve "
            r"'query2\.finance\.yahoo\.com'\)",
            NETWORK[1],
        ),
    ),
    "offline-logged": (
        lambda: FakeDownload(result=yf_empty_frame("MSFT"), logged=DNS_LOGGED),
        NETWORK,
    ),
    "timeout": (lambda: FakeDownload(error=TimeoutError("read timed out")), NETWORK),
    "refused-logged": (
        lambda: FakeDownload(result=yf_empty_frame("MSFT"), logged=REFUSED_LOGGED),
        NETWORK,
    ),
    "impersonation-logged": (
        lambda: FakeDownload(result=yf_empty_frame("MSFT"), logged=IMPERSONATE_LOGGED),
        (STACK[0] + r" \(.*ImpersonateError", STACK[1]),
    ),
    "tls-library-raised": (
        lambda: FakeDownload(
            error=RuntimeError("Failed to perform, curl: (59) failed setting cipher")
        ),
        STACK,
    ),
    "tls-library-logged": (
        lambda: FakeDownload(result=yf_empty_frame("MSFT"), logged=TLS_LOGGED),
        STACK,
    ),
    "unknown-symbol": (
        lambda: FakeDownload(result=yf_empty_frame("MSFT"), logged=not_found("MSFT")),
        (NO_PRICES[0] + r" \(.*possibly delisted; no price data found", NO_PRICES[1]),
    ),
    "none-returned": (
        lambda: FakeDownload(result=None),
        (NO_PRICES[0] + ": the symbol may be unknown or delisted", NO_PRICES[1]),
    ),
    "all-nan": (lambda: FakeDownload(result=ALL_NAN.copy()), NO_PRICES),
    "nan-prices": (
        lambda: FakeDownload(result=yf_frame(closes=(np.nan,) * 3)),
        (UNUSABLE[0] + r" \(Only 0 usable price row\(s\)", UNUSABLE[1]),
    ),
    "one-price": (lambda: FakeDownload(result=yf_frame(closes=(5.0,))), UNUSABLE),
    "negative-prices": (
        lambda: FakeDownload(result=yf_frame(closes=(5.0, -1.0))),
        (UNUSABLE[0] + r" \(Prices must be positive and finite: -1\.0", UNUSABLE[1]),
    ),
    "other-tickers": (
        lambda: FakeDownload(result=yf_frame("AAPL").join(yf_frame("IBM"))),
        (UNUSABLE[0] + r" \(The download for 'MSFT' holds other tickers", UNUSABLE[1]),
    ),
    "bug-in-yfinance": (
        lambda: FakeDownload(error=KeyError("chart")),
        (r"yfinance failed to download 'MSFT' \(KeyError: 'chart'\)", "pip install -U"),
    ),
}


def listing(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (hidden ones too) with its bytes."""
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_download_success_writes_the_cache(tmp_path):
    fake = FakeDownload(result=yf_frame())
    cache_dir = tmp_path / "cache"
    prices = download_prices(
        " msft ", start="2024-01-01", cache_dir=cache_dir, download=fake
    )
    assert_clean(prices)
    assert as_dict(prices) == {
        "2024-01-02": 100.0,
        "2024-01-03": 101.0,
        "2024-01-04": 102.0,
    }
    assert prices.source == {
        "kind": "ticker",
        "ticker": "MSFT",
        "column": "Close",
        "start": "2024-01-01",
        "end": None,
        "cache": str(cache_dir / "MSFT.csv"),
    }
    assert list(listing(cache_dir)) == ["MSFT.csv"]
    assert as_dict(read_price_csv(cache_dir / "MSFT.csv")) == as_dict(prices)
    [(ticker, kwargs)] = fake.calls
    assert ticker == "MSFT"
    assert kwargs["auto_adjust"] is True and kwargs["progress"] is False
    assert kwargs["start"] == "2024-01-01" and kwargs["end"] is None


def test_download_flat_columns_and_column_choice(tmp_path):
    fake = FakeDownload(result=yf_flat_frame())
    prices = download_prices(
        "MSFT", start="2024-01-01", cache_dir=tmp_path, column="open", download=fake
    )
    assert prices.source["column"] == "Open"
    assert prices.values.iloc[0] == 99.5


def test_end_is_the_last_date_wanted(tmp_path):
    # yfinance's `end` is exclusive; --end is documented as the last date.
    fake = FakeDownload(result=yf_frame())
    download_prices(
        "MSFT", start="2024-01-01", end="2024-01-31", cache_dir=tmp_path, download=fake
    )
    assert fake.calls[0][1]["end"] == "2024-02-01"


def test_default_start_is_ten_years_back(tmp_path):
    fake = FakeDownload(result=yf_frame())
    prices = download_prices("MSFT", cache_dir=tmp_path, download=fake)
    start = pd.Timestamp(fake.calls[0][1]["start"])
    assert 3645 <= (pd.Timestamp.today() - start).days <= 3655
    assert prices.source["start"] == fake.calls[0][1]["start"]


def test_default_path_calls_yfinance_download(tmp_path, monkeypatch):
    fake = FakeDownload(result=yf_frame())
    monkeypatch.setattr(yfinance, "download", fake)
    prices = load_prices(
        DataSettings(ticker="msft", start="2024-01-01", cache_dir=str(tmp_path))
    )
    assert len(fake.calls) == 1
    assert prices.source["ticker"] == "MSFT"
    assert (tmp_path / "MSFT.csv").exists()


def test_yfinance_log_is_restored(tmp_path):
    yf_log = logging.getLogger("yfinance")
    handlers, propagate = list(yf_log.handlers), yf_log.propagate
    with pytest.raises(ForecasterError):
        download_prices(
            "MSFT",
            cache_dir=tmp_path,
            download=FakeDownload(result=yf_empty_frame(), logged=not_found("XYZQ")),
        )
    assert yf_log.handlers == handlers and yf_log.propagate == propagate


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure_without_cache_is_an_error_and_writes_nothing(tmp_path, name):
    make_fake, (reason, advice) = FAILURES[name]
    cache_dir = tmp_path / "cache"
    with pytest.raises(ForecasterError, match=reason) as caught:
        download_prices(
            "MSFT", start="2024-01-01", cache_dir=cache_dir, download=make_fake()
        )
    message = str(caught.value)
    assert f", and there is no cache at {str(cache_dir / 'MSFT.csv')!r}. " in message
    assert advice in message
    assert "\n" not in message
    assert not cache_dir.exists()


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure_with_cache_uses_it_and_leaves_it_alone(tmp_path, name, caplog):
    make_fake, (reason, _) = FAILURES[name]
    cache_dir = tmp_path / "cache"
    good = download_prices(
        "MSFT",
        start="2024-01-01",
        cache_dir=cache_dir,
        download=FakeDownload(result=yf_frame()),
    )
    before = listing(cache_dir)
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = download_prices(
            "MSFT", start="2024-01-01", cache_dir=cache_dir, download=make_fake()
        )
    assert listing(cache_dir) == before  # byte-identical, nothing added
    assert as_dict(prices) == as_dict(good)
    assert prices.source["from_cache"] is True
    [warning] = [r.getMessage() for r in caplog.records if "using cached" in r.message]
    assert re.match(reason, warning)
    assert warning.endswith(
        f"; using cached prices from {str(cache_dir / 'MSFT.csv')!r} "
        "(2024-01-02 to 2024-01-04)"
    )
    assert prices.notes[-1] == warning


def test_unknown_symbol_without_cache(tmp_path):
    fake = FakeDownload(result=yf_empty_frame("XYZQ"), logged=not_found("XYZQ"))
    with pytest.raises(
        ForecasterError,
        match=r"^yfinance returned no prices for 'XYZQ' \(\['XYZQ'\]: "
        r"YFPricesMissingError\('possibly delisted; no price data found'\)\): the "
        r"symbol may be unknown or delisted, and there is no cache at .*\. Check the "
        r"symbol \(e\.g\. on finance\.yahoo\.com\)",
    ):
        download_prices("xyzq", cache_dir=tmp_path / "cache", download=fake)
    assert not (tmp_path / "cache").exists()


def test_failure_messages_are_distinct(tmp_path):
    said = {}
    kinds = ("rate-raised", "offline-raised", "unknown-symbol", "impersonation-logged")
    for name in kinds:
        with pytest.raises(ForecasterError) as caught:
            download_prices("MSFT", cache_dir=tmp_path, download=FAILURES[name][0]())
        said[name] = str(caught.value)
    assert "rate-limiting" in said["rate-raised"]
    assert "rate" not in said["offline-raised"] + said["unknown-symbol"]
    assert "internet connection" in said["offline-raised"]
    assert "internet" not in said["rate-raised"] + said["unknown-symbol"]
    assert "Check the symbol" in said["unknown-symbol"]
    stack = said["impersonation-logged"]
    assert "installation problem" in stack and "pip install --force-reinstall" in stack
    for other in ("rate-raised", "offline-raised", "unknown-symbol"):
        assert "installation" not in said[other] and "broken" not in said[other]
    assert "internet" not in stack and "Check the symbol" not in stack


def test_library_warnings_are_hidden_ours_are_not(tmp_path):
    """yfinance's deprecation warnings stay off the terminal; other warnings pass."""

    def noisy(tickers, **kwargs):
        warnings.warn_explicit(
            "inplace is deprecated",
            DeprecationWarning,
            "yfinance/data.py",
            1,
            module="yfinance.data",
        )
        warnings.warn_explicit(
            "old pandas call", FutureWarning, "curl_cffi/x.py", 1, module="curl_cffi.x"
        )
        warnings.warn("a warning of the caller's own", UserWarning, stacklevel=1)
        return yf_frame()

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        download_prices("MSFT", cache_dir=tmp_path, download=noisy)
    assert [str(w.message) for w in seen] == ["a warning of the caller's own"]


def test_cache_outside_the_range_is_an_error(tmp_path):
    download_prices(
        "MSFT",
        start="2024-01-01",
        cache_dir=tmp_path,
        download=FakeDownload(yf_frame()),
    )
    offline = FakeDownload(error=ConnectionError("Network is unreachable"))
    with pytest.raises(
        ForecasterError,
        match=r"holds no prices between 2025-01-01 and today \(it covers 2024-01-02 "
        r"to 2024-01-04\)\. Check your internet",
    ):
        download_prices(
            "MSFT", start="2025-01-01", cache_dir=tmp_path, download=offline
        )


def test_cache_is_sliced_to_start_and_end(tmp_path):
    download_prices(
        "MSFT",
        start="2024-01-01",
        cache_dir=tmp_path,
        download=FakeDownload(yf_frame(closes=(1.0, 2.0, 3.0, 4.0, 5.0))),
    )
    prices = download_prices(
        "MSFT",
        start="2024-01-03",
        end="2024-01-05",
        cache_dir=tmp_path,
        download=FakeDownload(error=ConnectionError("no route")),
    )
    assert list(as_dict(prices)) == ["2024-01-03", "2024-01-04", "2024-01-05"]


def test_damaged_cache_is_reported_not_replaced(tmp_path):
    cache = cache_path("MSFT", tmp_path)
    cache.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(
        ForecasterError,
        match=r"Could not reach .*, and the cache .*MSFT\.csv' cannot be used "
        r"\(File is not a CSV text file",
    ):
        download_prices(
            "MSFT",
            cache_dir=tmp_path,
            download=FakeDownload(error=ConnectionError("x")),
        )
    assert cache.read_bytes() == b"\x89PNG\r\n\x1a\n\x00\x00"


def test_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = download_prices(
            "MSFT", cache_dir=blocker, download=FakeDownload(result=yf_frame())
        )
    assert len(prices.values) == 3
    assert "Could not write the download cache" in caplog.text
    assert blocker.read_text() == "a file where the cache directory should be"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_cache_write_error_is_one_line_and_keeps_the_old_cache(
    tmp_path, caplog, monkeypatch, code
):
    cache = cache_path("MSFT", tmp_path)
    cache.write_text("the previous cache")
    real = forecaster.io.write_file_atomically

    def failing(path, write):
        def partial(tmp):
            tmp.write_text("partial")
            raise OSError(code, os.strerror(code), str(tmp))

        return real(path, partial)

    monkeypatch.setattr(forecaster.io, "write_file_atomically", failing)
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = download_prices(
            "MSFT", cache_dir=tmp_path, download=FakeDownload(result=yf_frame())
        )
    assert len(prices.values) == 3
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"Could not write the download cache {str(cache)!r}: {os.strerror(code)} "
        f"({errno.errorcode[code]})."
    )
    assert cache.read_text() == "the previous cache"
    assert listing(tmp_path) == {"MSFT.csv": b"the previous cache"}


def test_download_gaps_are_named_after_the_download(tmp_path, caplog):
    fake = FakeDownload(result=yf_frame(closes=(1.0, np.nan, 3.0)))
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        prices = download_prices("MSFT", cache_dir=tmp_path, download=fake)
    assert prices.notes == [
        "dropped 1 row(s) with no price in the download for 'MSFT': 2024-01-03"
    ]
    assert ".tmp" not in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"ticker": "  "},
            r"^ticker is empty\. Give a symbol such as MSFT\. Received: ticker=.  .",
        ),
        (
            {"ticker": "AAPL MSFT"},
            r"one symbol such as MSFT\. Received: ticker='AAPL MSFT'",
        ),
        ({"ticker": "AAPL,MSFT"}, r"one symbol .* Received: ticker='AAPL,MSFT'"),
        (
            {"start": "last year"},
            r"^start must be a date like 2015-01-31\. Received: ",
        ),
        ({"end": "2024-02-30"}, r"^end must be a date .* Received: end='2024-02-30'"),
        (
            {"start": "2024-02-01", "end": "2024-01-01"},
            r"^end must not be before start\. Received: start='2024-02-01', end=",
        ),
    ],
)
def test_bad_ticker_arguments(tmp_path, kwargs, message):
    fake = FakeDownload(result=yf_frame())
    arguments = {"ticker": "MSFT", "cache_dir": tmp_path / "cache", "download": fake}
    with pytest.raises(ForecasterError, match=message):
        download_prices(**(arguments | kwargs))
    assert fake.calls == [] and not (tmp_path / "cache").exists()


def test_bad_start_with_a_cache_is_still_a_forecaster_error(tmp_path):
    download_prices("MSFT", cache_dir=tmp_path, download=FakeDownload(yf_frame()))
    with pytest.raises(ForecasterError, match=r"start must be a date"):
        download_prices(
            "MSFT",
            start="garbage",
            cache_dir=tmp_path,
            download=FakeDownload(error=ConnectionError("x")),
        )


def test_csv_and_ticker_together_is_an_error():
    with pytest.raises(ForecasterError, match=r"either --csv or --ticker, not both"):
        load_prices(DataSettings(csv="a.csv", ticker="MSFT"))


def test_cache_path_is_safe():
    assert cache_path("../../etc/x", "cache") == Path("cache") / ".._.._ETC_X.csv"
    assert cache_path("^gspc", "cache") == Path("cache") / "^GSPC.csv"


@pytest.mark.parametrize("symbol", ["SSL", "CURL", "NET"])
def test_symbol_that_looks_like_a_network_word(tmp_path, symbol):
    fake = FakeDownload(result=yf_empty_frame(symbol), logged=not_found(symbol))
    with pytest.raises(ForecasterError, match=r"no prices for .*Check the symbol"):
        download_prices(symbol, cache_dir=tmp_path, download=fake)


def test_yfinance_not_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes the import fail
    with pytest.raises(
        ForecasterError,
        match=r"^yfinance is not installed, and there is no cache at .*\. Install it "
        r"\(pip install yfinance\), or use a saved CSV file instead",
    ):
        download_prices("MSFT", cache_dir=tmp_path)
