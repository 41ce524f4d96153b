"""Loading daily closing prices: from a CSV file, or from a ticker via yfinance with a cache."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.config import DataSettings
from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")

SAMPLE_CSV = "data/AAPL.csv"  # the shipped sample, used when no --csv or --ticker
DEFAULT_YEARS = 10  # a ticker with no --start downloads this many years
DATE_NAMES = ("date", "datetime", "timestamp", "time", "day")
PRICE_FALLBACKS = ("adj close", "adj_close", "adjclose", "close", "close/last", "price")
MISSING_TOKENS = {"", "null", "none", "nan", "na", "n/a", "-", "--", "#n/a", "nil"}
MAX_NAMED = 5  # dates listed in a warning or error before "and N more"


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
    return read_price_csv(settings.csv or SAMPLE_CSV, column=settings.column)


# --------------------------------------------------------------------------- CSV


def read_price_csv(path: str | os.PathLike, column: str | None = None) -> Prices:
    """Read a CSV with a date column and a price column into a clean `Prices`.

    The price column is `column` if given, else "Adj Close" if present, else
    "Close" (case-insensitive). Handles Yahoo's layout, yfinance's three-line
    header, Nasdaq's "$" prices, newest-first files and text prices.
    """
    path = Path(path)
    frame = _read_table(path)
    date_col = _find_date_column(frame, path)
    price_col = _find_price_column(frame, column, path)
    dates = _parse_dates(frame[date_col], path, date_col)
    prices = _parse_prices(frame[price_col], dates, path, price_col)
    series = _clean_series(pd.Series(prices, index=dates, name=price_col), path)
    source = {"kind": "csv", "path": str(path), "column": price_col}
    return Prices(series.values_series, source, series.notes)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ForecasterError(
            f"CSV file not found: {str(path)!r}. Check the path, or omit --csv to use "
            f"the sample {SAMPLE_CSV}."
        )
    if path.is_dir():
        raise ForecasterError(
            f"Expected a CSV file but got a directory: {str(path)!r}."
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise ForecasterError(
            f"CSV file is empty: {str(path)!r}. Give a file with prices."
        )
    if b"\x00" in raw[:4096]:
        raise ForecasterError(
            f"File is not a CSV text file (it holds binary data): {str(path)!r}."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        from io import StringIO

        frame = pd.read_csv(
            StringIO(text),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            on_bad_lines="skip",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ForecasterError(
            f"Could not read {str(path)!r} as CSV ({first}). Give a comma-separated "
            "file with a header row, e.g. Date,Close."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = _undo_yfinance_header(frame)
    if frame.shape[1] < 2:
        raise ForecasterError(
            f"{str(path)!r} does not look like a CSV with a date and a price column: "
            f"found columns {list(frame.columns)}."
        )
    if frame.empty:
        raise ForecasterError(
            f"CSV file has a header but no rows: {str(path)!r} (columns "
            f"{list(frame.columns)}). Give a file with prices."
        )
    return frame


def _undo_yfinance_header(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn yfinance's `to_csv` layout (Price / Ticker / Date header lines) flat."""
    if not len(frame.columns) or frame.columns[0].lower() != "price" or len(frame) < 2:
        return frame
    first_cells = frame.iloc[:2, 0].str.strip().str.lower().tolist()
    if first_cells[0] != "ticker" or first_cells[1] not in DATE_NAMES:
        return frame
    frame = frame.iloc[2:].reset_index(drop=True)
    frame.columns = ["Date"] + list(frame.columns[1:])
    return frame


def _find_date_column(frame: pd.DataFrame, path: Path) -> str:
    for name in frame.columns:
        if name.lower() in DATE_NAMES:
            return name
    first = frame.columns[0]
    sample = frame[first].head(20)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    if len(sample) and parsed.notna().mean() > 0.8:
        return first
    raise ForecasterError(
        f"No date column in {str(path)!r}: found columns {list(frame.columns)}. "
        "Name the date column 'Date'."
    )


def _find_price_column(frame: pd.DataFrame, column: str | None, path: Path) -> str:
    by_lower = {name.lower(): name for name in frame.columns}
    if column is not None:
        if column.lower() in by_lower:
            return by_lower[column.lower()]
        raise ForecasterError(
            f"Column {column!r} (from --column) is not in {str(path)!r}: found columns "
            f"{list(frame.columns)}."
        )
    for candidate in PRICE_FALLBACKS:
        if candidate in by_lower:
            return by_lower[candidate]
    raise ForecasterError(
        f"No price column in {str(path)!r}: found columns {list(frame.columns)}. "
        "Expected 'Adj Close' or 'Close', or name one with --column."
    )


