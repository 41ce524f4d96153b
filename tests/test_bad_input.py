"""Files that are not usable price CSVs: each gives a ForecasterError saying why."""

from __future__ import annotations

import re
import zlib

import pytest
from conftest import write

from forecaster.data import read_price_csv
from forecaster.errors import ForecasterError


def tiny_png() -> bytes:
    """A valid 1x1 PNG, built here rather than stored as a fixture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        crc = zlib.crc32(body).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + body + crc

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def raises(path, message: str, column: str | None = None) -> str:
    """Assert read_price_csv raises a one-line ForecasterError matching `message`."""
    with pytest.raises(ForecasterError, match=message) as caught:
        read_price_csv(path, column=column)
    text = str(caught.value)
    assert "\n" not in text and "\r" not in text
    return text


# --------------------------------------------------------------- not a CSV at all


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    raises(
        missing,
        rf"^CSV file not found: {re.escape(repr(str(missing)))}\. Check the path, or "
        r"omit --csv to use the sample data/AAPL\.csv\.$",
    )


def test_directory(tmp_path):
    raises(
        tmp_path,
        rf"^Expected a CSV file but got a directory: {re.escape(repr(str(tmp_path)))}",
    )


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\r\n"])
def test_empty_file(tmp_path, content):
    raises(
        write(tmp_path, content), r"^CSV file is empty: .*prices\.csv'\. Give a file"
    )


def test_bare_commas_only(tmp_path):
    raises(write(tmp_path, ",,,\n,,\n"), r"^CSV file is empty: ")


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        ("Date,Close\n", r"\['Date', 'Close'\]"),
        ("Date,Open,Close,Adj Close\n\n", r"\['Date', 'Open', 'Close', 'Adj Close'\]"),
        ("Price,Close\nTicker,MSFT\nDate,\n", r"\['Date', 'Close'\]"),  # yfinance
    ],
)
def test_header_only(tmp_path, header, columns):
    raises(
        write(tmp_path, header),
        rf"^CSV file has a header but no rows: .* \(columns {columns}\)\. Give a file",
    )


def test_png_bytes(tmp_path):
    raises(
        write(tmp_path, tiny_png(), "chart.png"),
        r"^File is not a CSV text file \(it holds binary data, or is UTF-16\): "
        r".*chart\.png'\. Give a comma-separated UTF-8 text file",
    )


def test_utf16_file(tmp_path):
    path = write(tmp_path, "Date,Close\n2024-01-02,1\n2024-01-03,2\n".encode("utf-16"))
    raises(path, r"^File is not a CSV text file \(it holds binary data, or is UTF-16\)")


def test_text_without_commas(tmp_path):
    text = "Lorem ipsum dolor sit amet\nconsectetur adipiscing elit\n"
    raises(
        write(tmp_path, text, "notes.txt"),
        r"does not look like a CSV with a date and a price column: found columns "
        r"\['Lorem ipsum dolor sit amet'\]\. Give a comma-separated file",
    )


def test_semicolon_separated(tmp_path):
    text = "Date;Close\n2024-01-02;1,5\n2024-01-03;2,5\n"
    raises(
        write(tmp_path, text),
        r"found columns \['Date;Close'\]\. It looks semicolon-separated: if its "
        r"numbers use a decimal comma \(1\.234,50\), pass --decimal , to read it\.$",
    )


def test_huge_header_is_shortened(tmp_path):
    text = "x" * 5000 + "\n1\n"
    message = raises(write(tmp_path, text), r"found columns \['x+\.\.\.\]\.")
    assert len(message) < 300


# ---------------------------------------------------- no date or no price column


def test_no_date_column_lists_the_columns(tmp_path):
    text = "Symbol,Close\nAAPL,10\nAAPL,11\n"
    raises(
        write(tmp_path, text),
        r"^No date column in .*: found columns \['Symbol', 'Close'\]\. Name the date "
        r"column 'Date'\.$",
    )


def test_no_price_column_lists_the_columns(tmp_path):
    text = "Date,Open,Volume\n2024-01-02,1,100\n2024-01-03,2,200\n"
    raises(
        write(tmp_path, text),
        r"^No price column in .*: found columns \['Date', 'Open', 'Volume'\]\. "
        r"Expected 'Adj Close' or 'Close', or name one with --column\.$",
    )


def test_unknown_column_lists_the_columns(tmp_path):
    text = "Date,Close\n2024-01-02,1\n2024-01-03,2\n"
    raises(
        write(tmp_path, text),
        r"^Column 'Adj Close' \(from --column\) is not in .*: found columns "
        r"\['Date', 'Close'\]\. Choose one of those\.$",
        column="Adj Close",
    )


def test_column_naming_the_dates(tmp_path):
    text = "Date,Close\n2024-01-02,1\n2024-01-03,2\n"
    raises(
        write(tmp_path, text),
        r"^Column 'date' \(from --column\) is the date column of .*\. Name a price",
        column="date",
    )


def test_blank_and_repeated_header_names(tmp_path):
    text = ",Close,Close\n2024-01-02,1,2\n2024-01-03,3,4\n"
    prices = read_price_csv(write(tmp_path, text))  # first column holds dates
    assert list(prices.values) == [1.0, 3.0]
    assert list(read_price_csv(write(tmp_path, text), column="close.1").values) == [
        2.0,
        4.0,
    ]
    raises(
        write(tmp_path, "Foo,Bar,Bar\nx,1,2\ny,3,4\n"),
        r"found columns \['Foo', 'Bar', 'Bar\.1'\]",
    )


# ------------------------------------------------------------ broken rows and cells


def test_unquoted_thousands_separator_is_refused_not_misread(tmp_path):
    text = "Date,Close,Volume\n2024-01-02,1,234.50,100\n2024-01-03,1235.00,100\n"
    raises(
        write(tmp_path, text),
        r"^Line 2 of .* has 4 cells but the header has 3: '2024-01-02,1,234\.50,100'\. "
        r'Quote numbers that contain commas, e\.g\. "1,234\.50"\.$',
    )


def test_unclosed_quote(tmp_path):
    text = 'Date,Close\n2024-01-02,10\n2024-01-03,"11\n2024-01-04,12\n2024-01-05,13\n'
    raises(
        write(tmp_path, text),
        r"^Line 3 of .* has a quoted cell that runs over several lines \(an unclosed "
        r"'\"'\?\)\. Fix the quotes\.$",
    )


def test_huge_cell(tmp_path):
    text = "Date,Close\n2024-01-02,10\n2024-01-03," + "9" * 200_000 + "x\n"
    raises(write(tmp_path, text), r"^Could not read .* as CSV \(line 3: field larger")


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("yesterday", "'yesterday'"),
        ("2024-13-45", "'2024-13-45'"),
        ("0024-01-03", "'0024-01-03'"),  # a typo, not the year 24
        ("1", "'1'"),
        ("", "''"),
    ],
)
def test_bad_date_names_the_value(tmp_path, cell, shown):
    text = f"Date,Close\n2024-01-02,10\n{cell},11\n2024-01-04,12\n"
    raises(
        write(tmp_path, text),
        rf"^Column 'Date' in .* has 1 value\(s\) that are not dates between 1900 and "
        rf"2200, e\.g\. {shown} \(line 3\)\. Use dates like 2024-01-31 or "
        r"01/31/2024\.$",
    )


def test_huge_bad_cell_is_shortened(tmp_path):
    text = "Date,Close\n2024-01-02,10\n2024-01-03," + "a" * 5000 + "\n"
    message = raises(
        write(tmp_path, text), r"not a number: 'aaaa.*\.\.\. on 2024-01-03"
    )
    assert len(message) < 300


def test_control_characters_in_a_price(tmp_path):
    text = "Date,Close\n2024-01-02,10\n2024-01-03,1\x0b1\n"
    raises(write(tmp_path, text), r"not a number: '1\\x0b1' on 2024-01-03")


# ------------------------------------------------------------ too little to use


def test_all_prices_missing(tmp_path):
    text = "Date,Close\n2024-01-02,\n2024-01-03,N/A\n"
    raises(
        write(tmp_path, text),
        r"^Only 0 usable price row\(s\) in .*; a forecast needs a long daily series",
    )


def test_single_row(tmp_path):
    raises(write(tmp_path, "Date,Close\n2024-01-02,10\n"), r"^Only 1 usable price row")


def test_single_date_repeated(tmp_path):
    text = "Date,Close\n2024-01-02,10\n2024-01-02,10\n"
    raises(write(tmp_path, text), r"^Only 1 usable price row")
