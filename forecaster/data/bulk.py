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
import warnings

import numpy as np
import pandas as pd

from forecaster.data.series import (
    DATE_NAMES,
    EARLIEST_DATE,
    LATEST_DATE,
    MISSING_TOKENS,
    OHLCV_COLUMNS,
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

    `raw`: the bytes of the file at `path` (pandas reads every column of a
    file from its path: it reads a large one in parallel).
    Columns are float64/int64 where every cell is a plain number or blank,
    else text (blanks as ""; unlike the careful reader's, a cell may end in
    spaces: its readers strip what they read); the index is each row's line
    number in the file. None means: read it with the careful reader.
    `usecols`: header names (as written, stripped) of the only columns to
    convert, the date column first; then the file must hold no quote, no
    row wider than its header and no cell longer than the careful reader
    takes, which pandas would not notice in columns it leaves out. A date
    column of plain days (2024-01-31) is then read by NumPy from the bytes,
    as datetime64 (`plain_days`).
    """
    head = raw[:4096].splitlines()
    if len(head) < 2 or not head[0].strip() or head[1].lower().startswith(b"ticker"):
        return None  # yfinance's three-line header, a blank first line, or no rows
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
    if _has_blank_line(raw, ends):
        return None  # pandas skips blank lines, the careful reader counts them
    longest = _longest_line(ends, len(raw))
    days, converted = None, None
    if usecols is not None:
        commas = _plain_commas(raw, ends)
        if commas is None or longest > csv.field_size_limit():
            return None
        days = plain_days(raw, ends, commas, _header_position(raw, usecols[0]))
        converted = set(usecols) - ({usecols[0]} if days is not None else set())
    table = _pandas_table(raw, path, converted)
    if table is None:
        return None
    # One row per line: no blank lines, no cell spanning lines, no lone "\r"s.
    lines = len(ends) + (not raw.endswith(b"\n"))
    if lines != len(table) + 1 or not isinstance(table.index, pd.RangeIndex):
        return None  # (rows wider than the header give an index)
    if days is not None:
        # First, as in the header: the date column is its first with a date name.
        table.insert(0, usecols[0], days)
    return _checked_columns(table, longest)


def _pandas_table(
    raw: bytes, path: str | os.PathLike, converted: set[str] | None
) -> pd.DataFrame | None:
    """pandas' C engine's table of every column, or of the `converted` ones (by
    stripped header name), or None where it cannot read the file."""
    with warnings.catch_warnings():
        # A column with an odd cell reads as text in some of pandas' chunks and
        # as numbers in others: the text is read cell by cell later (`numbers`).
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        try:
            return pd.read_csv(
                # pandas reads a file of 5 MB or more in parallel, given its
                # path (`fast_table` checks it against the bytes: a row a line)
                io.BytesIO(raw) if converted is not None else os.fspath(path),
                engine="c",
                encoding="utf-8",  # (it skips a BOM; "utf-8-sig" decodes twice)
                # Needed only where quotes may follow spaces (it skips no tab);
                # numbers may start with spaces, and text cells are stripped
                # where they are read.
                skipinitialspace=converted is None and b" " in raw,
                keep_default_na=False,
                na_values=[""],
                usecols=None if converted is None else lambda n: n.strip() in converted,
            )
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
            return None


def _longest_line(ends: np.ndarray, size: int) -> int:
    """The length of the longest line, from the positions of the newlines."""
    bounds = np.concatenate([[-1], ends, [size]])
    return int(np.diff(bounds).max())


def _has_blank_line(raw: bytes, ends: np.ndarray) -> bool:
    """Whether a line after the first is empty ("\n\n", or "\n\r\n")."""
    gaps = np.diff(ends)
    if (gaps == 1).any():
        return True
    if b"\r" not in raw:  # (a search for one byte is fast; most files have none)
        return False
    after = np.frombuffer(raw, dtype=np.uint8)[ends[:-1] + 1]
    return bool(((gaps == 2) & (after == ord("\r"))).any())


def _plain_commas(raw: bytes, ends: np.ndarray) -> np.ndarray | None:
    """Each line's comma positions, (lines, commas), when the file holds no quote
    and no line has more commas than the header; an empty array when some line
    has fewer (pandas and the careful reader both pad it); None otherwise."""
    if b'"' in raw:
        return None
    commas = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord(","))
    lines = len(ends) + (not raw.endswith(b"\n"))
    width = int(np.searchsorted(commas, ends[0] if len(ends) else len(raw)))
    if width and len(commas) == lines * width:
        # As many commas as `lines` times the header's: each line has exactly
        # as many if each holds its share (the commas are in order).
        matrix = commas.reshape(lines, width)
        starts = np.concatenate([[0], ends[: lines - 1] + 1])
        stops = np.append(ends, len(raw))[:lines]
        if (matrix[:, 0] >= starts).all() and (matrix[:, -1] < stops).all():
            return matrix
    bounds = np.concatenate([[-1], ends, [len(raw)]])[: lines + 1]
    per_line = np.diff(np.searchsorted(commas, bounds))
    if per_line.max() > per_line[0]:
        return None
    if per_line.min() < per_line[0]:
        return np.empty((0, per_line[0]), dtype=np.int64)
    return commas[: lines * per_line[0]].reshape(lines, per_line[0])


def _header_position(raw: bytes, name: str) -> int:
    """Where the header (as `header_names` reads it) puts `name`; -1 if nowhere."""
    names = header_names(raw) or []
    return names.index(name) if name in names else -1


def plain_days(
    raw: bytes, ends: np.ndarray, commas: np.ndarray, column: int
) -> np.ndarray | None:
    """Column `column` of every line but the header as datetime64[us] days, when
    each cell is exactly a day YYYY-MM-DD between EARLIEST_DATE and LATEST_DATE;
    else None.

    `commas`: each line's comma positions (`_plain_commas`), one row per line.
    Read from the bytes, without a string per cell: ten bytes per row.
    """
    if column < 0 or len(commas) < 2:
        return None
    data = np.frombuffer(raw, dtype=np.uint8)
    starts = np.concatenate([[0], ends + 1])[1 : len(commas)]
    low = starts if column == 0 else commas[1:, column - 1] + 1
    stops = np.append(ends, len(raw))[1 : len(commas)]
    high = stops if column == commas.shape[1] else commas[1:, column]
    if not (high - low == 10).all():
        return None  # (a "\r" before a newline makes a last column longer: fine)
    cells = np.lib.stride_tricks.sliding_window_view(data, 10)[low]
    digits = cells[:, [0, 1, 2, 3, 5, 6, 8, 9]] - ord("0")
    if (digits > 9).any() or (cells[:, [4, 7]] != ord("-")).any():
        return None  # (uint8: bytes below "0" wrap round, above 9)
    try:
        days = np.ascontiguousarray(cells).view("S10").ravel().astype("datetime64[D]")
    except (ValueError, TypeError, OverflowError):
        return None  # no such day, e.g. 2023-02-29
    earliest, latest = (
        np.datetime64(d.date(), "D") for d in (EARLIEST_DATE, LATEST_DATE)
    )
    if ((days < earliest) | (days > latest)).any():
        return None
    return days.astype("datetime64[us]")


def _holds_huge_cell(table: pd.DataFrame, longest: int) -> bool:
    """Whether a text cell is longer than the careful reader (`csv`) takes."""
    limit = csv.field_size_limit()
    return longest > limit and any(
        table[name].str.len().max() > limit
        for name in table.columns
        if table[name].dtype.kind not in "iufbM"
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
        if kind not in "iufM":  # (M: days read by `plain_days`)
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


def header_names(raw: bytes) -> list[str] | None:
    """The header's names as pandas and the careful reader name them: stripped,
    a blank one "Unnamed: i". None when a quote, bytes that are not UTF-8 or a
    repeated name leave the naming to them."""
    first = raw[:4096].split(b"\n", 1)[0]
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    names = [cell.strip() or f"Unnamed: {i}" for i, cell in enumerate(text.split(","))]
    if '"' in text or len(set(names)) != len(names):
        return None
    return names


def header_columns(
    raw: bytes, column: str | None, ohlcv: bool = False
) -> list[str] | None:
    """The date and price columns `parse_price_table` picks, named in the header,
    and with `ohlcv` every column named as one of OHLCV_COLUMNS.

    None when the header alone does not tell (no named price column, a
    quote, a repeated name): then every column is read.
    """
    names = header_names(raw)
    if names is None:
        return None
    dates = [name for name in names if name.lower() in DATE_NAMES]
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    wanted = [str(column).strip().lower()] if column is not None else PRICE_FALLBACKS
    prices = [by_lower[name] for name in wanted if name in by_lower]
    if not dates or not prices or prices[0] == dates[0]:
        return None
    others = [name for name in names if ohlcv and name.lower() in OHLCV_COLUMNS]
    return list(dict.fromkeys([dates[0], prices[0], *others]))
