"""Prices from pandas objects a user already holds: a Series or an OHLCV DataFrame.

They go through the same checks as a CSV (gaps dropped with a warning,
non-positive prices and conflicting dates refused), with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data.csv import clean_series
from forecaster.data.series import (
    DATE_NAMES,
    OHLCV_COLUMNS,
    PRICE_FALLBACKS,
    TICKER_COLUMNS,
    Panel,
    Series,
    short_repr,
    show_names,
)
from forecaster.errors import ForecasterError

ACCEPTED = (
    "a pandas Series of prices on a DatetimeIndex, or a DataFrame with a date "
    "index (or a Date column) and a price column such as 'Adj Close' or 'Close'"
)


def prices_from_pandas(data, column: str | None = None, name: str | None = None):
    """A clean `Series` from a pandas Series or DataFrame (`column`: a frame's).

    A Series may carry where it came from in `series.attrs["source"]` (set by
    `forecaster.read_prices`), which a saved bundle then records.
    """
    if isinstance(data, pd.DataFrame):
        series = _frame_column(with_date_index(data), column)
    elif isinstance(data, pd.Series):
        series = with_date_index(data)
    else:
        kind = type(data).__name__
        hint = (
            " To read a file or a ticker, call forecaster.read_prices(path) first."
            if isinstance(data, (str, bytes))
            else ""
        )
        raise ForecasterError(
            f"prices must be {ACCEPTED}. Received: prices of type {kind}.{hint}"
        )
    label = name or str(series.name if series.name is not None else "prices")
    where = f"the prices passed in ({label!r})"
    values = pd.to_numeric(series, errors="coerce")
    text = series[values.isna() & series.notna()]
    if len(text):
        raise ForecasterError(
            f"Prices in {where} must be numbers: {text.iloc[0]!r} on "
            f"{text.index[0]:%Y-%m-%d}. Convert or drop that value."
        )
    values = pd.Series(
        values.to_numpy(dtype=np.float64), index=series.index, name=label
    )
    clean, notes = clean_series(values, where)
    source = dict(series.attrs.get("source") or {"kind": "pandas", "name": label})
    return Series.from_source(clean, source, notes)


def with_date_index(data):
    """The object with a normalised DatetimeIndex (from its index or a date column)."""
    index = data.index
    if isinstance(data, pd.DataFrame) and not isinstance(index, pd.DatetimeIndex):
        by_lower = {str(c).lower(): c for c in data.columns}
        date_col = next((by_lower[n] for n in DATE_NAMES if n in by_lower), None)
        if date_col is not None:
            data = data.set_index(date_col)
            index = data.index
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index, format="ISO8601"))
        except (ValueError, TypeError):
            raise ForecasterError(
                f"prices must have dates: {ACCEPTED}. Received: an index of "
                f"{type(data.index).__name__} starting {list(data.index[:3])!r}."
            ) from None
    if index.tz is not None:
        index = index.tz_localize(None)
    data = data.copy()
    data.index = index.normalize().rename("Date")
    return data


def _frame_column(frame: pd.DataFrame, column: str | None) -> pd.Series:
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    if column is not None:
        chosen = by_lower.get(str(column).strip().lower())
        if chosen is None:
            raise ForecasterError(
                f"column {column!r} is not in the frame: found columns "
                f"{show_names(frame.columns)}. Choose one of those."
            )
    else:
        chosen = next((by_lower[n] for n in PRICE_FALLBACKS if n in by_lower), None)
        if chosen is None:
            raise ForecasterError(
                f"No price column in the frame: found columns "
                f"{show_names(frame.columns)}. "
                "Expected 'Adj Close' or 'Close', or name one with column=."
            )
    series = frame[chosen]
    series.attrs = dict(frame.attrs)
    return series.rename(str(chosen))


def panel_from_pandas(data, column: str | None = None) -> Panel:
    """A panel from pandas objects a user holds: {name: Series or DataFrame}.

    A single pandas Series or DataFrame (or a forecaster `Series`) is a panel
    of one, named by where it came from (its ticker or file stem) when it
    says, else "prices"; as no file is named after it, its name need not be
    a safe file name.
    A long DataFrame (a ticker, symbol or name column) holds one series per
    ticker.
    Targets go through `prices_from_pandas` (the CSV reader's checks); a
    DataFrame's Open/High/Low/Close/Adj Close/Volume columns become its OHLCV.
    """
    if isinstance(data, Panel):
        return data
    if isinstance(data, Series):
        return Panel([data], check_names=False)
    if isinstance(data, pd.DataFrame) and long_frame_column(data):
        data = split_long_frame(data)
    named = data if isinstance(data, Mapping) else {None: data}
    series = []
    for name, value in named.items():
        item = prices_from_pandas(value, column, None if name is None else str(name))
        source = item.source
        item.name = str(
            name
            if name is not None
            else source.get("ticker") or Path(source.get("path", "prices")).stem
        )
        item.where = f"the prices passed in ({item.name!r})"
        if isinstance(value, pd.DataFrame):
            frame = with_date_index(value)
            item.columns = tuple(map(str, value.columns))
            item.ohlcv = _frame_ohlcv(frame, item.values.index, item.where)
        series.append(item)
    return Panel(series, check_names=name is not None)


def holds_many(data) -> bool:
    """Whether `data` is given as many series: a Panel, a dict of several, or a
    long DataFrame with a ticker column (even of one ticker)."""
    if isinstance(data, Panel):
        return True
    if isinstance(data, Mapping):
        return len(data) > 1
    return isinstance(data, pd.DataFrame) and bool(long_frame_column(data))


def long_frame_column(frame: pd.DataFrame) -> str | None:
    """The ticker column of a long DataFrame (ticker, symbol or name), or None."""
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    return next((by_lower[n] for n in TICKER_COLUMNS if n in by_lower), None)


def split_long_frame(frame: pd.DataFrame) -> dict:
    """A long frame (date, ticker, prices...) as {ticker: its rows}."""
    column = long_frame_column(frame)
    return {
        str(name): rows.drop(columns=[column])
        for name, rows in frame.groupby(column, sort=False)
    }


def _frame_ohlcv(frame: pd.DataFrame, index, where: str) -> pd.DataFrame | None:
    """A DataFrame's OHLCV columns as float64 on `index` (first row per date)."""
    chosen = {}
    for col in frame.columns:
        canonical = OHLCV_COLUMNS.get(str(col).strip().lower())
        if canonical is not None and canonical not in chosen:
            values = pd.to_numeric(frame[col], errors="coerce")
            text = frame[col][values.isna() & frame[col].notna()]
            if len(text):
                raise ForecasterError(
                    f"Column {str(col)!r} of {where} must hold numbers: "
                    f"{short_repr(text.iloc[0])} on {text.index[0]:%Y-%m-%d}. "
                    "Convert or "
                    "drop that value."
                )
            chosen[canonical] = values.astype(np.float64)
    if not chosen:
        return None
    order = [c for c in dict.fromkeys(OHLCV_COLUMNS.values()) if c in chosen]
    ohlcv = pd.DataFrame({c: chosen[c] for c in order}).sort_index(kind="stable")
    return ohlcv[~ohlcv.index.duplicated(keep="first")].reindex(index)
