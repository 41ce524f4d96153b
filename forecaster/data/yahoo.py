"""Downloading daily prices with yfinance: the cache, and why a download failed."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster import io as files
from forecaster.data.csv import parse_price_text, read_price_csv
from forecaster.data.fetch import download_in_child, quiet_library_warnings
from forecaster.data.series import Series
from forecaster.errors import ForecasterError, write_error
from forecaster.httpstack import http_stack_works

log = logging.getLogger("forecaster")

DEFAULT_YEARS = 10  # a ticker with no --start downloads this many years


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
) -> Series:
    """Download daily prices with yfinance, caching each success as a CSV.

    `start` and `end` are the first and last dates wanted (both included). When
    the download fails or is unusable, the cached CSV (if any) is used instead
    and a warning says so; a failed download never writes, changes or deletes
    the cache. `download` replaces `yfinance.download` (tests pass a fake).
    """
    ticker = check_ticker(ticker)
    start, end = check_range(start, end)
    cache = cache_path(ticker, cache_dir)
    frame, failure = _try_download(ticker, start, end, download)
    if failure is None:
        prices, failure = _use_download(frame, ticker, cache, column)
        if prices is not None:
            prices.source = ticker_source(ticker, prices, start, end, cache)
            return prices
    return use_cache(ticker, cache, column, start, end, failure)


def ticker_source(ticker, prices, start, end, cache, **extra) -> dict:
    return {
        "kind": "ticker",
        "ticker": ticker,
        "column": prices.values.name,
        "start": start,
        "end": end,
        "cache": str(cache),
        **extra,
    }


def check_ticker(ticker) -> str:
    symbol = str(ticker or "").strip().upper()
    if not symbol:
        raise ForecasterError(
            f"ticker is empty. Give a symbol such as MSFT. Received: ticker={ticker!r}"
        )
    if re.search(r"[\s,]", symbol):
        # yfinance would split this into several tickers.
        raise ForecasterError(
            f"ticker must be one symbol such as MSFT. Received: ticker={ticker!r}"
        )
    return symbol


def check_range(start, end) -> tuple[str, str | None]:
    """ISO strings for the first and last dates wanted; start defaults to 10 years."""
    first = _parse_day("start", start) if start else None
    last = _parse_day("end", end) if end else None
    if first is None:
        first = dt.date.today() - dt.timedelta(days=365 * DEFAULT_YEARS)
    if last is not None and last < first:
        raise ForecasterError(
            "end must not be before start. Received: "
            f"start={first.isoformat()!r}, end={end!r}"
        )
    return first.isoformat(), last.isoformat() if last else None


def _parse_day(name: str, value) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ForecasterError(
            f"{name} must be a date like 2015-01-31. Received: {name}={value!r}"
        ) from None


@dataclass
class DownloadFailure:
    """Why a download gave no usable prices: a kind (picks the advice) and a reason."""

    kind: str  # a key of _ADVICE
    reason: str


_ADVICE = {
    "rate": "Wait a few minutes and retry, or use a saved CSV file instead.",
    "network": "Check your internet connection, or use a saved CSV file instead.",
    "stack": "This is an installation problem, not the symbol or the network: "
    "reinstall the HTTP library (pip install --force-reinstall curl_cffi yfinance), "
    "or use a saved CSV file instead.",
    "symbol": "Check the symbol (e.g. on finance.yahoo.com) and the start/end "
    "dates, or use a saved CSV file instead.",
    "unusable": "Retry later, or use a saved CSV file instead.",
    "error": "Retry later, update yfinance (pip install -U yfinance), or use a saved "
    "CSV file instead.",
    "install": "Install it (pip install yfinance), or use a saved CSV file instead.",
}

# Faults of the HTTP library itself (checked before the network hints, which
# also match "curl" and "ssl"): impersonation unavailable, a TLS or SSL
# library that cannot be loaded or initialised, an option libcurl lacks.
_STACK_HINTS = (
    "impersonat",
    "tls library",
    "ssl library",
    "ssl engine",
    "curl: (1)",  # unsupported protocol
    "curl: (2)",  # failed to initialise
    "curl: (4)",  # a feature not built in
    "curl: (48)",  # unknown option
    "curl: (53)",  # SSL crypto engine not found
    "curl: (59)",  # cannot use the specified cipher
    "curl: (66)",  # SSL engine initialisation failed
    "undefined symbol",
)

_NETWORK_HINTS = (
    "connection",
    "resolve",
    "name resolution",
    "name or service not known",
    "timed out",
    "timeout",
    "curl",
    "network",
    "unreachable",
    "failed to perform",
    "ssl",
    "proxy",
)


def _try_download(ticker, start, end, download):
    """Return (frame, None) on success or (None, DownloadFailure) on any failure."""
    frame, err, messages = call_download(ticker, start, end, download)
    if isinstance(err, DownloadFailure):
        return None, err
    if err is not None:
        return None, classify_failure(ticker, err, messages)
    if not isinstance(frame, pd.DataFrame) or frame.dropna(how="all").empty:
        return None, classify_failure(ticker, None, messages)
    return frame, None


def call_download(tickers, start, end, download=None):
    """One yfinance.download call: (frame, error, what yfinance logged).

    `error` is the exception raised (yfinance and its HTTP stack raise many
    kinds), a DownloadFailure when yfinance cannot be used at all, or None. yfinance
    logs most failures instead of raising; they are kept to explain.
    """
    if download is None:
        download, failure = _real_download()
        if failure is not None:
            return None, failure, []
    with _captured_yfinance_errors() as messages, quiet_library_warnings():
        try:
            frame = download(
                tickers,
                start=start,
                end=_day_after(end),  # yfinance's end is exclusive
                auto_adjust=True,
                progress=False,
                threads=False,
            )
        except Exception as err:  # classified by the caller
            return None, err, messages
    return frame, None, messages


def _real_download():
    """yfinance.download, or a child-process stand-in when this process's is broken.

    See forecaster.httpstack: a curl_cffi imported after TensorFlow (before
    forecaster could isolate it) cannot send any request in this process, so
    the download runs in a fresh interpreter instead.
    """
    try:
        with quiet_library_warnings():
            import yfinance
    except ImportError:
        return None, DownloadFailure("install", "yfinance is not installed")
    if http_stack_works():
        return yfinance.download, None
    return download_in_child, None


def _day_after(day: str | None) -> str | None:
    if day is None:
        return None
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def classify_failure(
    ticker: str, err: Exception | None, messages: list[str]
) -> DownloadFailure:
    said = [f"{_error_name(err)}: {err}"] if err is not None else []
    said += [m.strip() for m in messages if not _FAILED_COUNT.match(m.strip())]
    detail = " ".join(" ".join(said).split())  # one line
    shown = f" ({detail[:160]})" if detail else ""
    # Without the symbol itself, so that e.g. SSL or CURL is not taken for a hint.
    lowered = detail.lower().replace(ticker.lower(), "")
    squashed = re.sub(r"[\s_-]", "", lowered)
    if "ratelimit" in squashed or "toomanyrequests" in squashed:
        return DownloadFailure(
            "rate", f"Yahoo Finance is rate-limiting downloads of {ticker!r}{shown}"
        )
    if any(hint in lowered for hint in _STACK_HINTS):
        return DownloadFailure(
            "stack",
            f"The HTTP library that yfinance uses (curl_cffi) is broken in this "
            f"Python, so no request for {ticker!r} was sent{shown}",
        )
    if isinstance(err, (ConnectionError, TimeoutError)) or any(
        hint in lowered for hint in _NETWORK_HINTS
    ):
        return DownloadFailure(
            "network", f"Could not reach Yahoo Finance to download {ticker!r}{shown}"
        )
    if err is not None:
        return DownloadFailure(
            "error", f"yfinance failed to download {ticker!r}{shown}"
        )
    return DownloadFailure(
        "symbol",
        f"yfinance returned no prices for {ticker!r}{shown}: the symbol may be "
        "unknown or delisted",
    )


def _error_name(err: Exception) -> str:
    """The exception's class name; a child process's error keeps its original name."""
    return getattr(err, "original_name", None) or type(err).__name__


_FAILED_COUNT = re.compile(r"\d+ Failed downloads?:$")  # yfinance's summary line


@contextlib.contextmanager
def _captured_yfinance_errors():
    """Collect what yfinance logs at ERROR level, instead of printing it."""
    captured = _CapturedErrors()
    yf_log = logging.getLogger("yfinance")
    saved_propagate = yf_log.propagate
    yf_log.addHandler(captured)
    yf_log.propagate = False
    try:
        yield captured.messages
    finally:
        yf_log.removeHandler(captured)
        yf_log.propagate = saved_propagate


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
                f"The download for {ticker!r} holds other tickers: "
                f"{sorted(map(str, set(tickers)))}."
            )
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ForecasterError(
            f"The download for {ticker!r} has no dates: its index is a "
            f"{type(frame.index).__name__}."
        )
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    index = frame.index
    if index.tz is not None:
        index = index.tz_localize(None)
    frame.index = index.normalize().rename("Date")
    return frame.dropna(how="all")


def _use_download(frame, ticker: str, cache: Path, column: str | None):
    """Check a download, then save it as the cache: (Series, None) or (None, why).

    The download is checked in memory before anything is written, so one that
    cannot be used never replaces a good cache.
    """
    where = f"the download for {ticker!r}"
    try:
        text = flatten_download(frame, ticker).to_csv(date_format="%Y-%m-%d")
        series, notes = parse_price_text(text, where, column)
    except ForecasterError as err:
        reason = f"yfinance returned unusable prices for {ticker!r} ({err})"
        return None, DownloadFailure("unusable", reason)
    write_cache(text, cache)
    return Series.from_source(series, {}, notes), None


def write_cache(text: str, cache: Path) -> None:
    """Replace the cache atomically; failing to write it is only a warning."""
    try:
        files.write_file_atomically(
            cache, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="")
        )
    except OSError as err:
        log.warning(str(write_error(err, "download cache", cache)))


def use_cache(
    ticker, cache: Path, column, start, end, failure: DownloadFailure
) -> Series:
    """Fall back on the last successful download, or explain why there is none."""
    advice = _ADVICE[failure.kind]
    if not cache.exists():
        raise ForecasterError(
            f"{failure.reason}, and there is no cache at {str(cache)!r}. {advice}"
        )
    try:
        cached = read_price_csv(cache, column=column)
    except ForecasterError as err:
        raise ForecasterError(
            f"{failure.reason}, and the cache {str(cache)!r} cannot be used ({err}). "
            f"{advice}"
        ) from None
    index = cached.values.index
    wanted = index >= pd.Timestamp(start)
    if end:
        wanted &= index <= pd.Timestamp(end)
    values = cached.values[wanted]
    if len(values) < 2:
        raise ForecasterError(
            f"{failure.reason}, and the cache {str(cache)!r} holds no prices between "
            f"{start} and {end or 'today'} (it covers {cached.first_date} to "
            f"{cached.last_date}). {advice}"
        )
    note = (
        f"{failure.reason}; using cached prices from {str(cache)!r} "
        f"({values.index[0]:%Y-%m-%d} to {values.index[-1]:%Y-%m-%d})"
    )
    log.warning(note)
    source = ticker_source(ticker, cached, start, end, cache, from_cache=True)
    return Series.from_source(values, source, cached.notes + [note])
