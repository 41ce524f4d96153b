"""Loading many daily series at once (a panel) from files, and choosing the source.

Loaders name every series: by file stem (`read_panel_csvs`,
`read_panel_dir`), by the ticker column of a long-format file
(`read_long_csv`) or by symbol (forecaster.data.symbols.download_panel);
`load_panel` picks one. With `skip_bad=True` a series that cannot be read is
left out with a warning instead of stopping. The Panel type and the rule for
series names are in forecaster.data.series.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data.series import (
    SAMPLE_CSV,
    TICKER_COLUMNS,
    Panel,
    check_series_name,
    check_unique,
    panel_or_error,
    short_repr,
    show_names,
)
from forecaster.data.symbols import download_panel
from forecaster.data.tables import (
    as_list,
    clean_long_series,
    read_csv_table,
    read_series_csv,
    series_from_table,
)
from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")


def read_panel_csvs(
    paths: Iterable[str | os.PathLike], column: str | None = None, skip_bad=False
) -> Panel:
    """Several CSVs, one series each, named by file stem, in the order given.

    A file that cannot be used raises an error naming it; with
    `skip_bad=True` it is left out instead, and one warning lists each
    skipped series and why. Two files with the same stem are refused.
    """
    paths = [Path(p) for p in as_list(paths, "paths")]
    if not paths:
        raise ForecasterError("Give at least one CSV file. Received: paths=[]")
    check_unique([p.stem for p in paths], [str(p) for p in paths], "file stems")
    loaded, skipped = [], {}
    for path in paths:
        try:
            loaded.append(read_series_csv(path, column=column))
        except ForecasterError as err:
            if not skip_bad:
                raise
            skipped[path.stem] = str(err)
    return panel_or_error(loaded, skipped, f"{len(paths)} file(s)")


def read_panel_dir(
    folder: str | os.PathLike, column: str | None = None, skip_bad=False
) -> Panel:
    """Every *.csv in `folder` (not its subfolders), sorted by name, one series each."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ForecasterError(
            f"CSV folder {str(folder)!r} {what}. Give a folder holding .csv files."
        )
    paths = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()),
        key=lambda p: p.name,
    )
    if not paths:
        found = sorted(p.name for p in folder.iterdir())
        raise ForecasterError(
            f"No .csv files in the folder {str(folder)!r}: found {show_names(found)}. "
            "Give a folder with one CSV per series."
        )
    return read_panel_csvs(paths, column=column, skip_bad=skip_bad)


def read_long_csv(
    path: str | os.PathLike, column: str | None = None, skip_bad=False
) -> Panel:
    """One long-format CSV (date, ticker, open, high, low, close, volume ...).

    The ticker column is `ticker`, `symbol` or `Name` (any case); each of its
    values names one series (sorted by name). Names must be safe file names
    (see the module docstring); an unsafe name, like a bad series, is an
    error, or with `skip_bad=True` left out with a warning.
    """
    path = Path(path)
    table, where = read_csv_table(path)
    ticker_col = _find_ticker_column(table, where)
    codes, tickers = _ticker_codes(table[ticker_col])
    blank = codes == tickers.index("") if "" in tickers else None
    if blank is not None:
        raise ForecasterError(
            f"{int(blank.sum())} row(s) of {where} have no ticker in column "
            f"{ticker_col!r}, e.g. a row with "
            f"{short_repr(_row_text(table[blank].iloc[0]))} (line "
            f"{table.index[blank][0]}). Fill or remove those rows."
        )
    names = sorted(tickers)
    origin = f"column {ticker_col!r} of {where}"
    check_unique(names, names, f"values of {origin}")
    source = {"kind": "long-csv", "path": str(path)}
    try:
        clean = clean_long_series(table, (codes, tickers), where, column, source)
    except ForecasterError:
        clean = {}  # each ticker's own reading below says what is wrong
    loaded, skipped = [], {}
    for name in names:
        try:
            check_series_name(name, origin)
            if name not in clean:
                rows = table[codes == tickers.index(name)].drop(columns=ticker_col)
                clean[name] = series_from_table(
                    rows,
                    name,
                    f"{where} (ticker {name!r})",
                    column,
                    {**source, "ticker": name},
                    tuple(table.columns),
                )
            loaded.append(clean[name])
        except ForecasterError as err:
            if not skip_bad:
                raise
            skipped[name] = str(err)
    return panel_or_error(loaded, skipped, f"{len(names)} ticker(s) in {where}")


