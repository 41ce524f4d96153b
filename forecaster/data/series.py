"""A daily price series, and the constants shared by the CSV reader and downloader."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

SAMPLE_CSV = "data/AAPL.csv"  # the shipped sample, used when no --csv or --ticker
DATE_NAMES = ("date", "datetime", "timestamp", "time", "day")
PRICE_FALLBACKS = ("adj close", "adj_close", "adjclose", "close", "close/last", "price")
# Gaps, compared lower-case; "." is how FRED and other data portals mark one.
MISSING_TOKENS = {
    "",
    ".",
    "null",
    "none",
    "nan",
    "na",
    "n/a",
    "-",
    "--",
    "#n/a",
    "nil",
}
MAX_NAMED = 5  # dates listed in a warning or error before "and N more"
# Tried in order; the whole column must parse with one format, so 03/04/2024 is
# read the same way in every row (never month-first here and day-first there).
DATE_FORMATS = (
    "ISO8601",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%b %d, %Y",
    "%d %b %Y",
)
EARLIEST_DATE = pd.Timestamp("1900-01-01")  # earlier or later dates are typos
LATEST_DATE = pd.Timestamp("2200-12-31")


@dataclass
class Prices:
    """A daily price series with where it came from.

    `values` is a float64 Series on a sorted, unique DatetimeIndex, all finite
    and positive. `source` is what the bundle records to find the data again.
    """

    values: pd.Series
    source: dict
    notes: list[str] = field(default_factory=list)

    @property
    def first_date(self) -> str:
        return self.values.index[0].strftime("%Y-%m-%d")

    @property
    def last_date(self) -> str:
        return self.values.index[-1].strftime("%Y-%m-%d")
