"""Daily prices as data: a series, and a panel of named series (one is a panel of one).

A `Series` is what every loader returns; a `Panel` is an ordered mapping
name -> `Series`, the form every model is fitted on (one series is a panel
of one).

Series names become file names in output folders (plots, forecasts), so a
name must be safe (`check_series_name`): 1 to 64 characters (at most 200
bytes in UTF-8), each a letter or digit (any script) or one of ``. _ - ^ =``,
spaces only inside, not starting with "." (so never "." or ".."). Path
separators, control characters and other punctuation are refused. An unsafe
name is refused, never rewritten to another: a name means what the user
wrote, and two rewritten names could collide. `series_file` is the one way
to turn a name into a path, and checks that the path stays inside its folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")

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
    # Quotes sites' exports name it so (their volumes read "3.31M", "850.2K").
    "vol.": "Volume",
    "vol": "Volume",
    "shares": "Volume",
}


@dataclass(eq=False)  # compared by identity: pandas objects have no single truth
class Series:
    """One named daily price series: what every loader returns, alone or in a Panel.

    `values`: the target (adjusted close, else close, else `column`), float64
    on a sorted, unique DatetimeIndex, all finite and positive.
    `source`: what a bundle records to find the data again.
    `ohlcv`: float64 frame on exactly `values.index` with those of Open, High,
    Low, Close, Adj Close and Volume the source had (cells may be NaN where a
    row had the target but not that column), or None when it had none.
    `columns`: the source's own column names, for messages. `where`: how
    messages name the source, e.g. "'data/AAPL.csv'". `notes`: the loader's
    warnings (rows dropped ...).
    """

    name: str
    values: pd.Series
    ohlcv: pd.DataFrame | None = None
    source: dict = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    where: str = ""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_source(cls, values: pd.Series, source: dict, notes=()) -> Series:
        """A series without OHLCV, named by its source: ticker, name or file stem."""
        name = str(
            source.get("ticker")
            or source.get("name")
            or Path(source.get("path", "prices")).stem
        )
        where = repr(source.get("path") or source.get("ticker") or name)
        columns = (str(values.name),)
        return cls(name, values, None, source, columns, where, list(notes))

    @property
    def first_date(self) -> str:
        return self.values.index[0].strftime("%Y-%m-%d")

    @property
    def last_date(self) -> str:
        return self.values.index[-1].strftime("%Y-%m-%d")

    def __len__(self) -> int:
        return len(self.values)


class Panel(Mapping):
    """An ordered, immutable mapping name -> Series; names are unique.

    Names are compared ignoring case (AAPL and aapl would share a file on
    some systems), and must be safe file names (`check_series_name`) unless
    `check_names` is False: one series given alone keeps the name of its
    source, whatever it is, since no file is named after it. `notes` holds
    the loader's warnings (skipped series ...).
    """

    def __init__(
        self,
        series: Iterable[Series],
        notes: Iterable[str] = (),
        check_names: bool = True,
    ):
        self._series: dict[str, Series] = {}
        seen: dict[str, str] = {}
        for item in series:
            if check_names:
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

    def __getitem__(self, name: str) -> Series:
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
                    f"{show_names(self.names)}. Choose one of those."
                )
            chosen.append(self._series[name])
        return Panel(chosen, self.notes)

    def without(self, names: Iterable[str]) -> Panel:
        """The panel less the named series (unknown names are ignored)."""
        dropped = set(names)
        return Panel([s for n, s in self.items() if n not in dropped], self.notes)


def check_series_name(name, origin: str) -> str:
    """`name` if it is a safe file name (see the module docstring), else an error.

    origin: where the name came from, for the message (e.g. "column 'Name'
    of 'all.csv'").
    """
    text = name if isinstance(name, str) else str(name)
    problem = name_problem(text)
    if problem:
        raise ForecasterError(
            f"Series name {short_repr(text)} (from {origin}) is not a safe file name: "
            f"{problem}. Rename it: {NAME_RULE}."
        )
    return text


def name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it has {len(name)} characters, more than {MAX_NAME_LENGTH}"
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        return f"it takes more than {MAX_NAME_BYTES} bytes in UTF-8"
    bad = [c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)]
    if bad:
        return f"it contains {short_repr(''.join(dict.fromkeys(bad)))}"
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


def check_unique(names: list[str], labels: list[str], what: str) -> None:
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


def panel_or_error(loaded: list, skipped: dict[str, str], what: str) -> Panel:
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


def name_dates(index: pd.DatetimeIndex) -> str:
    shown = ", ".join(d.strftime("%Y-%m-%d") for d in index[:MAX_NAMED])
    more = len(index) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def short_repr(value, limit: int = 60) -> str:
    """repr() cut to `limit` characters, so a huge cell keeps a message one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_names(names, limit: int = 12) -> str:
    """Column names as a list literal, shortened for messages."""
    names = list(names)
    shown = ", ".join(short_repr(str(name), 40) for name in names[:limit])
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{shown}{more}]"
