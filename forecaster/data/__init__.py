"""Loading daily prices: from CSV files (`csv`) or from Yahoo Finance (`yahoo`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.config import DataSettings
from forecaster.data.csv import read_price_csv
from forecaster.data.series import SAMPLE_CSV, Series
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
    source: str | Path,
    column: str | None = None,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str = "data/cache",
    decimal: str = ".",
) -> pd.Series:
    """Daily prices from a CSV path or a ticker symbol, as a float64 Series.

    A path to an existing file (or one ending in .csv) is read as a CSV;
    anything else is taken as a symbol and downloaded with yfinance (cached
    in `cache_dir`). `decimal=","` reads a semicolon-separated CSV with
    decimal commas. The Series is named after its price column and keeps
    where it came from in `series.attrs["source"]`.
    """
    text = str(source)
    is_file = Path(text).exists() or text.lower().endswith(".csv")
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
