"""Prices from pandas objects a user already holds: a Series or an OHLCV DataFrame.

They go through the same checks as a CSV (gaps dropped with a warning,
non-positive prices and conflicting dates refused), with the same messages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.data.csv import _clean_series, _show
from forecaster.data.series import DATE_NAMES, PRICE_FALLBACKS, Prices
from forecaster.errors import ForecasterError

ACCEPTED = (
    "a pandas Series of prices on a DatetimeIndex, or a DataFrame with a date "
    "index (or a Date column) and a price column such as 'Adj Close' or 'Close'"
)


def prices_from_pandas(data, column: str | None = None, name: str | None = None):
    """A clean `Prices` from a Series or DataFrame; `column` picks a frame's column.

    A Series may carry where it came from in `series.attrs["source"]` (set by
    `forecaster.read_prices`), which a saved bundle then records.
    """
    if isinstance(data, pd.DataFrame):
        series = _frame_column(_with_date_index(data), column)
    elif isinstance(data, pd.Series):
        series = _with_date_index(data)
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
    clean, notes = _clean_series(values, where)
    source = dict(series.attrs.get("source") or {"kind": "pandas", "name": label})
    return Prices(clean, source, notes)


def _with_date_index(data):
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
                f"{_show(frame.columns)}. Choose one of those."
            )
    else:
        chosen = next((by_lower[n] for n in PRICE_FALLBACKS if n in by_lower), None)
        if chosen is None:
            raise ForecasterError(
                f"No price column in the frame: found columns {_show(frame.columns)}. "
                "Expected 'Adj Close' or 'Close', or name one with column=."
            )
    series = frame[chosen]
    series.attrs = dict(frame.attrs)
    return series.rename(str(chosen))
