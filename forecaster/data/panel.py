"""Many daily series at once (a panel): the type, its shared cut-off date, its loaders.

A `Panel` is an ordered mapping name -> `PanelSeries`. One series is a panel
of one, so there is one code path. Loaders name every series: by file stem
(`read_panel_csvs`, `read_panel_dir`), by the ticker column of a long-format
file (`read_long_csv`) or by symbol (`download_panel`); `load_panel` picks one.

Series names become file names in output folders (plots, forecasts), so a
name must be safe (`check_series_name`): 1 to 64 characters (at most 200
bytes in UTF-8), each a letter or digit (any script) or one of ``. _ - ^ =``,
spaces only inside, not starting with "." (so never "." or ".."). Path
separators, control characters and other punctuation are refused. An unsafe
name is refused, never rewritten to another: a name means what the user
wrote, and two rewritten names could collide. With `skip_bad=True` that series
is left out with a warning instead. `series_file` is the one way to turn a
name into a path, and checks that the path stays inside its folder.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.data.csv import (
    _clean_series,
    _decode,
    _find_date_column,
    _find_price_column,
    _name_dates,
    _parse_dates,
    _price_value,
    _read_bytes,
    _read_table,
    _short,
    _show,
)
from forecaster.data.series import SAMPLE_CSV, Prices
from forecaster.data.yahoo import (
    _check_range,
    _check_ticker,
    _classify,
    _Failure,
    _ticker_source,
    _use_cache,
    _write_cache,
    cache_path,
    call_download,
    flatten_download,
)
from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")

MAX_NAME_LENGTH = 64  # longest series name; it becomes part of file names
MAX_NAME_BYTES = 200  # in UTF-8, leaving room for a suffix in a 255-byte file name
NAME_RULE = (
    "use 1 to 64 letters, digits or . _ - ^ = (spaces only inside), not starting "
    "with '.'"
)
NAME_PUNCTUATION = frozenset("._-^= ")
TICKER_COLUMNS = ("ticker", "symbol", "name")  # long format, case-insensitive
# Columns kept as the OHLCV frame (lower-cased header -> canonical name).
OHLCV_COLUMNS = {
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "adj close": "Adj Close",
    "adj_close": "Adj Close",
    "adjclose": "Adj Close",
    "volume": "Volume",
}


@dataclass(eq=False)  # compared by identity: pandas objects have no single truth
class PanelSeries:
    """One named series of a panel.

    `values`: the target (adjusted close, else close, else `column`), float64
    on a sorted, unique DatetimeIndex, finite and positive, as in `Prices`.
    `ohlcv`: float64 frame on exactly `values.index` with those of Open, High,
    Low, Close, Adj Close and Volume the source had (cells may be NaN where a
    row had the target but not that column), or None when it had none.
    `columns`: the source's own column names, for messages. `where`: how
    messages name the source, e.g. "'data/AAPL.csv'".
    """

    name: str
    values: pd.Series
    ohlcv: pd.DataFrame | None
    source: dict
    columns: tuple[str, ...] = ()
    where: str = ""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_prices(cls, prices: Prices, name: str) -> PanelSeries:
        """A series without OHLCV from the single-series loaders' `Prices`."""
        where = repr(prices.source.get("path") or prices.source.get("ticker") or name)
        columns = (str(prices.values.name),)
        return cls(
            name, prices.values, None, prices.source, columns, where, list(prices.notes)
        )

    def __len__(self) -> int:
        return len(self.values)


