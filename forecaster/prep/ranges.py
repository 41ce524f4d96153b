"""Per-day variance estimators from the day's open, high, low and close.

The range (high against low) carries 5 to 14 times the information about a
day's variance that the close-to-close return does. Each estimator here gives
one value per day, in squared daily log-return units, from that day's prices
(and, for Yang-Zhang, the previous close) only:

- `parkinson`: (ln H - ln L)^2 / (4 ln 2)  (Parkinson 1980);
- `garman_klass`: 0.5 (ln H/L)^2 - (2 ln 2 - 1) (ln C/O)^2  (Garman & Klass 1980);
- `rogers_satchell`: ln(H/C) ln(H/O) + ln(L/C) ln(L/O), unbiased under a
  drift (Rogers & Satchell 1991);
- `yang_zhang`: the overnight move squared, plus k (ln C/O)^2 + (1 - k) RS,
  the one-day form of Yang & Zhang (2000), with k = 0.34 / 1.34.

Open, high and low in Yahoo's layout are not adjusted for splits and
dividends while Adj Close is: `adjusted_ohlc` scales all four by the day's
Adj Close / Close, so that the overnight move (open against the previous
close) does not jump at a split. Ratios within one day are unchanged by it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.data.series import Series, name_dates
from forecaster.errors import ForecasterError

ESTIMATORS = ("parkinson", "garman_klass", "rogers_satchell", "yang_zhang")
OHLC = ("Open", "High", "Low", "Close")
LOG_TWO = np.log(2.0)
YANG_ZHANG_K = 0.34 / 1.34  # Yang-Zhang's weight on the open-to-close part


def has_range(series: Series) -> bool:
    """Whether the series has the High and Low the range estimators read."""
    return series.ohlcv is not None and {"High", "Low"} <= set(series.ohlcv.columns)


def adjusted_ohlc(series: Series) -> pd.DataFrame | None:
    """Open, High, Low, Close on the series' dates, split-adjusted, or None
    when it has no High/Low.

    With Adj Close and Close, each day's four prices are scaled by Adj Close /
    Close. A missing Open or Close falls back to the target (the open, then,
    carries no overnight move). A day whose High is below its Low, or with a
    price that is not a positive number, is an error naming the date.
    """
    if not has_range(series):
        return None
    ohlcv = series.ohlcv
    target = series.values.to_numpy(np.float64)
    close = _prices(ohlcv, "Close", target)
    factor = np.ones(len(series))
    if "Adj Close" in ohlcv.columns and "Close" in ohlcv.columns:
        factor = _prices(ohlcv, "Adj Close", target) / close
    frame = pd.DataFrame(
        {name: _prices(ohlcv, name, close) * factor for name in OHLC},
        index=series.values.index,
    )
    _check_range(series, frame)
    return frame


def _prices(ohlcv: pd.DataFrame, name: str, fallback: np.ndarray) -> np.ndarray:
    if name not in ohlcv.columns:
        return np.asarray(fallback, np.float64)
    return ohlcv[name].to_numpy(np.float64)


def _check_range(series: Series, frame: pd.DataFrame) -> None:
    values = frame.to_numpy()
    bad = ~np.all(np.isfinite(values) & (values > 0), axis=1)
    if bad.any():
        raise ForecasterError(
            f"Open/High/Low/Close of {series.where} must be positive numbers, but "
            f"they are not on {name_dates(frame.index[bad])}. Fix or remove those rows."
        )
    inverted = frame["High"].to_numpy() < frame["Low"].to_numpy()
    if inverted.any():
        day = frame.index[np.flatnonzero(inverted)[0]]
        cells = series.ohlcv.loc[day]  # the file's own values, not split-adjusted
        raise ForecasterError(
            f"High is below Low in {series.where} on "
            f"{name_dates(frame.index[inverted])} "
            f"(High {cells['High']:g}, Low {cells['Low']:g}). "
            "Fix those rows, or swap the two columns if they are reversed."
        )


def estimators(ohlc: pd.DataFrame) -> pd.DataFrame:
    """Every estimator of `ESTIMATORS` per day: (n_days, 4), squared log units.

    `ohlc`: `adjusted_ohlc`'s frame. Yang-Zhang's first day has no previous
    close and is NaN; the others are defined on every day.
    """
    o, h, low, c = (np.log(ohlc[name].to_numpy(np.float64)) for name in OHLC)
    return pd.DataFrame(
        {
            "parkinson": parkinson(h, low),
            "garman_klass": garman_klass(o, h, low, c),
            "rogers_satchell": rogers_satchell(o, h, low, c),
            "yang_zhang": yang_zhang(o, h, low, c),
        },
        index=ohlc.index,
    )


def parkinson(log_high, log_low) -> np.ndarray:
    """(ln H - ln L)^2 / (4 ln 2), from log prices."""
    return (np.asarray(log_high) - np.asarray(log_low)) ** 2 / (4 * LOG_TWO)


def garman_klass(log_open, log_high, log_low, log_close) -> np.ndarray:
    """0.5 (ln H/L)^2 - (2 ln 2 - 1) (ln C/O)^2, from log prices (may dip below 0
    on a day whose close-to-open move is most of its range)."""
    spread = np.asarray(log_high) - np.asarray(log_low)
    body = np.asarray(log_close) - np.asarray(log_open)
    return 0.5 * spread**2 - (2 * LOG_TWO - 1) * body**2


def rogers_satchell(log_open, log_high, log_low, log_close) -> np.ndarray:
    """ln(H/C) ln(H/O) + ln(L/C) ln(L/O), from log prices (never negative)."""
    h, low = np.asarray(log_high), np.asarray(log_low)
    o, c = np.asarray(log_open), np.asarray(log_close)
    return (h - c) * (h - o) + (low - c) * (low - o)


def yang_zhang(log_open, log_high, log_low, log_close) -> np.ndarray:
    """Overnight^2 + k (ln C/O)^2 + (1 - k) Rogers-Satchell, one day at a time;
    NaN on the first day (no previous close)."""
    o, c = np.asarray(log_open), np.asarray(log_close)
    overnight = np.full(len(o), np.nan)
    overnight[1:] = o[1:] - c[:-1]
    rs = rogers_satchell(o, log_high, log_low, c)
    return overnight**2 + YANG_ZHANG_K * (c - o) ** 2 + (1 - YANG_ZHANG_K) * rs