def _row_text(row: pd.Series) -> list[str]:
    """A row's cells as the careful reader shows them: text, blanks as ''."""
    return ["" if pd.isna(cell) else str(cell).strip() for cell in row]


def _ticker_codes(cells: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's ticker as a code into the list of distinct (stripped) tickers."""
    if cells.dtype.kind in "iuf":  # pandas read the tickers as numbers
        cells = cells.map(lambda v: "" if np.isnan(v) else f"{v:g}")
    codes, distinct = pd.factorize(cells.astype(str).fillna(""))
    stripped = [str(name).strip() for name in distinct]
    if len(set(stripped)) < len(stripped):  # "AAPL" and "AAPL " are one ticker
        codes, distinct = pd.factorize(np.asarray(stripped, dtype=object)[codes])
        stripped = list(distinct)
    return codes, stripped


def _find_ticker_column(table: pd.DataFrame, where: str) -> str:
    by_lower = {name.strip().lower(): name for name in table.columns}
    for candidate in TICKER_COLUMNS:
        if candidate in by_lower:
            return by_lower[candidate]
    raise ForecasterError(
        f"No ticker column in the long-format file {where}: found columns "
        f"{show_names(table.columns)}. Name it 'ticker', 'symbol' or 'Name'."
    )


def is_long_format(path: str | os.PathLike) -> bool:
    """Whether the CSV's header names a ticker column (ticker, symbol or Name)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as file:
            header = next(csv.reader(io.StringIO(file.readline())), [])
    except OSError:
        return False  # the reader then explains what is wrong with the file
    return any(cell.strip().lower() in TICKER_COLUMNS for cell in header)


def load_panel(
    csv=None,
    csv_dir=None,
    long_csv=None,
    tickers=None,
    *,
    column: str | None = None,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str | os.PathLike = "data/cache",
    skip_bad: bool = False,
    download=None,
) -> Panel:
    """A panel from exactly one source: CSV paths, a folder, a long file or symbols.

    `csv` is one path or several; a single CSV whose header has a ticker
    column (ticker, symbol or Name) is read as a long-format file. With no
    source at all, the shipped sample (one series) is used, as today.
    """
    given = {
        name: value
        for name, value in (
            ("csv", csv),
            ("csv_dir", csv_dir),
            ("long_csv", long_csv),
            ("tickers", tickers),
        )
        if value is not None and not (isinstance(value, (list, tuple)) and not value)
    }
    if len(given) > 1:
        shown = ", ".join(
            f"{name}={short_repr(value)}" for name, value in given.items()
        )
        raise ForecasterError(
            "Give one source of prices (csv, csv_dir, long_csv or tickers), not "
            "several. "
            f"Received: {shown}"
        )
    if tickers:
        return download_panel(
            tickers, start, end, cache_dir, column, download, skip_bad
        )
    if csv_dir is not None:
        return read_panel_dir(csv_dir, column=column, skip_bad=skip_bad)
    if long_csv is not None:
        return read_long_csv(long_csv, column=column, skip_bad=skip_bad)
    paths = as_list(csv or SAMPLE_CSV, "csv")
    if len(paths) == 1 and is_long_format(paths[0]):
        return read_long_csv(paths[0], column=column, skip_bad=skip_bad)
    return read_panel_csvs(paths, column=column, skip_bad=skip_bad)
