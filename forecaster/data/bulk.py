"""Reading CSV files at pandas' speed: the C reader, then checks on whole columns.

The careful reader (`forecaster.data.csv.read_table`) walks a file row by
row and explains every oddity it meets. Most files have none. `fast_table`
reads those with pandas' C engine, and gives up (returns None) on whatever
the careful reader treats specially, so that both make the same table and
every message stays the same: quotes, blank lines, rows of bare commas,
tabs, yfinance's three-line header, rows wider than the header, text that
is not UTF-8, cells that pandas reads as booleans.

`numbers` then converts a whole column at once; only its odd cells
("$1,234.50", "N/A", "3.31M") go through the cell-by-cell reader, once per
distinct value.
"""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np
import pandas as pd

from forecaster.data.series import (
    DATE_NAMES,
    EARLIEST_DATE,
    LATEST_DATE,
    MISSING_TOKENS,
    PRICE_FALLBACKS,
)

# A plain number, as `price_value` reads it without help.
PLAIN_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# Volumes as quotes sites write them: "3.31M", "850.2K", "1.2B".
VOLUME_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9}
_SUFFIXED = re.compile(r"(.*\d)\s*([kmb])", re.IGNORECASE | re.ASCII)


def fast_table(
    raw: bytes, path: str | os.PathLike, usecols: list[str] | None = None
) -> pd.DataFrame | None:
    """The table of a plain CSV file as pandas' C engine reads it, or None.

    Columns are float64/int64 where every cell is a plain number or blank,
    else text (blanks as ""; unlike the careful reader's, a cell may end in
    spaces: its readers strip what they read); the index is each row's line
    number in the file. None means: read it with the careful reader.
    `usecols`: header names (as written, stripped) of the only columns to
    convert; then the file must hold no quote and no row wider than its
    header, which pandas would not notice in columns it leaves out.
    """
    head = raw[:4096].splitlines()
    if len(head) < 2 or not head[0].strip() or head[1].lower().startswith(b"ticker"):
        return None  # yfinance's three-line header, a blank first line, or no rows
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
    if usecols is not None and not _plain_rows(raw, ends):
        return None
    try:
        table = pd.read_csv(
            io.BytesIO(raw),
            engine="c",
            encoding="utf-8-sig",
            skipinitialspace=True,
            keep_default_na=False,
            na_values=[""],
            usecols=None if usecols is None else lambda name: name.strip() in usecols,
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return None
    # One row per line: no blank lines, no cell spanning lines, no lone "\r"s.
    lines = len(ends) + (not raw.endswith(b"\n"))
    if lines != len(table) + 1 or not isinstance(table.index, pd.RangeIndex):
        return None  # (rows wider than the header give an index)
    return _checked_columns(table, _longest_line(ends, len(raw)))


def _longest_line(ends: np.ndarray, size: int) -> int:
    """The length of the longest line, from the positions of the newlines."""
    bounds = np.concatenate([[-1], ends, [size]])
    return int(np.diff(bounds).max())


def _plain_rows(raw: bytes, ends: np.ndarray) -> bool:
    """No quote, and no line with more commas than the header's."""
    if b'"' in raw:
        return False
    data = np.frombuffer(raw, dtype=np.uint8)
    commas = np.flatnonzero(data == ord(","))
    per_line = np.diff(
        np.searchsorted(commas, np.concatenate([[-1], ends, [len(raw)]]))
    )
    return per_line.max() <= per_line[0]


def _holds_huge_cell(table: pd.DataFrame, longest: int) -> bool:
    """Whether a text cell is longer than the careful reader (`csv`) takes."""
    limit = csv.field_size_limit()
    return longest > limit and any(
        table[name].str.len().max() > limit
        for name in table.columns
        if table[name].dtype.kind not in "iufb"
    )


def _checked_columns(table: pd.DataFrame, longest: int) -> pd.DataFrame | None:
    """Stripped names and text cells with blanks as "", or None where the careful
    reader would read the table otherwise."""
    names = [str(name).strip() for name in table.columns]
    if len(names) < 2 or len(set(names)) != len(names):
        return None
    table.columns = names
    if _holds_huge_cell(table, longest):
        return None  # the careful reader refuses it (a missing quote, mostly)
    blank = table[names[0]].isna()
    if blank.any() and table[blank].isna().all(axis=1).any():
        return None  # rows of bare commas: the careful reader skips them
    for name in names:
        kind = table[name].dtype.kind
        if kind == "b":
            return None  # pandas reads True/False as booleans, the careful reader not
        if kind not in "iuf":
            cells = table[name].astype(str)
            table[name] = cells.fillna("") if cells.hasnans else cells
    table.index = pd.RangeIndex(2, len(table) + 2)  # line 1 is the header
    return table


def numbers(
    cells: pd.Series, decimal: str = ".", suffixes: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 (gaps NaN) and a mask of its cells that are not numbers.

    Plain numbers are converted at once; each distinct odd cell ("$1,234.50",
    "N/A") is read once by `price_value`. With `suffixes`, "3.31M", "850.2K"
    and "1.2B" are read as volumes.
    """
    if cells.dtype.kind in "iuf":
        values = cells.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool)
    text = cells.astype(str)
    if text.hasnans:
        text = text.fillna("")
    values = np.full(len(text), np.nan, dtype=np.float64)
    plain = np.zeros(len(text), dtype=bool)
    if decimal == ".":
        plain = text.str.fullmatch(PLAIN_NUMBER).to_numpy(dtype=bool)
        values[plain] = text[plain].astype(np.float64).to_numpy()
    odd = np.flatnonzero(~plain)
    codes, distinct = pd.factorize(text.to_numpy(dtype=object)[odd])
    read = [_odd_value(str(cell), decimal, suffixes) for cell in distinct]
    values[odd] = np.array([np.nan if v is None else v for v in read])[codes]
    bad = np.zeros(len(text), dtype=bool)
    bad[odd] = np.array([v is None for v in read], dtype=bool)[codes]
    return values, bad


def _odd_value(cell: str, decimal: str, suffixes: bool) -> float | None:
    value = price_value(cell, decimal)
    if value is not None or not suffixes:
        return value
    match = _SUFFIXED.fullmatch(cell.strip())
    number = None if match is None else price_value(match.group(1), decimal)
    if number is None or np.isnan(number):
        return None
    return number * VOLUME_SUFFIXES[match.group(2).lower()]


_PLAIN_NUMBER = re.compile(PLAIN_NUMBER.removeprefix("[+-]?"), re.ASCII)
# Commas only as thousands separators ("1,234.50"); "1,5" or "1.234,50" are
# ambiguous and refused rather than misread.
_GROUPED_NUMBER = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?", re.ASCII)
# With decimal=",": "1234,5" or "1.234,50" (dots group thousands).
_PLAIN_COMMA_NUMBER = re.compile(r"(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?", re.ASCII)
_DOT_GROUPED_NUMBER = re.compile(r"\d{1,3}(\.\d{3})+(,\d*)?", re.ASCII)


def price_value(cell: str, decimal: str = ".") -> float | None:
    """One price cell as a float: NaN for a gap, None when it is not a number."""
    token = cell.strip()
    if token.lower() in MISSING_TOKENS:
        return np.nan
    sign = ""
    if token[:1] in ("+", "-"):
        sign, token = token[0], token[1:]
    token = token.removeprefix("$").strip()  # Nasdaq writes "$123.45"
    if not sign and token[:1] in ("+", "-"):
        sign, token = token[0], token[1:]
    if decimal == ",":
        if _PLAIN_COMMA_NUMBER.fullmatch(token) or _DOT_GROUPED_NUMBER.fullmatch(token):
            return float(sign + token.replace(".", "").replace(",", "."))
    elif _PLAIN_NUMBER.fullmatch(token):
        return float(sign + token)
    elif _GROUPED_NUMBER.fullmatch(token):
        return float(sign + token.replace(",", ""))
    if token.lower() in ("inf", "infinity"):
        return float(sign + "inf")  # refused later, with its date
    return None


def header_columns(raw: bytes, column: str | None) -> list[str] | None:
    """The date and price columns `parse_price_table` picks, named in the header.

    None when the header alone does not tell (no named price column, a
    quote, a repeated name): then every column is read.
    """
    first = raw[:4096].split(b"\n", 1)[0]
    try:
        names = [cell.strip() for cell in first.decode("utf-8-sig").split(",")]
    except UnicodeDecodeError:
        return None
    if '"' in first.decode("utf-8-sig") or len(set(names)) != len(names):
        return None
    dates = [name for name in names if name.lower() in DATE_NAMES]
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    wanted = [str(column).strip().lower()] if column is not None else PRICE_FALLBACKS
    prices = [by_lower[name] for name in wanted if name in by_lower]
    if not dates or not prices or prices[0] == dates[0]:
        return None
    return [dates[0], prices[0]]


def iso_days(cells: pd.Series) -> pd.Series | None:
    """Cells that are all plain dates (2024-01-31) in range, parsed by NumPy; else None.

    Three times faster than pandas' parser on such a column; anything else
    (another format, a time of day, a bad cell) gets None and the formats.
    """
    if not len(cells) or not (cells.str.len() == 10).all():
        return None
    text = cells.to_numpy(dtype=object)
    try:
        days = text.astype("datetime64[D]")
    except (ValueError, TypeError, OverflowError):
        return None
    earliest, latest = (
        np.datetime64(d.date(), "D") for d in (EARLIEST_DATE, LATEST_DATE)
    )
    # Ten characters that NumPy reads as a day in range can only be YYYY-MM-DD
    # (a year alone, "1234567890", is out of range; a time makes it longer).
    if np.isnat(days).any() or ((days < earliest) | (days > latest)).any():
        return None
    return pd.Series(days.astype("datetime64[us]"), index=cells.index)
