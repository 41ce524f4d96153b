"""Reading a column of date cells: the formats tried, ISO days by NumPy, the range."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from forecaster.data.series import (
    DATE_FORMATS,
    EARLIEST_DATE,
    LATEST_DATE,
    short_repr,
)
from forecaster.errors import ForecasterError

# A UTC offset after a time of day, e.g. "2024-03-11 00:00:00-04:00".
_OFFSET = re.compile(
    r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)


def to_timestamps(text: pd.Series) -> tuple[pd.Series, int]:
    """Parse with the first format that reads every cell (else the one reading most).

    Cells that no format reads, or outside EARLIEST_DATE..LATEST_DATE, are NaT.
    Returns the dates and the position in DATE_FORMATS of the format used.
    A column read as dates already (plain days, which forecaster.data.bulk
    reads from the bytes) is returned as it is.
    """
    if text.dtype.kind == "M":
        return text, 0
    return _parse_distinct(_as_text(text))


def repeated_days(text: pd.Series) -> tuple[np.ndarray, int]:
    """`day_values(to_timestamps(text))` for a column that repeats its dates (a
    long file): each distinct cell is parsed and checked once.

    Returns datetime64 days (NaT for a cell that is not a date) and the
    position in DATE_FORMATS of the format used.
    """
    codes, distinct = pd.factorize(_as_text(text))
    parsed, used = _parse_distinct(pd.Series(distinct, dtype=str))
    return day_values(parsed)[codes], used


def _as_text(text: pd.Series) -> pd.Series:
    cells = text.astype(str)
    return cells.fillna("") if cells.hasnans else cells


def _parse_distinct(text: pd.Series) -> tuple[pd.Series, int]:
    local = text.str.strip()
    days = iso_days(local)
    if days is not None:
        return days, 0  # what the first format, ISO 8601, reads
    if local.str.contains(":", regex=False).any():
        # The date written is the exchange's trading day; offsets change with
        # daylight saving, so they are dropped rather than converted (which
        # could shift the day).
        local = local.str.replace(_OFFSET, r"\1", regex=True)
    best = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    used = 0
    for position, fmt in enumerate(DATE_FORMATS):
        try:
            attempt = pd.to_datetime(local, errors="coerce", format=fmt)
        except (ValueError, TypeError, OverflowError):
            continue
        if not pd.api.types.is_datetime64_dtype(attempt):
            continue  # time-zone names or other leftovers; no format fits
        attempt = attempt.where((attempt >= EARLIEST_DATE) & (attempt <= LATEST_DATE))
        if attempt.notna().sum() > best.notna().sum():
            best, used = attempt, position
        if best.notna().all():
            break
    return best, used


def parse_dates(raw: pd.Series, where: str, name: str) -> pd.DatetimeIndex:
    parsed, _ = to_timestamps(raw)
    return checked_dates(parsed, raw, where, name)


def checked_dates(
    parsed: pd.Series, raw: pd.Series, where: str, name: str
) -> pd.DatetimeIndex:
    """`parsed` (from `to_timestamps(raw)`) as a date index; a cell that is not a
    date is an error naming it."""
    if parsed.isna().any():
        bad = raw[parsed.isna()]
        raise ForecasterError(
            f"Column {name!r} in {where} has {len(bad)} value(s) that are not dates "
            f"between {EARLIEST_DATE.year} and {LATEST_DATE.year}, e.g. "
            f"{short_repr(str(bad.iloc[0]).strip())} (line {bad.index[0]}). Use "
            "dates like "
            "2024-01-31 or 01/31/2024."
        )
    return pd.DatetimeIndex(day_values(parsed), name="Date")


def day_values(parsed: pd.Series) -> np.ndarray:
    """Parsed dates as datetime64 at midnight (a time of day is dropped)."""
    days = parsed.to_numpy()
    if (days != days.astype("datetime64[D]")).any():
        days = parsed.dt.normalize().to_numpy()
    return days


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
