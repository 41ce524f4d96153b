"""Loading daily prices: from CSV files (`csv`) or from Yahoo Finance (`yahoo`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.config import DataSettings
from forecaster.data.csv import read_price_csv
from forecaster.data.panel import (
    is_long_format,
    load_panel,
    read_long_csv,
    read_panel_dir,
)
from forecaster.data.series import SAMPLE_CSV, Panel, Series
from forecaster.data.tables import read_price_file
from forecaster.data.yahoo import cache_path, download_prices, flatten_download
from forecaster.errors import ForecasterError

__all__ = [
    "SAMPLE_CSV",
    "Prices",
    "cache_path",
    "download_prices",
    "flatten_download",
    "load_prices",
    "read_price_csv",
    "read_prices",
]


def load_prices(settings: DataSettings, download=None) -> Series:
    """Load prices as the settings say: a ticker, a CSV, or the shipped sample."""
    if settings.ticker and settings.csv:
        raise ForecasterError(
            f"Give either --csv or --ticker, not both. Received: csv={settings.csv!r}, "
            f"ticker={settings.ticker!r}"
        )
    if settings.ticker:
        return download_prices(
            settings.ticker,
            start=settings.start,
            end=settings.end,
            cache_dir=settings.cache_dir,
            column=settings.column,
            download=download,
        )
    return read_price_file(
        settings.csv or SAMPLE_CSV, column=settings.column, decimal=settings.decimal
    )


def read_prices(
    source: str | Path | list,
    column: str | None = None,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str = "data/cache",
    decimal: str = ".",
    skip_bad: bool = False,
) -> pd.Series | Panel:
    """Daily prices from any source the command line reads.

    - One CSV file, or one ticker symbol (downloaded with yfinance, cached in
      `cache_dir`): a float64 pandas Series on a sorted DatetimeIndex named
      "Date", named after its price column, keeping where it came from in
      `series.attrs["source"]`. `decimal=","` reads a semicolon-separated
      CSV with decimal commas.
    - A folder of CSVs (one series each, named by file stem), a long-format
      CSV (a ticker, symbol or Name column), or a list of CSV paths or of
      symbols: a `forecaster.data.series.Panel`, an ordered mapping
      name -> Series (`.values`: the float64 prices on a DatetimeIndex;
      `.ohlcv`: the Open/High/Low/Close/Adj Close/Volume columns found, on
      the same dates, or None). `skip_bad=True` leaves out a series that
      cannot be read, with a warning.

    `Forecaster.fit` takes either. A path that exists, or ends in .csv, is
    a file; anything else is a symbol.
    """
    if isinstance(source, (list, tuple)):
        files = [Path(str(item)) for item in source]
        if files and all(_is_file(item) for item in files):
            return load_panel(csv=files, column=column, skip_bad=skip_bad)
        return load_panel(
            tickers=[str(item) for item in source],
            column=column,
            start=start,
            end=end,
            cache_dir=cache_dir,
            skip_bad=skip_bad,
        )
    text = str(source)
    if Path(text).is_dir():
        return read_panel_dir(text, column=column, skip_bad=skip_bad)
    is_file = _is_file(Path(text))
    if is_file and Path(text).is_file() and is_long_format(text):
        return read_long_csv(text, column=column, skip_bad=skip_bad)
    settings = DataSettings(
        csv=text if is_file else None,
        ticker=None if is_file else text,
        start=start,
        end=end,
        column=column,
        cache_dir=cache_dir,
        decimal=decimal,
    )
    prices = load_prices(settings)
    series = prices.values.copy()
    series.attrs["source"] = prices.source
    return series


def _is_file(path: Path) -> bool:
    return path.exists() or path.suffix.lower() == ".csv"
