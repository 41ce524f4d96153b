"""Input features computed per series from its target and OHLCV columns.

Each feature on day t uses values from day t and earlier only:

- `close`: the target itself (adjusted close, or `column`); the model's
  representation (level, delta, log-delta) turns it into inputs, as today.
  Defined on every day.
- `range`: log(High / Low) of the day, the range-based volatility signal.
  Defined on every day.
- `gap`: log(Open / previous Close), overnight move. When the file also has
  Adj Close, Open and Close are both scaled by the day's Adj Close / Close,
  so splits and dividends do not show up as gaps. Undefined on the first day.
- `volume`: log((Volume + 1) / (mean Volume of the previous 20 days + 1)),
  today's volume relative to its recent mean (the + 1 keeps days with no
  trades finite). Undefined on the first 20 days.
- `return`: log(target / previous target), the daily log return.
  Undefined on the first day.
- `vol_return`: the daily log return over the standard deviation of the
  VOLATILITY_DAYS returns before it (an input normalised by recent
  volatility: a 3-sigma day reads 3 in a calm year and a wild one).
  Undefined on the first VOLATILITY_DAYS + 1 days.
- `parkinson`, `garman_klass`, `rogers_satchell`, `yang_zhang`: the day's
  range-based variance (forecaster.prep.ranges, from split-adjusted OHLC), as
  a log volatility, 0.5 log(max(variance, RANGE_FLOOR)), so that a calm and a
  wild day sit on one scale after min-max scaling. Yang-Zhang is undefined on
  the first day (no previous close); the others on none.

The undefined first days are dropped from every feature alike:
`compute_features` returns rows from day `warmup_rows(names)` on, so every
row is complete (the caller drops the same days from the target). A gap in a
column a feature needs (a day with the target but no High, say) or a value
its logarithm cannot take is an error naming the series, column and date.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from forecaster.config import FEATURES, RANGE_FEATURES, parse_features
from forecaster.data.series import Panel, Series, name_dates, show_names
from forecaster.errors import ForecasterError
from forecaster.prep import ranges

VOLUME_DAYS = 20  # past days in the volume feature's mean
VOLATILITY_DAYS = 20  # past returns whose std normalises `vol_return`
MIN_VOLATILITY = 1e-4  # floor on that std (a flat stretch): 0.01% a day
RANGE_FLOOR = 1e-8  # smallest variance a range feature takes (a day with High =
#   Low, or a Garman-Klass value below 0): a daily volatility of 0.01%

COLUMNS_NEEDED = {  # OHLCV columns each feature reads, besides the target
    "close": (),
    "range": ("High", "Low"),
    "gap": ("Open", "Close"),
    "volume": ("Volume",),
    "return": (),
    "vol_return": (),
    "parkinson": ("High", "Low"),
    "garman_klass": ("Open", "High", "Low"),
    "rogers_satchell": ("Open", "High", "Low"),
    "yang_zhang": ("Open", "High", "Low"),
}
WARMUP = {
    "close": 0,
    "range": 0,
    "gap": 1,
    "volume": VOLUME_DAYS,
    "return": 1,
    "vol_return": VOLATILITY_DAYS + 1,
    "parkinson": 0,
    "garman_klass": 0,
    "rogers_satchell": 0,
    "yang_zhang": 1,
}


def warmup_rows(names: Iterable[str]) -> int:
    """Leading days dropped from every feature: the longest undefined start."""
    return max(WARMUP[name] for name in parse_features(names))


def compute_features(series: Series, names: str | Iterable[str]) -> pd.DataFrame:
    """The features of one series: (n_days - warmup_rows(names), n_features).

    Columns are the features in the order named; the index is the series'
    dates from day `warmup_rows(names)` on; all values are finite float64.
    """
    names = parse_features(names)
    for name in names:
        _check_columns(series, name)
    warmup = warmup_rows(names)
    if len(series) <= warmup:
        raise ForecasterError(
            f"Series {series.name!r} in {series.where} has {len(series)} row(s); "
            f"features {', '.join(names)} need more than {warmup}."
        )
    columns = {name: _COMPUTE[name](series) for name in names}
    frame = pd.DataFrame(columns, index=series.values.index).iloc[warmup:]
    return frame.astype(np.float64)


def model_inputs(
    series: Series, names: str | Iterable[str]
) -> tuple[pd.Series, pd.DataFrame | None]:
    """The target and the extra inputs beside it, on the same complete rows.

    Returns (values, extra): the target from day `warmup_rows(names)` on, and
    the features other than `close` (the target's own input) on those dates,
    (n_days - warmup, n_extra), or None when `close` is the only feature.
    """
    features = compute_features(series, names)
    values = series.values.loc[features.index]
    extra = features.drop(columns=["close"], errors="ignore")
    return values, (extra if extra.shape[1] else None)


def panel_features(panel: Panel, names: str | Iterable[str]) -> dict[str, pd.DataFrame]:
    """`compute_features` for every series of the panel, keyed by name."""
    names = parse_features(names)
    return {name: compute_features(item, names) for name, item in panel.items()}


def _check_columns(series: Series, feature: str) -> None:
    have = set() if series.ohlcv is None else set(series.ohlcv.columns)
    missing = [c for c in COLUMNS_NEEDED[feature] if c not in have]
    if missing:
        available = [n for n in FEATURES if set(COLUMNS_NEEDED[n]) <= have]
        raise ForecasterError(
            f"Feature {feature!r} needs column(s) {', '.join(missing)}, which "
            f"{series.where} does not have: found columns "
            f"{show_names(series.columns)}. "
            f"Choose features from {', '.join(available)}, or give a file with "
            f"{', '.join(COLUMNS_NEEDED[feature])}."
        )


def _column(
    series: Series, name: str, feature: str, positive: bool = True
) -> np.ndarray:
    """An OHLCV column as float64, refused where it is missing, infinite or not
    positive (or, with `positive=False`, negative)."""
    values = series.ohlcv[name].to_numpy(dtype=np.float64)
    ok = np.isfinite(values) & ((values > 0) if positive else (values >= 0))
    if not ok.all():
        first = values[~ok][0]
        what = "no value" if np.isnan(first) else f"the value {first}"
        limit = "positive" if positive else "non-negative"
        raise ForecasterError(
            f"Feature {feature!r} needs {limit} numbers in column {name!r} of "
            f"{series.where}, but it has {what} on "
            f"{name_dates(series.values.index[~ok])}. Fix or remove those rows."
        )
    return values


def _adjustment(series: Series, feature: str) -> np.ndarray:
    """Adj Close / Close per day when the file has both, else 1."""
    if "Adj Close" not in series.ohlcv.columns:
        return np.ones(len(series))
    adjusted = _column(series, "Adj Close", feature)
    return adjusted / _column(series, "Close", feature)


def _close(series: Series) -> np.ndarray:
    return series.values.to_numpy(dtype=np.float64)


def _range(series: Series) -> np.ndarray:
    high = _column(series, "High", "range")
    return np.log(high / _column(series, "Low", "range"))


def _gap(series: Series) -> np.ndarray:
    factor = _adjustment(series, "gap")
    opens = _column(series, "Open", "gap") * factor
    closes = _column(series, "Close", "gap") * factor
    out = np.full(len(series), np.nan)
    out[1:] = np.log(opens[1:] / closes[:-1])
    return out


def _volume(series: Series) -> np.ndarray:
    volume = pd.Series(_column(series, "Volume", "volume", positive=False)) + 1.0
    # The mean of the VOLUME_DAYS days before each day: rolling, then shifted
    # one day so that day t's own volume is not in its mean.
    past_mean = volume.rolling(VOLUME_DAYS).mean().shift(1)
    return np.log(volume / past_mean).to_numpy()


def _return(series: Series) -> np.ndarray:
    target = _close(series)
    out = np.full(len(target), np.nan)
    out[1:] = np.log(target[1:] / target[:-1])
    return out


def _vol_return(series: Series) -> np.ndarray:
    returns = pd.Series(_return(series))
    # the std (ddof 0) of the VOLATILITY_DAYS returns before day t: rolling,
    # then shifted one day so that day t's own return is not in it
    past = returns.rolling(VOLATILITY_DAYS).std(ddof=0).shift(1)
    return (returns / np.maximum(past, MIN_VOLATILITY)).to_numpy()


def _estimator(name: str):
    """The feature computing estimator `name` of forecaster.prep.ranges."""

    def compute(series: Series) -> np.ndarray:
        variance = ranges.estimators(ranges.adjusted_ohlc(series))[name].to_numpy()
        out = 0.5 * np.log(np.maximum(variance, RANGE_FLOOR))
        return np.where(np.isnan(variance), np.nan, out)

    return compute


_COMPUTE = {
    "close": _close,
    "range": _range,
    "gap": _gap,
    "volume": _volume,
    "return": _return,
    "vol_return": _vol_return,
    **{name: _estimator(name) for name in RANGE_FEATURES},
}