class Panel(Mapping):
    """An ordered, immutable mapping name -> PanelSeries; names are safe and unique.

    Names are compared ignoring case (AAPL and aapl would share a file on
    some systems). `notes` holds the loader's warnings (skipped series ...).
    """

    def __init__(self, series: Iterable[PanelSeries], notes: Iterable[str] = ()):
        self._series: dict[str, PanelSeries] = {}
        seen: dict[str, str] = {}
        for item in series:
            check_series_name(item.name, item.where or "the panel")
            key = item.name.casefold()
            if key in seen:
                raise ForecasterError(
                    f"The series name {item.name!r} is given twice (as "
                    f"{seen[key]!r} and {item.name!r}; names ignore case). Give "
                    "each series once."
                )
            seen[key] = item.name
            self._series[item.name] = item
        if not self._series:
            raise ForecasterError("A panel needs at least one series. Received: none.")
        self.notes = list(notes)

    def __getitem__(self, name: str) -> PanelSeries:
        return self._series[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def __repr__(self) -> str:
        shown = ", ".join(f"{n} ({len(s)} days)" for n, s in list(self.items())[:5])
        more = f", and {len(self) - 5} more" if len(self) > 5 else ""
        return f"Panel({shown}{more})"

    @property
    def names(self) -> list[str]:
        return list(self._series)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The sorted union of every series' dates."""
        union = pd.DatetimeIndex([], name="Date")
        for item in self.values():
            union = union.union(item.values.index)
        return union

    def select(self, names: Iterable[str]) -> Panel:
        """The named series, in the order given; an unknown name lists the known."""
        chosen = []
        for name in names:
            if name not in self._series:
                raise ForecasterError(
                    f"No series named {name!r} in this panel: it holds "
                    f"{_show(self.names)}. Choose one of those."
                )
            chosen.append(self._series[name])
        return Panel(chosen, self.notes)

    def without(self, names: Iterable[str]) -> Panel:
        """The panel less the named series (unknown names are ignored)."""
        dropped = set(names)
        return Panel([s for n, s in self.items() if n not in dropped], self.notes)

    @classmethod
    def of(cls, prices: Prices, name: str | None = None) -> Panel:
        """A panel of one from `Prices` (named `name`, else its file stem or symbol)."""
        source = prices.source
        name = (
            name
            or source.get("ticker")
            or source.get("name")
            or Path(source.get("path", "prices")).stem
        )
        return cls([PanelSeries.from_prices(prices, name)])


# ------------------------------------------------------------- names and files


def check_series_name(name, origin: str) -> str:
    """`name` if it is a safe file name (see the module docstring), else an error.

    origin: where the name came from, for the message (e.g. "column 'Name'
    of 'all.csv'").
    """
    text = name if isinstance(name, str) else str(name)
    problem = _name_problem(text)
    if problem:
        raise ForecasterError(
            f"Series name {_short(text)} (from {origin}) is not a safe file name: "
            f"{problem}. Rename it: {NAME_RULE}."
        )
    return text


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it has {len(name)} characters, more than {MAX_NAME_LENGTH}"
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        return f"it takes more than {MAX_NAME_BYTES} bytes in UTF-8"
    bad = [c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)]
    if bad:
        return f"it contains {_short(''.join(dict.fromkeys(bad)))}"
    if name != name.strip():
        return "it starts or ends with a space"
    if name.startswith("."):
        return "it starts with '.'"
    return None


def series_file(directory: str | os.PathLike, name: str, suffix: str) -> Path:
    """The path `directory/name+suffix`, refused unless it lies inside `directory`.

    The one way output code should turn a series name into a file name.
    """
    check_series_name(name, "an output file name")
    folder = Path(directory).resolve()
    path = (folder / f"{name}{suffix}").resolve()
    if path.parent != folder:
        raise ForecasterError(
            f"Series name {name!r} with suffix {suffix!r} would write outside "
            f"{str(directory)!r}. Use a plain suffix such as '.png'."
        )
    return path


def _check_unique(names: list[str], labels: list[str], what: str) -> None:
    """Refuse two entries naming the same series (ignoring case)."""
    first: dict[str, str] = {}
    for name, label in zip(names, labels, strict=True):
        key = name.casefold()
        if key in first:
            raise ForecasterError(
                f"The same series {name!r} is given twice: {first[key]!r} and "
                f"{label!r} ({what}, ignoring case). Give each series once."
            )
        first[key] = label


