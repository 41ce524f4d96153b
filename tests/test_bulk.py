"""Reading at pandas' speed (forecaster.data.bulk) gives what the careful reader gives.

Also: quotes sites' exports (K/M/B volumes, `Vol.`), and `read_prices` on
every layout the command line reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecaster as fc
from forecaster.data import bulk, dates
from forecaster.data.csv import read_price_csv
from forecaster.data.panel import read_long_csv, read_panel_dir
from forecaster.data.series import Panel
from forecaster.data.tables import read_series_csv
from forecaster.errors import ForecasterError
from forecaster.prep.features import compute_features


def long_text(tickers=("AAA", "BBB", "CCC"), days=30, shuffle=False) -> str:
    """A long-format CSV of random walks, one row per ticker and day."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=days).strftime("%Y-%m-%d")
    rows = []
    for name in tickers:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        for day, price in zip(dates, close, strict=True):
            rows.append(
                f"{day},{name},{price:.4f},{price * 1.01:.4f},{price * 0.99:.4f},"
                f"{price:.4f},{price * 0.9:.4f},{rng.integers(1000, 9000)}"
            )
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    return "date,ticker,open,high,low,close,adj_close,volume\n" + "\n".join(rows) + "\n"


def careful_only(monkeypatch):
    """Make every file go through the careful, cell-by-cell reader (and dates
    through pandas' parser)."""
    monkeypatch.setattr(
        "forecaster.data.csv.fast_table", lambda raw, path, usecols=None: None
    )
    monkeypatch.setattr("forecaster.data.dates.iso_days", lambda cells: None)


def assert_same_panels(fast: Panel, careful: Panel) -> None:
    assert fast.names == careful.names
    for name in fast:
        a, b = fast[name], careful[name]
        pd.testing.assert_series_equal(a.values, b.values)
        pd.testing.assert_frame_equal(a.ohlcv, b.ohlcv)
        assert (a.source, a.columns, a.where, a.notes) == (
            b.source,
            b.columns,
            b.where,
            b.notes,
        )


@pytest.mark.parametrize("shuffle", [False, True])
def test_long_file_reads_as_the_careful_reader_reads_it(tmp_path, monkeypatch, shuffle):
    path = tmp_path / "long.csv"
    path.write_text(long_text(shuffle=shuffle))
    fast = read_long_csv(path)
    careful_only(monkeypatch)
    assert_same_panels(fast, read_long_csv(path))


def test_long_file_with_odd_tickers_reads_as_the_careful_reader(tmp_path, monkeypatch):
    """A gap, a repeated day and a '$' price: those tickers take the careful way."""
    lines = long_text().splitlines()
    lines[3] = lines[3].replace(",AAA,", ",AAA,,", 1).rsplit(",", 1)[0]  # no close
    lines.append(lines[40])  # BBB's day given twice, identically
    lines[70] = lines[70].replace(",CCC,", ",CCC,$", 1)
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    fast = read_long_csv(path)
    careful_only(monkeypatch)
    careful = read_long_csv(path)
    assert_same_panels(fast, careful)
    assert any("duplicate" in note for note in fast["BBB"].notes)


def test_bad_cell_of_a_long_file_names_ticker_line_and_value(tmp_path):
    lines = long_text().splitlines()
    lines[45] = lines[45].replace(lines[45].split(",")[5], "12.3x")  # BBB's close
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    assert bulk.fast_table(path.read_bytes(), path) is not None  # the fast way
    with pytest.raises(ForecasterError) as caught:
        read_long_csv(path)
    message = str(caught.value)
    assert "(ticker 'BBB')" in message and "'12.3x'" in message
    assert "(line 46)" in message and "\n" not in message
    skipped = read_long_csv(path, skip_bad=True)
    assert skipped.names == ["AAA", "CCC"] and "'BBB'" in skipped.notes[0]


def test_single_file_reads_as_the_careful_reader(tmp_path, monkeypatch):
    path = tmp_path / "AAA.csv"
    text = long_text(tickers=("AAA",)).replace(",AAA,", ",")
    path.write_text(text.replace("date,ticker,", "Date,"))
    fast, fast_price = read_series_csv(path), read_price_csv(path)
    careful_only(monkeypatch)
    assert_same_panels(Panel([fast]), Panel([read_series_csv(path)]))
    pd.testing.assert_series_equal(fast_price.values, read_price_csv(path).values)


