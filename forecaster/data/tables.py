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

from forecaster.data.csv import (
    clean_series,
    decode_text,
    find_date_column,
    find_price_column,
    parse_dates,
    price_value,
    read_bytes,
    read_price_csv,
    read_table,
)
from forecaster.data.series import (
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
    target = _parse_numbers(table[target_col], dates, where, target_col, "Price column")
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


def _parse_numbers(
    raw: pd.Series, dates, where: str, name: str, kind: str = "Column"
) -> np.ndarray:
    """Text cells to float64 (gaps NaN), as `_parse_prices` reads them, but fast.

    Plain numbers are converted at once; only the other cells ("$1,234.50",
    "N/A") go through the cell-by-cell reader.
    """
    text = raw.astype(str)
    plain = text.str.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
    values = np.full(len(text), np.nan, dtype=np.float64)
    plain_mask = plain.to_numpy(dtype=bool)
    values[plain_mask] = text[plain_mask].astype(np.float64).to_numpy()
    for i in np.flatnonzero(~plain_mask):
        value = price_value(text.iloc[i])
        if value is None:
            raise ForecasterError(
                f"{kind} {name!r} in {where} has a value that is not a number: "
                f"{short_repr(raw.iloc[i])} on {dates[i]:%Y-%m-%d}. Fix or blank that "
                "cell."
            )
        values[i] = value
    return values


def ohlcv_numbers(table: pd.DataFrame, date_col: str, dates, where: str):
    """The OHLCV columns the table has, as float64 on `dates` (unsorted), or None."""
    found: dict[str, np.ndarray] = {}
    for col in table.columns:
        canonical = OHLCV_COLUMNS.get(col.strip().lower())
        if col == date_col or canonical is None or canonical in found:
            continue
        found[canonical] = _parse_numbers(table[col], dates, where, col)
    if not found:
        return None
    order = [c for c in dict.fromkeys(OHLCV_COLUMNS.values()) if c in found]
    return pd.DataFrame({c: found[c] for c in order}, index=dates)


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


def read_csv_table(path: Path) -> tuple[pd.DataFrame, str]:
    where = repr(str(path))
    return read_table(decode_text(read_bytes(path), where), where), where


def read_price_file(
    path: str | os.PathLike, column: str | None = None, decimal: str = "."
) -> Series:
    """`read_price_csv`'s series with the file's OHLCV columns on its dates.

    The range anchors and features read High and Low even when the target is
    the only input. A file with decimal commas keeps its target only.
    """
    series = read_price_csv(path, column=column, decimal=decimal)
    if decimal != ".":
        return series
    table, where = read_csv_table(Path(path))
    date_col = find_date_column(table, where)
    dates = parse_dates(table[date_col], where, date_col)
    ohlcv = ohlcv_numbers(table, date_col, dates, where)
    if ohlcv is not None:
        ohlcv = ohlcv.sort_index(kind="stable")
        ohlcv = ohlcv[~ohlcv.index.duplicated(keep="first")]
        series.ohlcv = ohlcv.reindex(series.values.index)
        series.columns = tuple(table.columns)
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