# ------------------------------------------------------- the shared cut-off


def cutoff_date(panel: Panel, train_fraction: float = 0.75) -> pd.Timestamp:
    """The first test date, shared by every series of the panel.

    Rule: take the sorted union of all the series' dates (n of them); the
    oldest `int(n * train_fraction)` dates are training days, and the cut-off
    is the next date. Every series trains on its days before the cut-off and
    is tested from it on, so no series trains on a day another is tested on.
    For a panel of one this is today's single-series split.
    """
    if not 0 < train_fraction < 1:
        raise ForecasterError(
            "train_fraction must be between 0 and 1 (exclusive). "
            f"Received: train_fraction={train_fraction}"
        )
    dates = panel.dates
    n_train = int(len(dates) * train_fraction)
    if n_train < 1 or n_train >= len(dates):
        raise ForecasterError(
            f"The panel has {len(dates)} date(s), too few to cut at "
            f"train_fraction={train_fraction}. Use longer series."
        )
    return dates[n_train]


def train_rows(panel: Panel, cutoff) -> dict[str, int]:
    """How many rows of each series fall before `cutoff` (its training rows).

    A series' rows `[:train_rows[name]]` train; the rest are its test rows.
    """
    cutoff = pd.Timestamp(cutoff)
    return {
        name: int(item.values.index.searchsorted(cutoff, side="left"))
        for name, item in panel.items()
    }


def drop_short(
    panel: Panel, window: int, horizon: int, cutoff, min_windows: int | None = None
) -> tuple[Panel, list[str]]:
    """Leave out series too short to train on before `cutoff`, or to test after it.

    A series needs `window + horizon - 1 + min_windows` rows before the
    cut-off (min_windows training windows, default the single-series
    minimum) and `horizon` rows from it on. Short ones are named with their
    row counts in the notes and a warning; if none is left, an error.
    """
    if min_windows is None:
        from forecaster.prep.windows import MIN_FIT_WINDOWS

        min_windows = MIN_FIT_WINDOWS
    before = train_rows(panel, cutoff)
    needed = window + horizon - 1 + min_windows
    day = f"{pd.Timestamp(cutoff):%Y-%m-%d}"
    reasons = {}
    for name, item in panel.items():
        after = len(item) - before[name]
        if before[name] < needed:
            reasons[name] = (
                f"series {name!r} has {before[name]} row(s) before the cut-off "
                f"{day}; window={window} and horizon={horizon} need {needed}"
            )
        elif after < horizon:
            reasons[name] = (
                f"series {name!r} has {after} row(s) from the cut-off {day} on; "
                f"horizon={horizon} needs {horizon}"
            )
    if len(reasons) == len(panel):
        raise ForecasterError(
            f"No series is long enough: {'; '.join(reasons.values())}. Use longer "
            "series or a smaller window."
        )
    notes = [f"skipped {reason}" for reason in reasons.values()]
    for note in notes:
        log.warning(note)
    kept = panel.without(reasons)
    kept.notes = panel.notes + notes
    return kept, notes


# -------------------------------------------------------------- parsing tables


def _series_from_table(
    table: pd.DataFrame,
    name: str,
    where: str,
    column: str | None,
    source: dict,
    columns: tuple[str, ...] | None = None,
) -> PanelSeries:
    """One parsed table (cells as stripped strings) to a clean PanelSeries."""
    date_col = _find_date_column(table, where)
    target_col = _find_price_column(table, column, date_col, where)
    dates = _parse_dates(table[date_col], where, date_col)
    target = _parse_numbers(table[target_col], dates, where, target_col, "Price column")
    ohlcv = _ohlcv_numbers(table, date_col, dates, where)
    _refuse_conflicts(target, ohlcv, dates, where)
    series, notes = _clean_series(
        pd.Series(target, index=dates, name=target_col), where
    )
    if ohlcv is not None:
        ohlcv = ohlcv.sort_index(kind="stable")
        ohlcv = ohlcv[~ohlcv.index.duplicated(keep="first")].reindex(series.index)
    return PanelSeries(
        name=name,
        values=series,
        ohlcv=ohlcv,
        source={**source, "column": target_col},
        columns=tuple(table.columns) if columns is None else columns,
        where=where,
        notes=notes,
    )


