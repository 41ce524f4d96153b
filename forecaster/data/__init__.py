"""Loading daily prices: from CSV files (`csv`) or from Yahoo Finance (`yahoo`)."""

from __future__ import annotations

from forecaster.config import DataSettings
from forecaster.data.csv import read_price_csv
from forecaster.data.series import SAMPLE_CSV, Prices
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
]


def load_prices(settings: DataSettings, download=None) -> Prices:
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
    return read_price_csv(
        settings.csv or SAMPLE_CSV, column=settings.column, decimal=settings.decimal
    )
