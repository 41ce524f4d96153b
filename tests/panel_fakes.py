"""Generated panels for tests: multi-ticker yfinance frames and long-format CSV text.

Everything here is generated (random walks or arange-style numbers), not
market data. `yf_panel_frame` rebuilds what `yfinance.download([...])`
returns; `test_fake_panel_frame_matches_real_yfinance` checks it against the
real library.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OHLCV = ["Open", "High", "Low", "Close", "Volume"]


def yf_history(closes, start: str = "2024-01-02") -> pd.DataFrame:
    """One ticker's daily history as yfinance's Ticker.history gives it (tz-naive)."""
    closes = np.asarray(closes, dtype=np.float64)
    dates = pd.bdate_range(start, periods=len(closes)).strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "Open": closes - 0.5,
            "High": closes + 1.0,
            "Low": closes - 1.0,
            "Close": closes,
            "Volume": np.arange(1000, 1000 + len(closes), dtype=np.int64),
        },
        index=pd.DatetimeIndex(pd.to_datetime(list(dates)), name="Date"),
    )


def yf_failed_history() -> pd.DataFrame:
    """What yfinance keeps for a ticker that failed (yfinance.utils.empty_df)."""
    columns = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    empty = pd.DataFrame(index=[], data={name: np.nan for name in columns})
    empty.index.name = "Date"
    return empty


def yf_panel_frame(histories: dict) -> pd.DataFrame:
    """`yfinance.download(list(histories), auto_adjust=True)` for these histories.

    histories: symbol -> its history frame, or None for a symbol that failed
    (a delisted one): that symbol gets all-NaN columns, including an Adj
    Close column that only failed symbols have. As yfinance does, every
    frame is reindexed on the union of dates, the frames are joined with
    keys ["Ticker", "Price"], and the levels are swapped to (Price, Ticker)
    and sorted.
    """
    frames = {
        symbol: yf_failed_history() if history is None else history.copy()
        for symbol, history in histories.items()
    }
    index = None
    for frame in frames.values():
        if not frame.empty:
            index = frame.index if index is None else index.union(frame.index)
    index = pd.DatetimeIndex([]) if index is None else index
    frames = {symbol: frame.reindex(index) for symbol, frame in frames.items()}
    data = pd.concat(
        frames.values(),
        axis=1,
        sort=True,
        keys=frames.keys(),
        names=["Ticker", "Price"],
    )
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


def three_tickers() -> pd.DataFrame:
    """AAPL from 2024-01-02, MSFT from 2024-01-04 (later), GOOG failed (all NaN)."""
    return yf_panel_frame(
        {
            "AAPL": yf_history(100.0 + np.arange(40), "2024-01-02"),
            "MSFT": yf_history(200.0 + np.arange(38), "2024-01-04"),
            "GOOG": None,
        }
    )


def random_walk_ohlcv(n: int, seed: int, start: str = "2020-01-01") -> pd.DataFrame:
    """Generated OHLCV: a random walk with volatility clustering (GARCH-like)."""
    rng = np.random.default_rng(seed)
    variance, steps = 1e-4, np.empty(n)
    for i in range(n):
        steps[i] = rng.normal(0.0, np.sqrt(variance))
        variance = 1e-6 + 0.1 * steps[i] ** 2 + 0.88 * variance
    close = 50.0 * np.exp(np.cumsum(steps))
    previous = np.concatenate([[50.0], close[:-1]])
    opens = previous * np.exp(rng.normal(0, 0.002, n))
    spread = np.abs(rng.normal(0, 0.01, n))
    return pd.DataFrame(
        {
            "Open": opens,
            "High": np.maximum(opens, close) * (1 + spread),
            "Low": np.minimum(opens, close) * (1 - spread),
            "Close": close,
            "Volume": rng.integers(1_000, 100_000, n),
        },
        index=pd.bdate_range(start, periods=n, name="Date"),
    )


def long_csv_text(frames: dict, ticker_column: str = "ticker") -> str:
    """Long-format CSV text (date, ticker, open, high, low, close, volume)."""
    parts = []
    for symbol, frame in frames.items():
        part = frame.rename(columns=str.lower).reset_index(names="date")
        part.insert(1, ticker_column, symbol)
        parts.append(part)
    return pd.concat(parts).to_csv(index=False, date_format="%Y-%m-%d")