def _parse_numbers(
    raw: pd.Series, dates, where: str, name: str, kind: str = "Column"
) -> np.ndarray:
    """Text cells to float64 (gaps NaN), as `_parse_prices` reads them, but fast.

    Plain numbers are converted at once; only the other cells ("$1,234.50",
    "N/A") go through the cell-by-cell reader.
    """
    text = raw.astype(str)
    plain = text.str.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
    values = np.full(len(text), np.nan, dtype=np.float64)
    plain_mask = plain.to_numpy(dtype=bool)
    values[plain_mask] = text[plain_mask].astype(np.float64).to_numpy()
    for i in np.flatnonzero(~plain_mask):
        value = _price_value(text.iloc[i])
        if value is None:
            raise ForecasterError(
                f"{kind} {name!r} in {where} has a value that is not a number: "
                f"{_short(raw.iloc[i])} on {dates[i]:%Y-%m-%d}. Fix or blank that "
                "cell."
            )
        values[i] = value
    return values


def _ohlcv_numbers(table: pd.DataFrame, date_col: str, dates, where: str):
    """The OHLCV columns the table has, as float64 on `dates` (unsorted), or None."""
    found: dict[str, np.ndarray] = {}
    for col in table.columns:
        canonical = OHLCV_COLUMNS.get(col.strip().lower())
        if col == date_col or canonical is None or canonical in found:
            continue
        found[canonical] = _parse_numbers(table[col], dates, where, col)
    if not found:
        return None
    order = [c for c in dict.fromkeys(OHLCV_COLUMNS.values()) if c in found]
    return pd.DataFrame({c: found[c] for c in order}, index=dates)


def _refuse_conflicts(target, ohlcv, dates, where: str) -> None:
    """Refuse dates given twice with different numbers (target or OHLCV)."""
    columns = {"target": target}
    if ohlcv is not None:
        columns.update({name: ohlcv[name].to_numpy() for name in ohlcv.columns})
    frame = pd.DataFrame(columns, index=dates)
    frame = frame[frame["target"].notna()]
    repeated = frame.index.duplicated(keep=False)
    if not repeated.any():
        return
    counts = frame[repeated].groupby(level=0).nunique(dropna=False)
    conflicting = counts.index[(counts > 1).any(axis=1)]
    if len(conflicting):
        raise ForecasterError(
            f"Conflicting rows for the same date in {where}: "
            f"{_name_dates(pd.DatetimeIndex(conflicting))}. Keep one row per date."
        )


def _read_csv_table(path: Path) -> tuple[pd.DataFrame, str]:
    where = repr(str(path))
    return _read_table(_decode(_read_bytes(path), where), where), where


def read_series_csv(
    path: str | os.PathLike, name: str | None = None, column: str | None = None
) -> PanelSeries:
    """One CSV (one series) with its OHLCV columns, named `name` or the file stem."""
    path = Path(path)
    name = check_series_name(name or path.stem, f"the file name {str(path)!r}")
    table, where = _read_csv_table(path)
    return _series_from_table(
        table, name, where, column, {"kind": "csv", "path": str(path)}
    )


# ------------------------------------------------------------------- loaders


