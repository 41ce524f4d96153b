"""Reading at pandas' speed (forecaster.data.bulk) gives what the careful reader gives.

Also: quotes sites' exports (K/M/B volumes, `Vol.`), and `read_prices` on
every layout the command line reads.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecaster as fc
from forecaster.data import bulk, csv, dates
from forecaster.data.csv import read_price_csv
from forecaster.data.panel import read_long_csv, read_panel_dir
from forecaster.data.series import Panel
from forecaster.data.tables import read_price_file, read_series_csv
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


YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume\n" + "".join(
    f"2024-01-{day:02d},{10 + day}.5,{11 + day},{9 + day},{10 + day}.25,"
    f"{10 + day}.2,{1000 * day}\n"
    for day in range(2, 30)
)


def parse_counter(monkeypatch) -> dict:
    """Count the parses of a file: pandas' reads and the careful reader's."""
    counts = {}
    read_csv, read_table = pd.read_csv, csv.read_table

    def counted_read_csv(*args, **kwargs):
        counts["pandas"] = counts.get("pandas", 0) + 1
        return read_csv(*args, **kwargs)

    def counted_read_table(*args, **kwargs):
        counts["careful"] = counts.get("careful", 0) + 1
        return read_table(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counted_read_csv)
    monkeypatch.setattr(csv, "read_table", counted_read_table)
    return counts


@pytest.mark.parametrize(
    "text, parses",
    [
        (YAHOO, {"pandas": 1}),
        (YAHOO.replace(",15.2,", ",$15.2,"), {"pandas": 1}),
        (YAHOO.replace("\n2024-01-05,", "\n\n2024-01-05,"), {"careful": 1}),
    ],
)
def test_read_price_file_parses_the_file_once(tmp_path, monkeypatch, text, parses):
    """Once for the target and the OHLCV columns, whichever reader reads it."""
    path = tmp_path / "AAA.csv"
    path.write_text(text)
    counts = parse_counter(monkeypatch)
    series = read_price_file(path)
    assert counts == parses
    assert list(series.ohlcv.columns) == list(OHLCV_NAMES)
    assert series.columns == ("Date", *OHLCV_NAMES)
    assert series.values.name == "Adj Close" and len(series) == 28


OHLCV_NAMES = ("Open", "High", "Low", "Close", "Adj Close", "Volume")


@pytest.mark.parametrize(
    "variant",
    [
        lambda text: text,
        lambda text: text.replace("\n", "\r\n"),  # Windows line ends
        lambda text: "\ufeff" + text,  # a byte-order mark
        lambda text: text.rstrip("\n"),  # no newline at the end
        lambda text: text.replace(",", ", "),  # spaces after commas
        # the date column last, and with Windows line ends
        lambda text: "\r\n".join(
            ",".join(line.split(",")[1:] + line.split(",")[:1])
            for line in text.splitlines()
        ),
    ],
)
def test_plain_file_reads_as_the_careful_reader(tmp_path, monkeypatch, variant):
    path = tmp_path / "AAA.csv"
    path.write_bytes(variant(YAHOO).encode("utf-8"))
    fast_file, fast_price = read_price_file(path), read_price_csv(path)
    careful_only(monkeypatch)
    careful_file, careful_price = read_price_file(path), read_price_csv(path)
    assert_same_panels(Panel([fast_file]), Panel([careful_file]))
    pd.testing.assert_series_equal(fast_price.values, careful_price.values)
    assert (fast_price.source, fast_price.columns) == (
        careful_price.source,
        careful_price.columns,
    )


def test_plain_days_are_read_from_the_bytes(tmp_path):
    raw = YAHOO.encode()
    table = bulk.fast_table(raw, tmp_path, ["Date", "Adj Close"])
    assert table["Date"].dtype == "datetime64[us]"  # NumPy read them
    assert list(table.columns) == ["Date", "Adj Close"] and table.index[0] == 2
    assert table["Date"].iloc[-1] == pd.Timestamp("2024-01-29")


@pytest.mark.parametrize(
    "day", ["2023-02-29", "1899-12-31", "2024-1-05 ", " 2024-1-05", "2024/01/05"]
)
def test_days_that_are_not_plain_take_the_formats(tmp_path, day):
    """Not a day, out of range or another layout: pandas reads the cells as
    text, for the formats (and their messages)."""
    raw = YAHOO.replace("2024-01-05", day).encode()
    table = bulk.fast_table(raw, tmp_path, ["Date", "Adj Close"])
    assert table["Date"].dtype.kind != "M" and table["Date"].iloc[3] == day
    path = tmp_path / "x.csv"
    path.write_bytes(raw)
    if day in ("2023-02-29", "1899-12-31"):
        with pytest.raises(ForecasterError, match=rf"e\.g\. '{day}' \(line 5\)"):
            read_price_file(path)


def test_bad_volume_of_a_plain_file_names_value_date_and_line(tmp_path):
    path = tmp_path / "AAA.csv"
    path.write_text(YAHOO.replace(",6000\n", ",6k0\n"))
    with pytest.raises(ForecasterError) as caught:
        read_price_file(path)
    assert str(caught.value).startswith(
        f"Column 'Volume' in {str(path)!r} has a value that is not a number: "
        "'6k0' on 2024-01-06 (line 6)."
    )
    assert read_price_csv(path).values.iloc[4] == 16.2  # the target alone reads


def test_long_file_with_a_bad_cell_warns_nothing_but_its_error(tmp_path):
    """pandas reads more than 2**18 rows in chunks: a column with a bad cell is
    text in one chunk and numbers in the others. That is expected here, so
    pandas' DtypeWarning is not the user's business."""
    days = pd.bdate_range("2000-01-03", periods=5000).strftime("%Y-%m-%d")
    rows = [f"{day},T{t:02d},{50 + t}.25" for t in range(55) for day in days]
    rows[-5] = rows[-5].rsplit(",", 1)[0] + ",12.3x"
    assert len(rows) > 2**18
    path = tmp_path / "long.csv"
    path.write_text("date,ticker,close\n" + "\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ForecasterError, match=r"^Price column 'close' .*'12\.3x'"):
            read_long_csv(path)
