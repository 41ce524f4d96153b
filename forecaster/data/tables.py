"""One named series with its OHLCV columns, from a parsed CSV table.

The panel loaders (forecaster.data.panel, forecaster.data.symbols) read each
file or download through here: the target column as the single-series reader
checks it (forecaster.data.csv), and Open/High/Low/Close/Adj Close/Volume on
the same dates.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data.bulk import numbers
from forecaster.data.csv import (
    clean_series,
    find_date_column,
    find_price_column,
    load_table,
    parse_numbers,
    read_bytes,
    read_price_file_once,
)
from forecaster.data.dates import parse_dates, repeated_days
from forecaster.data.series import (
    DATE_NAMES,
    OHLCV_COLUMNS,
    Series,
    check_series_name,
    name_dates,
    short_repr,
)
from forecaster.errors import ForecasterError


def series_from_table(
    table: pd.DataFrame,
    name: str,
    where: str,
    column: str | None,
    source: dict,
    columns: tuple[str, ...] | None = None,
) -> Series:
    """One parsed table (cells as stripped strings) to a clean PanelSeries."""
    date_col = find_date_column(table, where)
    target_col = find_price_column(table, column, date_col, where)
    dates = parse_dates(table[date_col], where, date_col)
    target = parse_numbers(table[target_col], dates, where, target_col, "Price column")
    ohlcv = ohlcv_numbers(table, date_col, dates, where)
    _refuse_conflicts(target, ohlcv, dates, where)
    series, notes = clean_series(pd.Series(target, index=dates, name=target_col), where)
    if ohlcv is not None:
        ohlcv = ohlcv.sort_index(kind="stable")
        ohlcv = ohlcv[~ohlcv.index.duplicated(keep="first")].reindex(series.index)
    return Series(
        name=name,
        values=series,
        ohlcv=ohlcv,
        source={**source, "column": target_col},
        columns=tuple(table.columns) if columns is None else columns,
        where=where,
        notes=notes,
    )


def ohlcv_columns(table: pd.DataFrame, date_col: str) -> dict[str, str]:
    """{canonical OHLCV name: the table's column}, first column of each kind."""
    found: dict[str, str] = {}
    for col in table.columns:
        canonical = OHLCV_COLUMNS.get(col.strip().lower())
        if col != date_col and canonical is not None and canonical not in found:
            found[canonical] = col
    order = [c for c in dict.fromkeys(OHLCV_COLUMNS.values()) if c in found]
    return {c: found[c] for c in order}


def ohlcv_numbers(table: pd.DataFrame, date_col: str, dates, where: str):
    """The OHLCV columns the table has, as float64 on `dates` (unsorted), or None."""
    found = {
        canonical: parse_numbers(
            table[col], dates, where, col, suffixes=canonical == "Volume"
        )
        for canonical, col in ohlcv_columns(table, date_col).items()
    }
    if not found:
        return None
    return pd.DataFrame(found, index=dates)


def _refuse_conflicts(target, ohlcv, dates, where: str) -> None:
    """Refuse dates given twice with different numbers (target or OHLCV)."""
    columns = {"target": target}
    if ohlcv is not None:
        columns.update({name: ohlcv[name].to_numpy() for name in ohlcv.columns})
    frame = pd.DataFrame(columns, index=dates)
    frame = frame[frame["target"].notna()]
    repeated = frame.index.duplicated(keep=False)
    if not repeated.any():
        return
    counts = frame[repeated].groupby(level=0).nunique(dropna=False)
    conflicting = counts.index[(counts > 1).any(axis=1)]
    if len(conflicting):
        raise ForecasterError(
            f"Conflicting rows for the same date in {where}: "
            f"{name_dates(pd.DatetimeIndex(conflicting))}. Keep one row per date."
        )


def clean_long_series(
    table: pd.DataFrame,
    tickers: tuple[np.ndarray, list[str]],
    where: str,
    column: str | None,
    source: dict,
) -> dict[str, Series]:
    """The series of a long table's clean tickers, each column parsed once for all.

    `tickers`: each row's ticker as a code into a list of names. A ticker
    is clean when every row of it has a date, a positive price and numbers
    in its OHLCV columns, no date twice, and at least two rows: it then
    reads exactly as `series_from_table` would read it. The others are left
    out, for `series_from_table` to read and explain; so is every ticker
    when the columns are not found by name or the dates are not ISO 8601
    (formats are then chosen per ticker).
    """
    date_col = find_date_column(table, where)
    if date_col.lower() not in DATE_NAMES:
        return {}
    target_col = find_price_column(table, column, date_col, where)
    days, used = repeated_days(table[date_col])
    if used != 0:
        return {}
    target, dirty = numbers(table[target_col])
    with np.errstate(invalid="ignore"):
        dirty |= np.isnat(days) | ~(np.isfinite(target) & (target > 0))
    found = ohlcv_columns(table, date_col)
    codes, names = tickers
    order = _ticker_date_order(codes, days)
    # Column-major, so that each ticker's rows make a frame without a copy.
    block = np.empty((len(target), 1 + len(found)), order="F")
    block[:, 0] = target
    for j, (canonical, col) in enumerate(found.items(), start=1):
        block[:, j], bad = numbers(table[col], suffixes=canonical == "Volume")
        dirty |= bad
    if order is not None:
        codes, days, block, dirty = (
            codes[order],
            days[order],
            block[order],
            dirty[order],
        )
    twice = np.flatnonzero((codes[1:] == codes[:-1]) & (days[1:] == days[:-1]))
    dirty[twice] = dirty[twice + 1] = True
    rows = np.bincount(codes, minlength=len(names))
    clean = (np.bincount(codes, weights=dirty, minlength=len(names)) == 0) & (rows > 1)
    bounds = np.searchsorted(codes, np.arange(len(names) + 1))
    shared = {"columns": tuple(table.columns)}
    ohlcv_names = pd.Index(list(found))
    series = {}
    for k in np.flatnonzero(clean):
        name, part = names[k], slice(bounds[k], bounds[k + 1])
        index = pd.DatetimeIndex(days[part], name="Date")
        ohlcv = pd.DataFrame(block[part, 1:], index, ohlcv_names, copy=False)
        series[name] = Series(
            name=name,
            values=pd.Series(block[part, 0], index, name=target_col, copy=False),
            ohlcv=ohlcv if found else None,
            source={**source, "ticker": name, "column": target_col},
            where=f"{where} (ticker {name!r})",
            **shared,
        )
    return series


def _ticker_date_order(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Row positions sorted by ticker code, then date (stable; NaT first), or
    None when the rows are in that order already, as most files are."""
    day = days.astype("datetime64[D]").view(np.int64)
    known = day != np.iinfo(np.int64).min
    low = day[known].min(initial=0)
    key = codes.astype(np.int64) << 32 | np.where(known, day - low + 1, 0)
    if (key[1:] >= key[:-1]).all():
        return None
    return np.argsort(key, kind="stable")


def read_csv_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The file's table, indexed by line number (`load_table`), and its name."""
    where = repr(str(path))
    return load_table(read_bytes(path), path, where), where


def read_price_file(
    path: str | os.PathLike, column: str | None = None, decimal: str = "."
) -> Series:
    """`read_price_csv`'s series with the file's OHLCV columns on its dates.

    The range anchors and features read High and Low even when the target is
    the only input. A file with decimal commas keeps its target only. The
    file is read and parsed once, for the target and the OHLCV columns.
    """
    read = read_price_file_once(path, column, decimal, ohlcv=decimal == ".")
    series = Series.from_source(read.series, read.source, read.notes)
    if decimal != ".":
        return series
    ohlcv = ohlcv_numbers(read.table, read.date_column, read.dates, read.where)
    if ohlcv is not None:
        ohlcv = ohlcv.sort_index(kind="stable")
        ohlcv = ohlcv[~ohlcv.index.duplicated(keep="first")]
        series.ohlcv = ohlcv.reindex(series.values.index)
        series.columns = read.columns
    return series


def read_series_csv(
    path: str | os.PathLike, name: str | None = None, column: str | None = None
) -> Series:
    """One CSV (one series) with its OHLCV columns, named `name` or the file stem."""
    path = Path(path)
    name = check_series_name(name or path.stem, f"the file name {str(path)!r}")
    table, where = read_csv_table(path)
    return series_from_table(
        table, name, where, column, {"kind": "csv", "path": str(path)}
    )


def as_list(values, name: str) -> list:
    if isinstance(values, (str, bytes, os.PathLike)):
        return [values]
    try:
        return list(values)
    except TypeError:
        raise ForecasterError(
            f"{name} must be a list. Received: {name}={short_repr(values)}"
        ) from None