def read_panel_csvs(
    paths: Iterable[str | os.PathLike], column: str | None = None, skip_bad=False
) -> Panel:
    """Several CSVs, one series each, named by file stem, in the order given.

    A file that cannot be used raises an error naming it; with
    `skip_bad=True` it is left out instead, and one warning lists each
    skipped series and why. Two files with the same stem are refused.
    """
    paths = [Path(p) for p in _as_list(paths, "paths")]
    if not paths:
        raise ForecasterError("Give at least one CSV file. Received: paths=[]")
    _check_unique([p.stem for p in paths], [str(p) for p in paths], "file stems")
    loaded, skipped = [], {}
    for path in paths:
        try:
            loaded.append(read_series_csv(path, column=column))
        except ForecasterError as err:
            if not skip_bad:
                raise
            skipped[path.stem] = str(err)
    return _panel_or_error(loaded, skipped, f"{len(paths)} file(s)")


def read_panel_dir(
    folder: str | os.PathLike, column: str | None = None, skip_bad=False
) -> Panel:
    """Every *.csv in `folder` (not its subfolders), sorted by name, one series each."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ForecasterError(
            f"CSV folder {str(folder)!r} {what}. Give a folder holding .csv files."
        )
    paths = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()),
        key=lambda p: p.name,
    )
    if not paths:
        found = sorted(p.name for p in folder.iterdir())
        raise ForecasterError(
            f"No .csv files in the folder {str(folder)!r}: found {_show(found)}. "
            "Give a folder with one CSV per series."
        )
    return read_panel_csvs(paths, column=column, skip_bad=skip_bad)


def read_long_csv(
    path: str | os.PathLike, column: str | None = None, skip_bad=False
) -> Panel:
    """One long-format CSV (date, ticker, open, high, low, close, volume ...).

    The ticker column is `ticker`, `symbol` or `Name` (any case); each of its
    values names one series (sorted by name). Names must be safe file names
    (see the module docstring); an unsafe name, like a bad series, is an
    error, or with `skip_bad=True` left out with a warning.
    """
    path = Path(path)
    table, where = _read_csv_table(path)
    ticker_col = _find_ticker_column(table, where)
    tickers = table[ticker_col]
    blank = tickers == ""
    if blank.any():
        raise ForecasterError(
            f"{int(blank.sum())} row(s) of {where} have no ticker in column "
            f"{ticker_col!r}, e.g. a row with {_short(table[blank].iloc[0].tolist())}."
            " Fill or remove those rows."
        )
    names = sorted(set(tickers))
    origin = f"column {ticker_col!r} of {where}"
    _check_unique(names, names, f"values of {origin}")
    columns = tuple(table.columns)
    loaded, skipped = [], {}
    for name, rows in table.groupby(ticker_col, sort=True):
        try:
            check_series_name(name, origin)
            rows = rows.drop(columns=ticker_col).reset_index(drop=True)
            loaded.append(
                _series_from_table(
                    rows,
                    name,
                    f"{where} (ticker {name!r})",
                    column,
                    {"kind": "long-csv", "path": str(path), "ticker": name},
                    columns,
                )
            )
        except ForecasterError as err:
            if not skip_bad:
                raise
            skipped[name] = str(err)
    return _panel_or_error(loaded, skipped, f"{len(names)} ticker(s) in {where}")


def _find_ticker_column(table: pd.DataFrame, where: str) -> str:
    by_lower = {name.strip().lower(): name for name in table.columns}
    for candidate in TICKER_COLUMNS:
        if candidate in by_lower:
            return by_lower[candidate]
    raise ForecasterError(
        f"No ticker column in the long-format file {where}: found columns "
        f"{_show(table.columns)}. Name it 'ticker', 'symbol' or 'Name'."
    )


def is_long_format(path: str | os.PathLike) -> bool:
    """Whether the CSV's header names a ticker column (ticker, symbol or Name)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as file:
            header = next(csv.reader(io.StringIO(file.readline())), [])
    except OSError:
        return False  # the reader then explains what is wrong with the file
    return any(cell.strip().lower() in TICKER_COLUMNS for cell in header)


def _as_list(values, name: str) -> list:
    if isinstance(values, (str, bytes, os.PathLike)):
        return [values]
    try:
        return list(values)
    except TypeError:
        raise ForecasterError(
            f"{name} must be a list. Received: {name}={_short(values)}"
        ) from None


