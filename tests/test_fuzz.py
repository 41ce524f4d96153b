"""Fuzzing the loader: any input gives a clean Series or a ForecasterError, no other.

Covers the portal formats too (gap markers such as "." and "#N/A", a series
code as the only numeric column, BOM and CRLF, semicolons with decimal
commas). Panel layouts (many series in one file) are not read yet, so they
are not fuzzed here.
"""

from __future__ import annotations

import csv
import datetime as dt
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from forecaster.data import Series, download_prices, read_price_csv
from forecaster.errors import ForecasterError


def fuzz(examples: int) -> settings:
    """Deterministic (derandomize) settings; the counts keep this file near 10 s."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,  # replay nothing from earlier runs: same examples every time
        suppress_health_check=[HealthCheck.too_slow],
    )


# Small valid files in the layouts the loader supports; the numbers are synthetic.
YAHOO = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02,10.0,11.0,9.0,10.5,5.25,1000\n"
    "2024-01-03,10.5,12.0,10.0,11.5,5.75,1100\n"
    "2024-01-04,11.5,13.0,11.0,12.5,6.25,1200\n"
    "2024-01-05,12.5,14.0,12.0,13.5,6.75,1300\n"
    "2024-01-08,13.5,15.0,13.0,14.5,7.25,1400\n"
)
NASDAQ = (
    "Date,Close/Last,Volume,Open,High,Low\n"
    "01/08/2024,$104.00,1400,$103.00,$105.00,$102.00\n"
    "01/05/2024,$103.00,1300,$102.00,$104.00,$101.00\n"
    '01/04/2024,"$1,102.00",1200,$101.00,$103.00,$100.00\n'
    "01/03/2024,N/A,1100,$100.00,$102.00,$99.00\n"
    "01/02/2024,$100.00,1000,$99.00,$101.00,$98.00\n"
)
YFINANCE = (
    "Price,Close,High,Low,Open,Volume\n"
    "Ticker,MSFT,MSFT,MSFT,MSFT,MSFT\n"
    "Date,,,,,\n"
    "2024-01-02,100.0,101.0,99.0,99.5,1000\n"
    "2024-01-03,101.0,102.0,100.0,100.5,1001\n"
    "2024-01-04,102.0,103.0,101.0,101.5,1002\n"
)
BASES = [YAHOO, NASDAQ, YFINANCE]
WEIRD_TOKENS = [
    "",
    ",",
    ",,",
    '"',
    '""',
    "'",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "\x00",
    "\ufeff",
    "\x0b",
    "$",
    "-",
    "+",
    ".",
    "e",
    "1e999",
    "-1",
    "0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "N/A",
    "#N/A",
    "NA",
    "null",
    "Null",
    "1,234.50",
    '"1,234.50"',
    "1.234,50",
    "abc",
    "Date",
    "Close",
    "Adj Close",
    "Price",
    "Ticker",
    "2024-01-03",
    "2024-02-30",
    "0024-01-03",
    "31/12/2023",
    "01/02/2024",
    "2024-01-03 00:00:00-05:00",
    "2024-01-03T12:00:00Z",
    "Jan 3, 2024",
    "9" * 400,
    "\u00e9",
    "\u2212",
    "\U0001f4c8",
]
# Mostly the default column; sometimes a --column, valid or not.
column_choice = (
    st.none()
    | st.none()
    | st.none()
    | st.sampled_from(["Close", "adj close", "VOLUME", "Date", "nope", ""])
)
MUTATIONS = [
    "insert",
    "delete",
    "replace",
    "shuffle_lines",
    "drop_cell",
    "weird_token",
    "binary",
    "duplicate_line",
    "drop_line",
    "truncate",
]


def check(path, column=None, decimal=".") -> Series | None:
    """The property: a clean Series, or a one-line ForecasterError; nothing else."""
    try:
        prices = read_price_csv(path, column=column, decimal=decimal)
    except ForecasterError as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message
        event(f"error: {_kind_of_error(message)}")
        return None
    assert_clean(prices)
    event("prices")
    return prices


def _kind_of_error(message: str) -> str:
    """The message with paths and values cut out, to group errors in statistics."""
    for cut in (" in ", " of ", ":", "("):
        message = message.split(cut)[0]
    return message


def assert_clean(prices: Series) -> None:
    values = prices.values
    assert isinstance(prices, Series)
    assert isinstance(values.index, pd.DatetimeIndex)
    assert values.index.is_monotonic_increasing
    assert values.index.is_unique
    assert values.dtype == np.float64
    array = values.to_numpy()
    assert len(array) >= 2
    assert np.isfinite(array).all()
    assert (array > 0).all()
    assert (values.index == values.index.normalize()).all()


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "input.csv"


def mutate(text: str, kind: str, where: float, rng: random.Random) -> str:
    """Apply one named mutation at a relative position `where` (0..1)."""
    at = int(where * len(text))
    lines = text.split("\n")
    line_no = int(where * len(lines)) % max(len(lines), 1)
    if kind == "insert":
        return text[:at] + rng.choice(",\"'$-.0123456789\n ;e") + text[at:]
    if kind == "delete":
        return text[:at] + text[at + 1 :]
    if kind == "replace":
        return text[:at] + rng.choice(',"x9.\n-$ ') + text[at + 1 :]
    if kind == "shuffle_lines":
        rng.shuffle(lines)
        return "\n".join(lines)
    if kind == "drop_cell":
        cells = lines[line_no].split(",")
        del cells[rng.randrange(len(cells))]
        lines[line_no] = ",".join(cells)
        return "\n".join(lines)
    if kind == "weird_token":
        cells = lines[line_no].split(",")
        cells[rng.randrange(len(cells))] = rng.choice(WEIRD_TOKENS)
        lines[line_no] = ",".join(cells)
        return "\n".join(lines)
    if kind == "binary":
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        return text[:at] + noise.decode("latin-1") + text[at:]
    if kind == "duplicate_line":
        lines.insert(line_no, lines[line_no])
        return "\n".join(lines)
    if kind == "drop_line":
        del lines[line_no]
        return "\n".join(lines)
    if kind == "truncate":
        return text[:at]
    raise AssertionError(kind)


mutation = st.tuples(st.sampled_from(MUTATIONS), st.floats(0, 1))


@fuzz(300)
@given(
    base=st.sampled_from(BASES),
    steps=st.lists(mutation, min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
    column=column_choice,
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-8-sig"]),
)
def test_mutated_csv(fuzz_file, base, steps, seed, column, encoding):
    rng = random.Random(seed)
    text = base
    for kind, where in steps:
        text = mutate(text, kind, where, rng)
    fuzz_file.write_bytes(text.encode(encoding, errors="replace"))
    check(fuzz_file, column)


csv_alphabet = st.sampled_from(list(',"\n\r $-.0123456789/:ADTaenN e+;\t'))


@fuzz(200)
@given(
    text=st.text(alphabet=csv_alphabet, max_size=300)
    | st.text(max_size=200)
    | st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
    column=column_choice,
    decimal=st.sampled_from([".", ".", ","]),
)
def test_random_text(fuzz_file, text, column, decimal):
    fuzz_file.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    check(fuzz_file, column, decimal)


@fuzz(200)
@given(raw=st.binary(max_size=400))
def test_random_bytes(fuzz_file, raw):
    fuzz_file.write_bytes(raw)
    check(fuzz_file)


# Date formats a file may use throughout; each maps a date to its text.
DATE_STYLES = {
    "iso": dt.date.isoformat,
    "us": lambda day: day.strftime("%m/%d/%Y"),
    "dotted": lambda day: day.strftime("%d.%m.%Y"),
    "month-name": lambda day: day.strftime("%d-%b-%Y"),
    "nasdaq-long": lambda day: day.strftime("%b %d, %Y"),
    "offset": lambda day: f"{day} 00:00:00-05:00",
    "utc": lambda day: f"{day}T16:00:00Z",
}
# Ways a price is written; each maps a price in cents to its text.
PRICE_STYLES = {
    "plain": lambda cents: f"{cents / 100:.2f}",
    "dollar": lambda cents: f"${cents / 100:.2f}",
    "dollar-thousands": lambda cents: f"${cents / 100:,.2f}",
    "thousands": lambda cents: f"{cents / 100:,.2f}",
    "exponent": lambda cents: f"{cents}e-2",
}
weird_token = st.sampled_from(WEIRD_TOKENS)


def mostly(usual, rare, one_in: int):
    """`rare` about once in `one_in` draws, else `usual`."""
    return st.integers(1, one_in).flatmap(lambda k: rare if k == 1 else usual)


# Mostly recent dates and real prices, so that most tables get past the date
# column; sometimes dates beyond the loader's 1900..2200 limits.
any_date = mostly(
    st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)),
    st.dates(dt.date(1890, 1, 1), dt.date(2210, 12, 31)),
    one_in=10,
)
date_cell = mostly(any_date, weird_token, one_in=12)
price_cell = mostly(
    st.floats(0.01, 1e6).map(lambda x: f"{x:.2f}")
    | st.floats(0.01, 1e7).map(lambda x: f"${x:,.2f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(str)
    | st.integers(-5, 10**12).map(str)
    | weird_token,
    one_in=6,
)
HEADERS = [
    ["Date", "Close", "Volume"],
    ["Date", "Adj Close", "Close"],
    ["date", "close/last", "open"],
    ["When", "Price", "x"],
    ["Date", "Open", "High"],
    ["Price", "Close", "Open"],
]


@fuzz(150)
@given(
    header=st.sampled_from(HEADERS),
    style=st.sampled_from(sorted(DATE_STYLES)),
    rows=st.lists(
        st.tuples(date_cell, price_cell),
        min_size=1,
        max_size=12,
    ),
    column=column_choice,
)
def test_random_tables(fuzz_file, header, style, rows, column):
    """Well-formed CSV (quoted by the csv module) with random cells."""
    lines = [header]
    for date, price in rows:
        date_text = DATE_STYLES[style](date) if isinstance(date, dt.date) else date
        lines.append([date_text, price, price[::-1]])
    with fuzz_file.open("w", newline="", encoding="utf-8", errors="replace") as out:
        csv.writer(out).writerows(lines)
    check(fuzz_file, column)


@fuzz(150)
@given(
    rows=st.lists(
        st.tuples(
            st.dates(dt.date(1950, 1, 1), dt.date(2150, 12, 31)), st.integers(1, 10**10)
        ),
        min_size=2,
        max_size=15,
        unique_by=lambda row: row[0],
    ),
    gap_days=st.lists(st.dates(dt.date(1950, 1, 1), dt.date(2150, 12, 31)), max_size=4),
    repeats=st.integers(0, 3),
    date_style=st.sampled_from(sorted(DATE_STYLES)),
    price_style=st.sampled_from(sorted(PRICE_STYLES)),
    gap_token=st.sampled_from(
        ["", "null", "N/A", "-", "nan", "NaN", ".", "#N/A", "NA", "NULL"]
    ),
    price_name=st.sampled_from(["Close", "Adj Close", "close/last", "PRICE", "DGS10"]),
    order_seed=st.integers(0, 2**16),
    excel=st.booleans(),
)
def test_valid_tables_read_exactly(
    fuzz_file,
    rows,
    gap_days,
    repeats,
    date_style,
    price_style,
    gap_token,
    price_name,
    order_seed,
    excel,
):
    """An oracle: any valid layout gives exactly the prices written, oldest first.

    A series code (DGS10) is the only numeric column, as in FRED's files; an
    Excel export starts with a BOM and ends its lines with CRLF.
    """
    rng = random.Random(order_seed)
    write_date, write_price = DATE_STYLES[date_style], PRICE_STYLES[price_style]
    coded = price_name == "DGS10"
    other = "Note" if coded else "Volume"  # a code is found as the only number
    days = {day for day, _ in rows}
    gaps = sorted(set(gap_days) - days)
    lines = [[write_date(day), "x", write_price(cents)] for day, cents in rows]
    lines += [lines[i] for i in range(min(repeats, len(lines)))]  # identical repeats
    lines += [[write_date(day), "x", gap_token] for day in gaps]
    rng.shuffle(lines)
    lines = [[d, "7" if not coded else v, p] for d, v, p in lines]
    encoding = "utf-8-sig" if excel else "utf-8"
    with fuzz_file.open("w", newline="", encoding=encoding) as out:
        writer = csv.writer(out, lineterminator="\r\n" if excel else "\n")
        writer.writerows([["Date", other, price_name], *lines])

    prices = read_price_csv(fuzz_file)

    assert_clean(prices)
    expected = {pd.Timestamp(day): cents / 100 for day, cents in sorted(rows)}
    assert prices.values.to_dict() == expected
    assert prices.source["column"] == price_name
    assert len(prices.notes) == coded + bool(gaps) + bool(repeats)
    if coded:
        assert prices.notes[0].startswith("using column 'DGS10'")
    if gaps:
        assert prices.notes[coded].startswith(
            f"dropped {len(gaps)} row(s) with no price"
        )


@fuzz(100)
@given(
    rows=st.lists(
        st.tuples(
            st.dates(dt.date(1950, 1, 1), dt.date(2150, 12, 31)), st.integers(1, 10**10)
        ),
        min_size=2,
        max_size=15,
        unique_by=lambda row: row[0],
    ),
    grouped=st.booleans(),
    gap_token=st.sampled_from(["", ".", "#N/A", "NaN"]),
    excel=st.booleans(),
)
def test_decimal_comma_tables_read_exactly(fuzz_file, rows, grouped, gap_token, excel):
    """Semicolons and decimal commas (1.234,50), read with decimal=","."""

    def price(cents):
        text = f"{cents / 100:,.2f}" if grouped else f"{cents / 100:.2f}"
        return text.replace(",", " ").replace(".", ",").replace(" ", ".")

    lines = [[f"{day:%d.%m.%Y}", price(cents)] for day, cents in rows]
    lines.append(["31.12.2199", gap_token])
    encoding = "utf-8-sig" if excel else "utf-8"
    with fuzz_file.open("w", newline="", encoding=encoding) as out:
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerows([["Datum", "Schluss"], *lines])

    prices = read_price_csv(fuzz_file, column="Schluss", decimal=",")

    expected = {pd.Timestamp(day): cents / 100 for day, cents in sorted(rows)}
    assert prices.values.to_dict() == expected
    assert prices.notes[-1].endswith("2199-12-31")


def download_frame(closes: list[float], volumes: list[float]) -> pd.DataFrame:
    """Shaped like yfinance.download(ticker, auto_adjust=True) for one ticker."""
    index = pd.DatetimeIndex(
        pd.to_datetime(pd.bdate_range("2024-01-02", periods=len(closes))), name="Date"
    )
    closes = np.asarray(closes, dtype=np.float64)
    history = pd.DataFrame(
        {"Close": closes, "High": closes, "Low": closes, "Open": closes},
        index=index,
    ).assign(Volume=np.asarray(volumes, dtype=np.float64))
    frame = pd.concat([history], axis=1, keys=["MSFT"], names=["Ticker", "Price"])
    frame.columns = frame.columns.swaplevel(0, 1)
    return frame.sort_index(axis=1, level=0)


CACHED = (
    "Date,Close,High,Low,Open,Volume\n"
    "2024-01-02,50.0,50.0,50.0,50.0,1\n"
    "2024-01-03,51.0,51.0,51.0,51.0,1\n"
)


@fuzz(100)
@given(
    data=st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True) | st.just(float("nan")),
            st.floats(0, 1e9) | st.just(float("nan")),
        ),
        max_size=8,
    ),
    with_cache=st.booleans(),
)
def test_random_downloads(tmp_path_factory, data, with_cache):
    """A usable download replaces the cache; anything else leaves it byte-identical."""
    cache_dir = tmp_path_factory.mktemp("cache")
    cache = cache_dir / "MSFT.csv"
    if with_cache:
        cache.write_text(CACHED)
    frame = download_frame([c for c, _ in data], [v for _, v in data])
    try:
        prices = download_prices(
            "MSFT",
            start="2024-01-01",
            cache_dir=cache_dir,
            download=lambda *args, **kwargs: frame.copy(),
        )
    except ForecasterError as err:
        assert not with_cache or "cannot be used" not in str(err)
        assert sorted(p.name for p in cache_dir.iterdir()) == (
            ["MSFT.csv"] if with_cache else []
        )
        assert not with_cache or cache.read_text() == CACHED
        return
    assert_clean(prices)
    assert sorted(p.name for p in cache_dir.iterdir()) == ["MSFT.csv"]
    if prices.source.get("from_cache"):
        assert cache.read_text() == CACHED
    else:
        assert read_price_csv(cache).values.equals(prices.values)
