"""Reading daily prices from CSV files: layouts, dates, text prices, gaps."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from forecaster.config import DECIMALS
from forecaster.data.bulk import (
    fast_table,
    header_columns,
    header_names,
    numbers,
)
from forecaster.data.dates import parse_dates, to_timestamps
from forecaster.data.series import (
    DATE_NAMES,
    PRICE_FALLBACKS,
    SAMPLE_CSV,
    Series,
    name_dates,
    short_repr,
    show_names,
)
from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")


class PriceFile(NamedTuple):
    """A price file read once: its clean target, and the table the rest comes from."""

    series: pd.Series  # the target: sorted, gaps dropped, named after its column
    notes: list[str]  # what was chosen or dropped, for the user
    table: pd.DataFrame  # the columns read (see `read_table`), one row per line
    date_column: str  # the table's date column
    dates: pd.DatetimeIndex  # each row's date, in the table's order
    columns: tuple[str, ...]  # every column of the file, read or not
    where: str  # how messages name the file
    source: dict  # what a bundle records to read the file again


def read_price_csv(
    path: str | os.PathLike, column: str | None = None, decimal: str = "."
) -> Series:
    """Read a CSV with a date column and a price column into a clean `Series`.

    The price column is `column` if given, else "Adj Close" if present, else
    "Close" (case-insensitive), else the only numeric column (with a note).
    Handles Yahoo's layout, yfinance's three-line header, Nasdaq's "$" prices,
    public data portals' series codes and "." gaps, newest-first files and
    text prices. With `decimal=","` the file is semicolon-separated with
    decimal commas ("1.234,50"). Rows with no price are dropped with a
    warning; anything else unusable raises ForecasterError.
    """
    read = read_price_file_once(path, column, decimal)
    return Series.from_source(read.series, read.source, read.notes)


def read_price_file_once(
    path: str | os.PathLike,
    column: str | None = None,
    decimal: str = ".",
    ohlcv: bool = False,
) -> PriceFile:
    """`read_price_csv`'s reading, keeping the table; with `ohlcv` the table
    holds the file's OHLCV columns too (forecaster.data.tables reads them).

    A plain file's chosen columns go through pandas' C engine and NumPy
    (forecaster.data.bulk); any other file through the careful reader.
    """
    if decimal not in DECIMALS:
        raise ForecasterError(
            f"decimal must be '.' or ','. Received: decimal={decimal!r}"
        )
    path = Path(path)
    where = repr(str(path))
    raw = read_bytes(path)
    usecols = None
    if decimal == "." and b"\x00" not in raw:
        usecols = header_columns(raw, column, ohlcv)
    table = None if usecols is None else fast_table(raw, path, usecols)
    columns = None if table is None else header_names(raw)
    if table is None:  # every column, by pandas or the careful reader
        table = load_table(raw, path, where, decimal)
    date_col, dates, series, notes = _parse_target(table, where, column, decimal)
    columns = tuple(table.columns if columns is None else columns)
    source = {"kind": "csv", "path": str(path), "column": series.name}
    if decimal != ".":
        source["decimal"] = decimal
    return PriceFile(series, notes, table, date_col, dates, columns, where, source)


def read_bytes(path: Path) -> bytes:
    try:
        if not path.exists():
            raise ForecasterError(
                f"CSV file not found: {str(path)!r}. Check the path, or omit --csv to "
                f"use the sample {SAMPLE_CSV}."
            )
        if path.is_dir():
            raise ForecasterError(
                f"Expected a CSV file but got a directory: {str(path)!r}. Give the "
                "path of a .csv file inside it."
            )
        return path.read_bytes()
    except OSError as err:
        raise ForecasterError(
            f"Could not read {str(path)!r}: {err.strerror or err}. Check that the file "
            "is readable."
        ) from None


def decode_text(raw: bytes, where: str) -> str:
    if not raw.strip():
        raise ForecasterError(f"CSV file is empty: {where}. Give a file with prices.")
    if b"\x00" in raw:
        raise ForecasterError(
            f"File is not a CSV text file (it holds binary data, or is UTF-16): "
            f"{where}. Give a comma-separated UTF-8 text file such as Date,Close."
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # older spreadsheet exports


def load_table(raw: bytes, path: Path, where: str, decimal: str = ".") -> pd.DataFrame:
    """A CSV file's bytes as a table indexed by line number (see `read_table`).

    A plain file is read by pandas' C engine (forecaster.data.bulk); any
    other goes through the careful reader, which explains what it finds.
    """
    if b"\x00" not in raw and decimal == ".":
        table = fast_table(raw, path)
        if table is not None:
            return table
    return read_table(decode_text(raw, where), where, decimal)


def parse_price_text(
    text: str, where: str, column: str | None, decimal: str = "."
) -> tuple[pd.Series, list[str]]:
    """CSV text to a clean price series (named after its column) and notes."""
    return parse_price_table(read_table(text, where, decimal), where, column, decimal)


def parse_price_table(
    table: pd.DataFrame, where: str, column: str | None, decimal: str = "."
) -> tuple[pd.Series, list[str]]:
    """A read table to a clean price series (named after its column) and notes."""
    _, _, series, notes = _parse_target(table, where, column, decimal)
    return series, notes


def _parse_target(
    table: pd.DataFrame, where: str, column: str | None, decimal: str
) -> tuple[str, pd.DatetimeIndex, pd.Series, list[str]]:
    """The date column, each row's date, the clean price series and notes."""
    date_col = find_date_column(table, where)
    price_col, chosen = _pick_price_column(table, column, date_col, where, decimal)
    dates = parse_dates(table[date_col], where, date_col)
    prices = parse_numbers(
        table[price_col], dates, where, price_col, "Price column", decimal
    )
    series, notes = clean_series(pd.Series(prices, index=dates, name=price_col), where)
    return date_col, dates, series, chosen + notes