def _panel_or_error(loaded: list, skipped: dict[str, str], what: str) -> Panel:
    """The panel of what loaded, warning once about what was skipped."""
    if not loaded:
        reasons = "; ".join(f"{name!r}: {why}" for name, why in skipped.items())
        if len(reasons) > 600:
            reasons = reasons[:597] + "..."
        raise ForecasterError(f"No usable series among {what}: {reasons}")
    notes = []
    if skipped:
        listed = "; ".join(f"{name!r} ({why})" for name, why in skipped.items())
        notes.append(f"skipped {len(skipped)} series that could not be used: {listed}")
        log.warning(notes[0])
    return Panel(loaded, notes)


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
    start, end = _check_range(start, end)
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
    return _panel_or_error(loaded, skipped, f"{len(symbols)} symbol(s)")


def _check_symbols(tickers) -> list[str]:
    if isinstance(tickers, str):
        tickers = tickers.replace(",", " ").split()
    symbols = [_check_ticker(t) for t in _as_list(tickers, "tickers")]
    if not symbols:
        raise ForecasterError("Give at least one symbol. Received: tickers=[]")
    for symbol in symbols:
        check_series_name(symbol, "tickers")
    _check_unique(symbols, symbols, "symbols")
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
        item.source = _ticker_source(symbol, item, start, end, cache)
        return item
    prices = _use_cache(symbol, cache, column, start, end, failure)
    cached = read_series_csv(cache, name=symbol, column=column)
    ohlcv = None if cached.ohlcv is None else cached.ohlcv.reindex(prices.values.index)
    where = f"the cache {str(cache)!r} of {symbol!r}"
    return PanelSeries(
        symbol, prices.values, ohlcv, prices.source, cached.columns, where, prices.notes
    )


def _from_download(symbol, frame, error, messages, cache, column):
    """(series, None) from the symbol's columns of the download, or (None, why)."""
    if isinstance(error, _Failure):  # yfinance could not even be called
        return None, error
    flat = _symbol_frame(frame, symbol)
    if flat is None or flat.empty:
        # Of what yfinance logged, only the lines naming this symbol explain it.
        if frame is not None:
            messages = [m for m in messages if f"'{symbol}'" in m]
        return None, _classify(symbol, error, messages)
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
        table = _read_table(text, where)
        item = _series_from_table(table, symbol, where, column, {})
    except ForecasterError as err:
        reason = f"yfinance returned unusable prices for {symbol!r} ({err})"
        return None, _Failure("unusable", reason)
    _write_cache(text, cache)
    return item, None


def load_panel(
    csv=None,
    csv_dir=None,
    long_csv=None,
    tickers=None,
    *,
    column: str | None = None,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str | os.PathLike = "data/cache",
    skip_bad: bool = False,
    download=None,
) -> Panel:
    """A panel from exactly one source: CSV paths, a folder, a long file or symbols.

    `csv` is one path or several; a single CSV whose header has a ticker
    column (ticker, symbol or Name) is read as a long-format file. With no
    source at all, the shipped sample (one series) is used, as today.
    """
    given = {
        name: value
        for name, value in (
            ("csv", csv),
            ("csv_dir", csv_dir),
            ("long_csv", long_csv),
            ("tickers", tickers),
        )
        if value is not None and not (isinstance(value, (list, tuple)) and not value)
    }
    if len(given) > 1:
        shown = ", ".join(f"{name}={_short(value)}" for name, value in given.items())
        raise ForecasterError(
            "Give one source of prices (csv, csv_dir, long_csv or tickers), not "
            "several. "
            f"Received: {shown}"
        )
    if tickers:
        return download_panel(
            tickers, start, end, cache_dir, column, download, skip_bad
        )
    if csv_dir is not None:
        return read_panel_dir(csv_dir, column=column, skip_bad=skip_bad)
    if long_csv is not None:
        return read_long_csv(long_csv, column=column, skip_bad=skip_bad)
    paths = _as_list(csv or SAMPLE_CSV, "csv")
    if len(paths) == 1 and is_long_format(paths[0]):
        return read_long_csv(paths[0], column=column, skip_bad=skip_bad)
    return read_panel_csvs(paths, column=column, skip_bad=skip_bad)


