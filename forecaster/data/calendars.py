"""Trading calendars: the sessions an exchange is open, from exchange_calendars.

Forecast dates are the calendar's sessions (weekends and holidays skipped,
early closes kept), and a training history is checked against them.
exchange_calendars is imported only inside these functions: it adds about
0.05 s to a process that already has pandas, and none to one that never
forecasts.
"""

from __future__ import annotations

import warnings

import pandas as pd

from forecaster.errors import ForecasterError

DEFAULT_CALENDAR = "XNYS"  # New York Stock Exchange
EXAMPLES = ("XNYS", "XNAS", "XLON", "XTKS", "XHKG", "XFRA", "XTSE", "XASX")
LIBRARY_URL = "https://github.com/gerrymanoim/exchange_calendars"
SHOWN = 3  # example dates shown in a warning


def validate_calendar(code: str) -> str:
    """The calendar code in the library's spelling; an error lists valid ones.

    Codes are matched case-insensitively ("xlon" -> "XLON").
    """
    import exchange_calendars

    names = exchange_calendars.get_calendar_names(include_aliases=True)
    by_upper = {name.upper(): name for name in names}
    found = by_upper.get(str(code).strip().upper())
    if found is None:
        raise ForecasterError(
            f"Unknown calendar {code!r}: use an exchange code such as "
            f"{', '.join(EXAMPLES)}; the {len(names)} known codes are listed by "
            '`python -c "import exchange_calendars as x; '
            f'print(x.get_calendar_names())"` and at {LIBRARY_URL}.'
        )
    return found


def sessions_after(last: pd.Timestamp, days: int, code: str) -> pd.DatetimeIndex:
    """The next `days` sessions of calendar `code` after the day `last`.

    The calendar is built from `last` to far enough ahead, so a forecast past
    the library's default end (about a year from today) extends it; a calendar
    whose holidays are recorded only to some year says so in the error.
    """
    if days < 1:
        raise ForecasterError(f"days must be at least 1. Received: days={days}")
    code = validate_calendar(code)
    last = pd.Timestamp(last).normalize()
    # Every exchange opens at least 2 days in 7 outside holidays; a month spare.
    _, end = _covered(code, last, last + pd.Timedelta(days=days * 7 // 2 + 31))
    calendar = _calendar(
        code,
        last,
        max(end, last),
        why=f"{days} sessions after {last:%Y-%m-%d}",
        advice="forecast fewer days, upgrade exchange_calendars, or choose another "
        "--calendar",
    )
    sessions = calendar.sessions[calendar.sessions > last]
    if len(sessions) < days:
        raise ForecasterError(
            f"calendar {code} knows sessions only up to {end:%Y-%m-%d} "
            f"(exchange_calendars records its holidays that far), {len(sessions)} "
            f"after {last:%Y-%m-%d}, fewer than days={days}: forecast fewer days, "
            "upgrade exchange_calendars, or choose another --calendar."
        )
    return pd.DatetimeIndex(sessions[:days])


def check_history(dates: pd.DatetimeIndex, code: str) -> str | None:
    """A one-line warning when `dates` disagree with calendar `code`, else None.

    Counts the days in `dates` that the calendar says were closed and the
    sessions between the first and last date that `dates` lacks, with a few
    examples of each. Only the span the calendar covers is compared.
    """
    dates = pd.DatetimeIndex(dates).normalize()
    if len(dates) == 0:
        return None
    code = validate_calendar(code)
    start, end = _covered(code, dates[0], dates[-1])
    if start > end:
        return None
    calendar = _calendar(
        code,
        start,
        end,
        why="the history's sessions",
        advice="choose another --calendar",
    )
    inside = dates[(dates >= start) & (dates <= end)]
    closed = inside.difference(calendar.sessions)
    missing = calendar.sessions.difference(inside)
    if not len(closed) and not len(missing):
        return None
    parts = []
    if len(closed):
        parts.append(
            f"{len(closed)} days that {code} says were closed ({_few(closed)})"
        )
    if len(missing):
        parts.append(
            f"misses {len(missing)} sessions it says were open ({_few(missing)})"
        )
    return (
        f"the history has {' and '.join(parts)}: a series from another market "
        "should use its own calendar (--calendar, e.g. XLON for London)"
    )


def _few(dates: pd.DatetimeIndex) -> str:
    shown = ", ".join(dates[:SHOWN].strftime("%Y-%m-%d"))
    return f"e.g. {shown}" + (", ..." if len(dates) > SHOWN else "")


def _covered(code: str, first, last) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The part of [first, last] that calendar `code` can be built for."""

    import exchange_calendars

    code = exchange_calendars.resolve_alias(code)
    # The class alone gives the bounds; building the default calendar (20
    # years of sessions) to ask it would cost ~0.3 s on every forecast.
    dispatcher = exchange_calendars.calendar_utils.global_calendar_dispatcher
    kind = getattr(dispatcher, "_calendar_factories", {}).get(code)
    if kind is None:
        kind = type(_get(code))
    low = kind.bound_min() or first
    high = kind.bound_max() or last
    return max(pd.Timestamp(first), low), min(pd.Timestamp(last), high)


def _calendar(code: str, start, end, why: str, advice: str):

    code = validate_calendar(code)
    try:
        return _get(code, start=start, end=end)
    except ValueError as err:
        detail = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise ForecasterError(
            f"calendar {code} cannot give {why} ({detail}): {advice}."
        ) from None


def _get(code: str, **bounds):
    import exchange_calendars

    with warnings.catch_warnings():
        # exchange_calendars 4.x uses Series.values, deprecated in pandas 3.
        warnings.simplefilter("ignore", DeprecationWarning)
        return exchange_calendars.get_calendar(code, **bounds)