def _parse_dates(raw: pd.Series, path: Path, name: str) -> pd.DatetimeIndex:
    text = raw.astype(str).str.strip()
    parsed = None
    for fmt in ("ISO8601", "%m/%d/%Y", "%d.%m.%Y", "mixed"):
        try:
            attempt = pd.to_datetime(text, errors="coerce", format=fmt)
        except (ValueError, TypeError, OverflowError):
            continue
        if attempt.notna().all():
            parsed = attempt
            break
        if parsed is None or attempt.notna().sum() > parsed.notna().sum():
            parsed = attempt
    if parsed is None or parsed.isna().any():
        bad = text[parsed.isna()] if parsed is not None else text
        raise ForecasterError(
            f"Column {name!r} in {str(path)!r} has {len(bad)} value(s) that are not "
            f"dates, e.g. {bad.iloc[0]!r}. Use dates like 2024-01-31 or 01/31/2024."
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return pd.DatetimeIndex(parsed.dt.normalize(), name="Date")


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _parse_prices(raw: pd.Series, dates: pd.DatetimeIndex, path: Path, name: str):
    """Text prices to float64: strips '$', thousands commas and spaces; gaps -> NaN."""
    values = np.empty(len(raw), dtype=np.float64)
    for i, cell in enumerate(raw.astype(str)):
        token = cell.strip().replace("$", "").replace(",", "").replace(" ", "")
        if token.lower() in MISSING_TOKENS:
            values[i] = np.nan
        elif _NUMBER.match(token):
            values[i] = float(token)
        elif token.lower().lstrip("+-") in ("inf", "infinity"):
            values[i] = np.inf
        else:
            raise ForecasterError(
                f"Price column {name!r} in {str(path)!r} has a value that is not a "
                f"number: {cell!r} on {dates[i]:%Y-%m-%d}. Fix or blank that cell."
            )
    return values


@dataclass
class _Cleaned:
    values_series: pd.Series
    notes: list[str]


def _clean_series(series: pd.Series, path: Path) -> _Cleaned:
    """Sort oldest first, drop gaps and identical duplicates, reject what is unsafe."""
    notes = []
    missing = series.isna()
    if missing.any():
        notes.append(
            f"dropped {int(missing.sum())} row(s) with no price in {str(path)!r}: "
            f"{_name_dates(series.index[missing])}"
        )
        series = series[~missing]
    bad = ~np.isfinite(series.to_numpy()) | (series.to_numpy() <= 0)
    if bad.any():
        first = series.index[bad][0]
        raise ForecasterError(
            f"Prices must be positive and finite: {series[bad].iloc[0]} on "
            f"{first:%Y-%m-%d} in {str(path)!r}. Fix or remove that row."
        )
    series = series.sort_index(kind="stable")
    dup = series.index.duplicated(keep=False)
    if dup.any():
        groups = series[dup].groupby(level=0)
        conflicting = [d for d, g in groups if g.nunique() > 1]
        if conflicting:
            raise ForecasterError(
                f"Conflicting prices for the same date in {str(path)!r}: "
                f"{_name_dates(pd.DatetimeIndex(conflicting))}. Keep one row per date."
            )
        repeated = pd.DatetimeIndex(sorted({d for d, _ in groups}))
        notes.append(
            f"dropped duplicate rows for {len(repeated)} date(s) in {str(path)!r}: "
            f"{_name_dates(repeated)}"
        )
        series = series[~series.index.duplicated(keep="first")]
    if len(series) < 2:
        raise ForecasterError(
            f"Only {len(series)} usable price row(s) in {str(path)!r}; a forecast needs "
            "a long daily series (hundreds of rows)."
        )
    for note in notes:
        log.warning(note)
    return _Cleaned(series.astype(np.float64), notes)


def _name_dates(index: pd.DatetimeIndex) -> str:
    shown = ", ".join(d.strftime("%Y-%m-%d") for d in index[:MAX_NAMED])
    more = len(index) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


# ------------------------------------------------------------------------ ticker


def cache_path(ticker: str, cache_dir: str | os.PathLike) -> Path:
    """Where a ticker's last successful download is kept."""
    safe = re.sub(r"[^A-Za-z0-9.^=_-]", "_", ticker.upper())
    return Path(cache_dir) / f"{safe}.csv"


def download_prices(
    ticker: str,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str | os.PathLike = "data/cache",
    column: str | None = None,
    download=None,
) -> Prices:
    """Download daily prices with yfinance, caching each success as a CSV.

    When the download fails or returns nothing, the cached CSV (if any) is used
    instead and a warning says so. `download` replaces `yfinance.download`
    (tests pass a fake).
    """
    ticker = ticker.strip().upper()
    if not ticker:
        raise ForecasterError("--ticker is empty. Give a symbol such as MSFT.")
    start = (
        start or (dt.date.today() - dt.timedelta(days=365 * DEFAULT_YEARS)).isoformat()
    )
    cache = cache_path(ticker, cache_dir)
    frame, failure = _try_download(ticker, start, end, download)
    if frame is not None:
        prices = _cache_download(flatten_download(frame, ticker), cache, column)
        prices.source = {
            "kind": "ticker",
            "ticker": ticker,
            "column": prices.source["column"],
            "start": start,
            "end": end,
            "cache": str(cache),
        }
        return prices
    if not cache.exists():
        raise ForecasterError(
            f"{failure} and there is no cache at {str(cache)!r}. "
            + _ADVICE[_kind_of(failure)]
        )
    prices = read_price_csv(cache, column=column)
    values = prices.values.loc[start:end] if end else prices.values.loc[start:]
    if len(values) < 2:
        raise ForecasterError(
            f"{failure}, and the cache {str(cache)!r} holds no prices between {start} and "
            f"{end or 'today'} (it covers {prices.first_date} to {prices.last_date})."
        )
    note = (
        f"{failure}; using cached prices from {str(cache)!r} "
        f"({values.index[0]:%Y-%m-%d} to {values.index[-1]:%Y-%m-%d})"
    )
    log.warning(note)
    source = {
        "kind": "ticker",
        "ticker": ticker,
        "column": prices.source["column"],
        "start": start,
        "end": end,
        "cache": str(cache),
        "from_cache": True,
    }
    return Prices(values, source, prices.notes + [note])


_ADVICE = {
    "rate": "Wait a few minutes and retry, or pass --csv with a saved file.",
    "network": "Check your internet connection, or pass --csv with a saved file.",
    "symbol": "Check the symbol (e.g. on finance.yahoo.com) and the --start/--end "
    "range, or pass --csv.",
}


def _kind_of(failure: str) -> str:
    lowered = failure.lower()
    if "rate" in lowered and "limit" in lowered:
        return "rate"
    if "reach" in lowered:
        return "network"
    return "symbol"


_NETWORK_HINTS = (
    "connection",
    "resolve",
    "timed out",
    "timeout",
    "curl",
    "network",
    "unreachable",
    "failed to perform",
    "ssl",
    "proxy",
)


def _classify(ticker: str, message: str) -> str:
    lowered = message.lower()
    if (
        "ratelimit" in lowered.replace(" ", "").replace("_", "")
        or "too many requests" in lowered
    ):
        return (
            f"Yahoo Finance is rate-limiting downloads of {ticker!r} (YFRateLimitError)"
        )
    if any(hint in lowered for hint in _NETWORK_HINTS):
        short = message.splitlines()[0][:160]
        return f"Could not reach Yahoo Finance to download {ticker!r} ({short})"
    return f"yfinance returned no prices for {ticker!r}: the symbol may be unknown or delisted"


def _try_download(ticker, start, end, download):
    """Return (frame, None) on success or (None, reason) on any failure."""
    if download is None:
        try:
            import yfinance
        except ImportError:
            return None, "yfinance is not installed (pip install yfinance)"
        download = yfinance.download
    captured = _CapturedErrors()
    yf_log = logging.getLogger("yfinance")
    yf_log.addHandler(captured)
    saved_propagate = yf_log.propagate
    yf_log.propagate = False
    try:
        frame = download(
            ticker,
            start=start,
            end=end,
            auto_adjust=True,
            progress=False,
            threads=False,
        )
    except Exception as err:  # yfinance and its HTTP stack raise many kinds
        return None, _classify(ticker, f"{type(err).__name__}: {err}")
    finally:
        yf_log.removeHandler(captured)
        yf_log.propagate = saved_propagate
    if frame is None or len(frame) == 0 or frame.dropna(how="all").empty:
        return None, _classify(ticker, " ".join(captured.messages))
    return frame, None


class _CapturedErrors(logging.Handler):
    """Collects yfinance's logged errors (it logs failures instead of raising)."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def flatten_download(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Flatten `yfinance.download` output to one column per price field.

    Real downloads have MultiIndex `(Price, Ticker)` columns even for one
    ticker; older versions and `multi_level_index=False` give flat columns.
    """
    if isinstance(frame.columns, pd.MultiIndex):
        names = [str(n).lower() for n in frame.columns.names]
        level = (
            names.index("ticker") if "ticker" in names else frame.columns.nlevels - 1
        )
        tickers = frame.columns.get_level_values(level)
        if ticker in set(tickers):
            frame = frame.xs(ticker, axis=1, level=level)
        elif len(set(tickers)) == 1:
            frame = frame.droplevel(level, axis=1)
        else:
            raise ForecasterError(
                f"The download for {ticker!r} holds other tickers: {sorted(set(tickers))}."
            )
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    frame.index = index.normalize().rename("Date")
    return frame.dropna(how="all")


def _cache_download(frame: pd.DataFrame, cache: Path, column: str | None) -> Prices:
    """Check a download, then write it as the cache atomically.

    The new CSV is written beside the cache and read back first, so a download
    that cannot be used never replaces a good cache.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, date_format="%Y-%m-%d")
        prices = read_price_csv(tmp, column=column)
        os.replace(tmp, cache)
    finally:
        if tmp.exists():
            tmp.unlink()
    prices.notes = [n.replace(str(tmp), str(cache)) for n in prices.notes]
    return prices