def panel_from_pandas(data, column: str | None = None) -> Panel:
    """A panel from pandas objects a user holds: {name: Series or DataFrame}.

    A single Series or DataFrame (or `Prices`) is a panel of one, named by
    where it came from (its ticker or file stem) when it says, else "prices".
    A long DataFrame (a ticker, symbol or name column) holds one series per
    ticker.
    Targets go through `prices_from_pandas` (the CSV reader's checks); a
    DataFrame's Open/High/Low/Close/Adj Close/Volume columns become its OHLCV.
    """
    from forecaster.data.frames import _with_date_index, prices_from_pandas

    if isinstance(data, Panel):
        return data
    if isinstance(data, Prices):
        return Panel.of(data)
    if isinstance(data, pd.DataFrame) and long_frame_column(data):
        data = split_long_frame(data)
    named = data if isinstance(data, Mapping) else {None: data}
    series = []
    for name, value in named.items():
        prices = prices_from_pandas(value, column, None if name is None else str(name))
        if name is None:
            source = prices.source
            name = source.get("ticker") or Path(source.get("path", "prices")).stem
        item = PanelSeries.from_prices(prices, str(name))
        item.where = f"the prices passed in ({str(name)!r})"
        if isinstance(value, pd.DataFrame):
            frame = _with_date_index(value)
            item.columns = tuple(map(str, value.columns))
            item.ohlcv = _frame_ohlcv(frame, item.values.index, item.where)
        series.append(item)
    return Panel(series)


def holds_many(data) -> bool:
    """Whether `data` is given as many series: a Panel, a dict of several, or a
    long DataFrame with a ticker column (even of one ticker)."""
    if isinstance(data, Panel):
        return True
    if isinstance(data, Mapping):
        return len(data) > 1
    return isinstance(data, pd.DataFrame) and bool(long_frame_column(data))


def long_frame_column(frame: pd.DataFrame) -> str | None:
    """The ticker column of a long DataFrame (ticker, symbol or name), or None."""
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    return next((by_lower[n] for n in TICKER_COLUMNS if n in by_lower), None)


def split_long_frame(frame: pd.DataFrame) -> dict:
    """A long frame (date, ticker, prices...) as {ticker: its rows}."""
    column = long_frame_column(frame)
    return {
        str(name): rows.drop(columns=[column])
        for name, rows in frame.groupby(column, sort=False)
    }


def _frame_ohlcv(frame: pd.DataFrame, index, where: str) -> pd.DataFrame | None:
    """A DataFrame's OHLCV columns as float64 on `index` (first row per date)."""
    chosen = {}
    for col in frame.columns:
        canonical = OHLCV_COLUMNS.get(str(col).strip().lower())
        if canonical is not None and canonical not in chosen:
            values = pd.to_numeric(frame[col], errors="coerce")
            text = frame[col][values.isna() & frame[col].notna()]
            if len(text):
                raise ForecasterError(
                    f"Column {str(col)!r} of {where} must hold numbers: "
                    f"{_short(text.iloc[0])} on {text.index[0]:%Y-%m-%d}. Convert or "
                    "drop that value."
                )
            chosen[canonical] = values.astype(np.float64)
    if not chosen:
        return None
    order = [c for c in dict.fromkeys(OHLCV_COLUMNS.values()) if c in chosen]
    ohlcv = pd.DataFrame({c: chosen[c] for c in order}).sort_index(kind="stable")
    return ohlcv[~ohlcv.index.duplicated(keep="first")].reindex(index)
