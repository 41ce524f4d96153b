"""The per-day range variance estimators (forecaster.prep.ranges)."""

import numpy as np
import pandas as pd
import pytest

from forecaster.data.series import Series
from forecaster.data.tables import read_price_file
from forecaster.errors import ForecasterError
from forecaster.prep import ranges


def _series(rows, adjusted=None):
    dates = pd.bdate_range("2020-01-01", periods=len(rows))
    frame = pd.DataFrame(rows, columns=list(ranges.OHLC), index=dates, dtype=float)
    if adjusted is not None:
        frame["Adj Close"] = adjusted
    values = frame["Adj Close"] if adjusted is not None else frame["Close"]
    return Series("X", values.rename("X"), ohlcv=frame, where="x.csv")


def test_estimators_match_their_formulas_on_one_day():
    s = _series([[100, 110, 95, 105], [105, 108, 100, 101]])
    est = ranges.estimators(ranges.adjusted_ohlc(s)).iloc[1]
    h, lo, o, c = np.log([108, 100, 105, 101])
    assert est["parkinson"] == pytest.approx((h - lo) ** 2 / (4 * np.log(2)))
    gk = 0.5 * (h - lo) ** 2 - (2 * np.log(2) - 1) * (c - o) ** 2
    assert est["garman_klass"] == pytest.approx(gk)
    rs = (h - c) * (h - o) + (lo - c) * (lo - o)
    assert est["rogers_satchell"] == pytest.approx(rs)
    k = 0.34 / 1.34
    overnight = np.log(105 / 105)
    yz = overnight**2 + k * (c - o) ** 2 + (1 - k) * rs
    assert est["yang_zhang"] == pytest.approx(yz)
    assert np.isnan(ranges.estimators(ranges.adjusted_ohlc(s))["yang_zhang"].iloc[0])


def test_parkinson_is_unbiased_for_brownian_variance():
    # a fine-grid random walk per day: E[Parkinson] = the day's variance
    rng = np.random.default_rng(0)
    sigma, steps, days = 0.02, 2000, 2000
    paths = np.cumsum(rng.normal(0, sigma / np.sqrt(steps), (days, steps)), axis=1)
    est = ranges.parkinson(paths.max(axis=1).clip(0), paths.min(axis=1).clip(None, 0))
    assert est.mean() == pytest.approx(sigma**2, rel=0.06)


def test_overnight_term_uses_split_adjusted_prices():
    # a 2:1 split between the days: raw Open halves, Adj Close does not jump
    s = _series([[100, 102, 99, 100], [50, 51, 49.5, 50]], adjusted=[50, 50])
    ohlc = ranges.adjusted_ohlc(s)
    assert ohlc["Open"].iloc[1] == pytest.approx(50)
    assert ohlc["Close"].iloc[0] == pytest.approx(50)
    assert ranges.estimators(ohlc)["yang_zhang"].iloc[1] < 1e-3


def test_high_below_low_names_the_date():
    s = _series([[100, 110, 95, 105], [105, 99, 101, 100]])
    with pytest.raises(ForecasterError, match="High is below Low.*2020-01-02"):
        ranges.adjusted_ohlc(s)


def test_close_only_has_no_range():
    s = _series([[1, 1, 1, 1]])
    assert ranges.adjusted_ohlc(Series("X", s.values)) is None


def test_sample_data_estimators_are_finite_and_non_negative_where_they_must_be():
    s = read_price_file("data/AAPL.csv")
    est = ranges.estimators(ranges.adjusted_ohlc(s))
    assert len(est) == len(s)
    assert (est[["parkinson", "rogers_satchell"]] >= 0).all().all()
    assert np.isfinite(est.iloc[1:].to_numpy()).all()


def test_high_below_low_shows_the_files_own_cells():
    """The message quotes the file's High and Low, not the split-adjusted ones."""
    s = _series([[100, 110, 95, 100], [100, 99, 101, 100]], adjusted=[50, 50])
    with pytest.raises(ForecasterError, match=r"\(High 99, Low 101\)"):
        ranges.adjusted_ohlc(s)