def read_table(text: str, where: str, decimal: str = ".") -> pd.DataFrame:
    """CSV text to a frame of stripped strings, one column per header cell.

    The index is each row's line number in the text (for messages).
    """
    rows = _csv_rows(text, where, ";" if decimal == "," else ",")
    header, body = _undo_yfinance_header(rows[0][1], rows[1:], where)
    names = _column_names(header)
    if len(names) < 2:
        semicolons = decimal == "." and ";" in names[0]
        raise ForecasterError(
            f"{where} does not look like a CSV with a date and a price column: found "
            f"columns {show_names(names)}. "
            + (
                "It looks semicolon-separated: if its numbers use a decimal comma "
                "(1.234,50), pass --decimal , to read it."
                if semicolons
                else "Give a comma-separated file such as Date,Close."
            )
        )
    if not body:
        raise ForecasterError(
            f"CSV file has a header but no rows: {where} "
            f"(columns {show_names(names)}). "
            "Give a file with prices."
        )
    cells = [_fit_row(row, len(names), line, where) for line, row in body]
    lines = pd.Index([line for line, _ in body], dtype=np.int64)
    return pd.DataFrame(cells, columns=names, index=lines, dtype=object)


def _csv_rows(
    text: str, where: str, delimiter: str = ","
) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) for each row that is not blank."""
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True
    )
    rows = []
    line = 0
    try:
        for cells in reader:
            # A row starts on the line after the previous row ended.
            first_line, line = line + 1, reader.line_num
            # Spreadsheets append rows of bare commas; they hold nothing.
            if not any(cell.strip() for cell in cells):
                continue
            if any("\n" in cell or "\r" in cell for cell in cells):
                # Only an unclosed quote makes a cell span lines, and it would
                # silently swallow the rows after it.
                raise ForecasterError(
                    f"Line {first_line} of {where} has a quoted cell that runs "
                    "over several lines (an unclosed '\"'?). Fix the quotes."
                )
            rows.append((first_line, [cell.strip() for cell in cells]))
    except csv.Error as err:
        raise ForecasterError(
            f"Could not read {where} as CSV (line {reader.line_num}: {err}). Give a "
            "comma-separated file with a header row, e.g. Date,Close."
        ) from None
    if not rows:
        raise ForecasterError(f"CSV file is empty: {where}. Give a file with prices.")
    return rows


def _undo_yfinance_header(header: list[str], body: list, where: str):
    """Turn yfinance's `to_csv` layout (Price / Ticker / Date header lines) flat."""
    if len(body) < 2 or header[0].lower() != "price":
        return header, body
    tickers_row, dates_row = body[0][1], body[1][1]
    if (
        tickers_row[0].lower() != "ticker"
        or dates_row[0].lower() not in DATE_NAMES
        or any(dates_row[1:])
    ):
        return header, body
    tickers = sorted({name for name in tickers_row[1:] if name})
    if len(tickers) > 1:
        raise ForecasterError(
            f"{where} holds prices for several tickers {show_names(tickers)}: save one "
            "ticker per file."
        )
    return ["Date"] + header[1:], body[2:]


def _column_names(header: list[str]) -> list[str]:
    """Header cells as unique names: blanks become 'Unnamed: i', repeats get '.1'."""
    names: list[str] = []
    taken: set[str] = set()
    for i, cell in enumerate(header):
        name = cell or f"Unnamed: {i}"
        base, repeat = name, 1
        while name in taken:
            name, repeat = f"{base}.{repeat}", repeat + 1
        names.append(name)
        taken.add(name)
    return names


def _fit_row(cells: list[str], width: int, line: int, where: str) -> list[str]:
    """Pad a short row with blanks; refuse a long one, whose cells would shift."""
    if len(cells) > width:
        if any(cells[width:]):
            raise ForecasterError(
                f"Line {line} of {where} has {len(cells)} cells but the header has "
                f"{width}: {short_repr(','.join(cells))}. Quote numbers that contain "
                'commas, e.g. "1,234.50".'
            )
        cells = cells[:width]  # trailing commas
    return cells + [""] * (width - len(cells))


