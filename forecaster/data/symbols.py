"""Many symbols downloaded in one yfinance call: a panel named by symbol.

Each symbol's frame is cached as its own CSV (forecaster.data.yahoo); a symbol
that fails falls back on its cache, or is left out with `skip_bad=True`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from forecaster.data.csv import read_table
from forecaster.data.series import (
    Panel,
    Series,
    check_series_name,
    check_unique,
    panel_or_error,
)
from forecaster.data.tables import as_list, read_series_csv, series_from_table
from forecaster.data.yahoo import (
    DownloadFailure,
    cache_path,
    call_download,
    check_range,
    check_ticker,
    classify_failure,
    flatten_download,
    ticker_source,
    use_cache,
    write_cache,
)
from forecaster.errors import ForecasterError


def download_panel(
    tickers,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str | os.PathLike = "data/cache",
    column: str | None = None,
    download=None,
    skip_bad: bool = False,
) -> Panel:
    """Several symbols downloaded in one yfinance call, one series each.

    Each symbol is checked and cached like `download_prices`: a symbol that
    the download misses (an all-NaN column, e.g. a delisted one) or that
    comes back unusable falls back on its own cache with a warning, else
    raises an error naming it (or, with `skip_bad=True`, is left out with a
    warning). `download` replaces `yfinance.download` (tests pass a fake).
    """
    symbols = _check_symbols(tickers)
    start, end = check_range(start, end)
    frame, error, messages = _download_all(symbols, start, end, download)
    loaded, skipped = [], {}
    for symbol in symbols:
        try:
            loaded.append(
                _symbol_series(
                    symbol, frame, error, messages, (start, end), cache_dir, column
                )
            )
        except ForecasterError as err:
            if not skip_bad:
                raise
            skipped[symbol] = str(err)
    return panel_or_error(loaded, skipped, f"{len(symbols)} symbol(s)")


def _check_symbols(tickers) -> list[str]:
    if isinstance(tickers, str):
        tickers = tickers.replace(",", " ").split()
    symbols = [check_ticker(t) for t in as_list(tickers, "tickers")]
    if not symbols:
        raise ForecasterError("Give at least one symbol. Received: tickers=[]")
    for symbol in symbols:
        check_series_name(symbol, "tickers")
    check_unique(symbols, symbols, "symbols")
    return symbols


def _download_all(symbols: list[str], start: str, end: str | None, download):
    """(frame, None, logged) from one yfinance call, or (None, error, logged)."""
    frame, error, messages = call_download(symbols, start, end, download)
    if error is None and not isinstance(frame, pd.DataFrame):
        return None, None, messages
    return frame, error, messages


def _symbol_series(symbol, frame, error, messages, dates, cache_dir, column):
    """One symbol's series from the download, else from its own cache."""
    start, end = dates
    cache = cache_path(symbol, cache_dir)
    item, failure = _from_download(symbol, frame, error, messages, cache, column)
    if item is not None:
        item.source = ticker_source(symbol, item, start, end, cache)
        return item
    prices = use_cache(symbol, cache, column, start, end, failure)
    cached = read_series_csv(cache, name=symbol, column=column)
    ohlcv = None if cached.ohlcv is None else cached.ohlcv.reindex(prices.values.index)
    where = f"the cache {str(cache)!r} of {symbol!r}"
    return Series(
        symbol, prices.values, ohlcv, prices.source, cached.columns, where, prices.notes
    )


def _from_download(symbol, frame, error, messages, cache, column):
    """(series, None) from the symbol's columns of the download, or (None, why)."""
    if isinstance(error, DownloadFailure):  # yfinance could not even be called
        return None, error
    flat = _symbol_frame(frame, symbol)
    if flat is None or flat.empty:
        # Of what yfinance logged, only the lines naming this symbol explain it.
        if frame is not None:
            messages = [m for m in messages if f"'{symbol}'" in m]
        return None, classify_failure(symbol, error, messages)
    return _use_symbol_frame(flat, symbol, cache, column)


def _symbol_frame(frame: pd.DataFrame | None, symbol: str) -> pd.DataFrame | None:
    """The symbol's flat columns from a download, or None when it is not there."""
    if frame is None:
        return None
    if isinstance(frame.columns, pd.MultiIndex):
        names = [str(n).lower() for n in frame.columns.names]
        level = (
            names.index("ticker") if "ticker" in names else frame.columns.nlevels - 1
        )
        if symbol not in set(frame.columns.get_level_values(level)):
            return None
    return flatten_download(frame, symbol)


def _use_symbol_frame(flat: pd.DataFrame, symbol: str, cache: Path, column):
    """Check one symbol's download in memory, then cache it: (series, None) or why."""
    where = f"the download for {symbol!r}"
    text = flat.to_csv(date_format="%Y-%m-%d")
    try:
        table = read_table(text, where)
        item = series_from_table(table, symbol, where, column, {})
    except ForecasterError as err:
        reason = f"yfinance returned unusable prices for {symbol!r} ({err})"
        return None, DownloadFailure("unusable", reason)
    write_cache(text, cache)
    return item, None