@pytest.mark.parametrize(
    "text",
    [
        'Date,Close\n2024-01-02,"1\n2"\n',  # a quoted cell over two lines
        "Date,Close\n\n2024-01-02,1\n",  # a blank line
        "Date,Close\n2024-01-02,1\n,\n",  # a row of bare commas
        "Date,Close\n2024-01-02,1,\n",  # a row wider than the header
        "Date,Close\n2024-01-02,True\n",  # pandas would read a boolean
        "Price,Close\nTicker,AAPL\nDate,\n2024-01-02,1\n",  # yfinance's header
    ],
)
def test_what_the_careful_reader_treats_specially_goes_to_it(tmp_path, text):
    path = tmp_path / "x.csv"
    path.write_text(text)
    assert bulk.fast_table(path.read_bytes(), path) is None
    assert bulk.fast_table(path.read_bytes(), path, ["Date", "Close"]) is None


def test_two_columns_read_of_a_wide_row_keeps_the_careful_message(tmp_path):
    """pandas ignores extra cells outside the columns it reads: not us."""
    path = tmp_path / "x.csv"
    path.write_text("Date,Open,Close\n2024-01-02,1,2\n2024-01-03,1,2,7\n")
    with pytest.raises(ForecasterError, match=r"^Line 3 of .* has 4 cells"):
        read_price_csv(path)


def test_iso_days_reads_only_plain_dates_in_range():
    days = dates.iso_days(pd.Series(["2024-02-29", " 2024-03-01"]).str.strip())
    assert list(days.dt.strftime("%Y-%m-%d")) == ["2024-02-29", "2024-03-01"]
    for odd in ("2023-02-29", "2024-03", "1899-12-31", "2024-03-01Z", "NaT"):
        assert dates.iso_days(pd.Series(["2024-02-28", odd])) is None


def test_numbers_reads_odd_cells_once_and_marks_the_bad():
    cells = pd.Series(["1.5", " 2", "$1,234.50", "N/A", "abc", "3.31M"])
    values, bad = bulk.numbers(cells)
    np.testing.assert_array_equal(bad, [False, False, False, False, True, True])
    np.testing.assert_array_equal(values[:3], [1.5, 2.0, 1234.5])
    assert np.isnan(values[3])
    volumes, bad = bulk.numbers(
        pd.Series(["3.31M", "850.2K", "1.2b", "-", "7"]), suffixes=True
    )
    assert not bad.any()
    np.testing.assert_allclose(volumes[[0, 1, 2, 4]], [3.31e6, 850.2e3, 1.2e9, 7.0])


QUOTES_SITE = '"Date","Price","Open","High","Low","Vol.","Change %"\n' + "".join(
    f'"{day:%m/%d/%Y}","{1000 + i:,.2f}","{999 + i:,.2f}","{1010 + i:,.2f}",'
    f'"{990 + i:,.2f}","{3.31 + i / 100:.2f}M","{(-1) ** i * 1.04:.2f}%"\n'
    for i, day in reversed(list(enumerate(pd.bdate_range("2024-01-02", periods=40))))
)


def test_quotes_site_export_gives_prices_and_volumes(tmp_path):
    """Newest day first, "1,000.00" prices, `Vol.` in millions, a `Change %`."""
    path = tmp_path / "INDEX.csv"
    path.write_text(QUOTES_SITE)
    series = read_series_csv(path)
    assert series.values.name == "Price" and series.values.index.is_monotonic_increasing
    assert series.values.iloc[0] == 1000.0 and series.values.iloc[-1] == 1039.0
    assert list(series.ohlcv.columns) == ["Open", "High", "Low", "Volume"]
    assert series.ohlcv["Volume"].iloc[0] == pytest.approx(3.31e6)
    features = compute_features(series, ["close", "range", "volume"])
    assert np.isfinite(features.to_numpy()).all() and len(features) > 10
    assert read_price_csv(path).values.name == "Price"


def test_change_percent_is_never_a_price(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('"Date","Change %"\n"01/02/2024","1.04%"\n"01/03/2024","-0.5%"\n')
    with pytest.raises(ForecasterError, match=r"^No price column in .*'Change %'"):
        read_price_csv(path)


def test_read_prices_reads_every_layout(tmp_path):
    long_path = tmp_path / "long.csv"
    long_path.write_text(long_text())
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, item in read_long_csv(long_path).items():
        item.ohlcv.assign(Date=item.values.index).to_csv(folder / f"{name}.csv")
    one = fc.read_prices(folder / "AAA.csv")
    assert isinstance(one, pd.Series) and one.attrs["source"]["kind"] == "csv"
    for source in (long_path, folder, sorted(folder.glob("*.csv"))):
        panel = fc.read_prices(source)
        assert isinstance(panel, Panel) and panel.names == ["AAA", "BBB", "CCC"]
        assert list(panel["BBB"].ohlcv.columns)[-1] == "Volume"
    assert read_panel_dir(folder).names == ["AAA", "BBB", "CCC"]