def find_date_column(table: pd.DataFrame, where: str) -> str:
    for name in table.columns:
        if name.lower() in DATE_NAMES:
            return name
    first = table.columns[0]
    parsed, _ = to_timestamps(table[first].head(20))
    if parsed.notna().mean() > 0.8:
        return first
    raise ForecasterError(
        f"No date column in {where}: found columns {show_names(table.columns)}. "
        "Name the "
        "date column 'Date'."
    )


def find_price_column(
    table: pd.DataFrame, column: str | None, date_col: str, where: str
) -> str:
    """The price column named by `column` or by its usual names, else an error."""
    name = _named_price_column(table, column, date_col, where)
    if name is None:
        raise _no_price_column(table, where)
    return name


def _pick_price_column(
    table: pd.DataFrame, column: str | None, date_col: str, where: str, decimal: str
) -> tuple[str, list[str]]:
    """`find_price_column`, or else the only numeric column, with a note saying so."""
    name = _named_price_column(table, column, date_col, where)
    if name is not None:
        return name, []
    numeric = [
        name
        for name in table.columns
        if name != date_col and _is_numeric(table[name], decimal)
    ]
    if len(numeric) != 1:
        raise _no_price_column(table, where)
    note = (
        f"using column {numeric[0]!r} of {where} for prices: it is the only numeric "
        "column (name another with --column)"
    )
    log.info(note)
    return numeric[0], [note]


def _no_price_column(table: pd.DataFrame, where: str) -> ForecasterError:
    return ForecasterError(
        f"No price column in {where}: found columns {show_names(table.columns)}. "
        "Expected 'Adj Close' or 'Close', or name one with --column."
    )


def _is_numeric(cells: pd.Series, decimal: str) -> bool:
    """Every cell a number or a gap, and at least one a number."""
    values, bad = numbers(cells, decimal)
    return not bad.any() and not np.isnan(values).all()


def _named_price_column(
    table: pd.DataFrame, column: str | None, date_col: str, where: str
) -> str | None:
    by_lower: dict[str, str] = {}
    for name in table.columns:
        by_lower.setdefault(name.lower(), name)
    if column is not None:
        name = by_lower.get(str(column).strip().lower())
        if name is None:
            raise ForecasterError(
                f"Column {column!r} (from --column) is not in {where}: found columns "
                f"{show_names(table.columns)}. Choose one of those."
            )
        if name == date_col:
            raise ForecasterError(
                f"Column {column!r} (from --column) is the date column of {where}. "
                "Name a price column such as 'Close'."
            )
        return name
    for candidate in PRICE_FALLBACKS:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def parse_numbers(
    raw: pd.Series,
    dates: pd.DatetimeIndex,
    where: str,
    name: str,
    kind: str = "Column",
    decimal: str = ".",
    suffixes: bool = False,
) -> np.ndarray:
    """A column as float64 (gaps NaN); the first cell that is not a number is an
    error naming its column, value, date and line (the table's index)."""
    values, bad = numbers(raw, decimal, suffixes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ForecasterError(
            f"{kind} {name!r} in {where} has a value that is not a number: "
            f"{short_repr(str(raw.iloc[i]).strip())} on {dates[i]:%Y-%m-%d} (line "
            f"{raw.index[i]}). Fix or blank that cell."
        )
    return values


def clean_series(series: pd.Series, where: str) -> tuple[pd.Series, list[str]]:
    """Sort oldest first, drop gaps and identical duplicates, reject what is unsafe."""
    notes = []
    missing = series.isna()
    if missing.any():
        notes.append(
            f"dropped {int(missing.sum())} row(s) with no price in {where}: "
            f"{name_dates(series.index[missing])}"
        )
        series = series[~missing]
    bad = ~np.isfinite(series.to_numpy()) | (series.to_numpy() <= 0)
    if bad.any():
        raise ForecasterError(
            f"Prices must be positive and finite: {series[bad].iloc[0]} on "
            f"{series.index[bad][0]:%Y-%m-%d} in {where} ({int(bad.sum())} such "
            "row(s)). Fix or remove those rows."
        )
    series = series.sort_index(kind="stable")
    series, duplicate_note = _drop_identical_duplicates(series, where)
    notes += duplicate_note
    if len(series) < 2:
        raise ForecasterError(
            f"Only {len(series)} usable price row(s) in {where}; a forecast needs a "
            "long daily series (hundreds of rows)."
        )
    for note in notes:
        log.warning(note)
    return series.astype(np.float64), notes


def _drop_identical_duplicates(series: pd.Series, where: str):
    """Keep one row of each repeated date; refuse dates whose prices disagree."""
    repeated = series.index.duplicated(keep=False)
    if not repeated.any():
        return series, []
    groups = series[repeated].groupby(level=0)
    conflicting = pd.DatetimeIndex([d for d, g in groups if g.nunique() > 1])
    if len(conflicting):
        raise ForecasterError(
            f"Conflicting prices for the same date in {where}: "
            f"{name_dates(conflicting)}. Keep one row per date."
        )
    dates = pd.DatetimeIndex(sorted(groups.groups))
    note = (
        f"dropped duplicate rows for {len(dates)} date(s) in {where}: "
        f"{name_dates(dates)}"
    )
    return series[~series.index.duplicated(keep="first")], [note]
