"""Tests for forecaster.prep.features: exact values, warm-up, no look-ahead, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write
from panel_fakes import random_walk_ohlcv

from forecaster.config import FEATURES, parse_features
from forecaster.data.panel import read_panel_csvs
from forecaster.data.series import Panel
from forecaster.data.tables import read_series_csv
from forecaster.errors import ForecasterError
from forecaster.prep.features import (
    RANGE_FLOOR,
    VOLATILITY_DAYS,
    VOLUME_DAYS,
    compute_features,
    model_inputs,
    panel_features,
    warmup_rows,
)

ROOT = Path(__file__).resolve().parent.parent


def series_of(tmp_path: Path, frame: pd.DataFrame, name: str = "GEN"):
    """A PanelSeries read back from a CSV of `frame` (generated numbers)."""
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index_label="Date", date_format="%Y-%m-%d")
    return read_series_csv(path)


def arange_frame(n: int = 30) -> pd.DataFrame:
    """Arange-style OHLCV where every feature can be written down by hand."""
    close = 100.0 + np.arange(n)
    return pd.DataFrame(
        {
            "Open": close - 0.5,
            "High": close + 1.0,
            "Low": close - 1.0,
            "Close": close,
            "Volume": 1000.0 + np.arange(n),
        },
        index=pd.bdate_range("2024-01-01", periods=n, name="Date"),
    )


def test_exact_values(tmp_path):
    frame = arange_frame()
    item = series_of(tmp_path, frame)
    features = compute_features(item, "close,range,gap,volume,return")
    assert list(features.columns) == ["close", "range", "gap", "volume", "return"]
    assert features.index.equals(frame.index[VOLUME_DAYS:])
    assert features.dtypes.eq(np.float64).all()
    close = frame["Close"].to_numpy()
    t = np.arange(VOLUME_DAYS, len(frame))
    np.testing.assert_allclose(features["close"], close[t])
    np.testing.assert_allclose(
        features["range"], np.log((close[t] + 1) / (close[t] - 1))
    )
    np.testing.assert_allclose(features["gap"], np.log((close[t] - 0.5) / close[t - 1]))
    np.testing.assert_allclose(features["return"], np.log(close[t] / close[t - 1]))
    volume = frame["Volume"].to_numpy() + 1
    past = np.array([volume[i - VOLUME_DAYS : i].mean() for i in t])
    np.testing.assert_allclose(features["volume"], np.log(volume[t] / past))


def test_vol_return_is_the_return_over_the_std_of_the_returns_before(tmp_path):
    frame = random_walk_ohlcv(60, seed=5)
    features = compute_features(series_of(tmp_path, frame), "close,vol_return")
    assert warmup_rows("vol_return") == VOLATILITY_DAYS + 1
    assert features.index.equals(frame.index[VOLATILITY_DAYS + 1 :])
    close = frame["Close"].to_numpy()
    returns = np.log(close[1:] / close[:-1])  # returns[j] ends on day j + 1
    t = np.arange(VOLATILITY_DAYS + 1, len(frame))
    past = np.array([returns[i - 1 - VOLATILITY_DAYS : i - 1].std() for i in t])
    np.testing.assert_allclose(features["vol_return"], returns[t - 1] / past)


def test_warmup_rows_are_dropped_alike(tmp_path):
    item = series_of(tmp_path, arange_frame())
    assert warmup_rows("close") == warmup_rows(["close", "range"]) == 0
    assert warmup_rows("close,return") == warmup_rows("gap") == 1
    assert warmup_rows("close,volume") == VOLUME_DAYS
    assert len(compute_features(item, "close")) == 30
    assert compute_features(item, "close,return").index[0] == item.values.index[1]
    features = compute_features(item, ["return", "close"])
    assert list(features.columns) == ["return", "close"]
    assert np.isfinite(features.to_numpy()).all()


def test_no_feature_uses_a_later_day(tmp_path):
    """Changing every row after day k changes no feature on days up to k."""
    frame = random_walk_ohlcv(80, seed=3)
    base = compute_features(series_of(tmp_path, frame), FEATURES)
    rng = np.random.default_rng(0)
    for k in (VOLUME_DAYS, 35, 60, 78):
        changed = frame.copy()
        later = changed.index > changed.index[k]
        noise = rng.uniform(0.5, 2.0, size=(int(later.sum()), 1))
        changed.loc[later, ["Open", "High", "Low", "Close"]] *= noise
        changed.loc[later, "Volume"] = rng.integers(1, 10**7, int(later.sum()))
        after = compute_features(series_of(tmp_path, changed, f"K{k}"), FEATURES)
        upto = base.index <= frame.index[k]
        pd.testing.assert_frame_equal(after[upto], base[upto])
        assert not np.allclose(after[~upto], base[~upto])


def test_gap_uses_adjusted_open_and_close(tmp_path):
    """A 2:1 split with Adj Close: no gap cliff (AAPL, 2005-02-28, real data)."""
    aapl = read_panel_csvs([ROOT / "data" / "AAPL.csv"])["AAPL"]
    gap = compute_features(aapl, "gap")["gap"]
    assert abs(gap["2005-02-28"]) < 0.01
    raw = aapl.ohlcv
    unadjusted = np.log(raw["Open"]["2005-02-28"] / raw["Close"]["2005-02-25"])
    assert unadjusted < -0.6  # what the gap would be without the adjustment


def test_zero_volume_stays_finite(tmp_path):
    frame = arange_frame()
    frame.loc[frame.index[25], "Volume"] = 0
    features = compute_features(series_of(tmp_path, frame), "volume")
    assert np.isfinite(features.to_numpy()).all()


def test_missing_columns_name_file_feature_and_columns(tmp_path):
    path = write(
        tmp_path, "Date,Close,Volume\n2024-01-02,5,1\n2024-01-03,6,2\n", "X.csv"
    )
    item = read_series_csv(path)
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Feature 'range' needs column(s) High, Low, which {str(path)!r} does "
            "not have: found columns ['Date', 'Close', 'Volume']. Choose features "
            "from close, volume, return, vol_return, or give a file with High, Low."
        ),
    ):
        compute_features(item, "close,range")
    plain = read_series_csv(
        write(tmp_path, "Date,Price\n2024-01-02,5\n2024-01-03,6\n", "P.csv")
    )
    with pytest.raises(ForecasterError, match="Feature 'gap' needs column"):
        compute_features(plain, "gap")


def test_long_format_missing_columns_name_the_ticker(tmp_path):
    from forecaster.data.panel import read_long_csv

    path = write(
        tmp_path, "date,symbol,close\n2024-01-02,AB,5\n2024-01-03,AB,6\n", "l.csv"
    )
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Feature 'volume' needs column(s) Volume, which {str(path)!r} (ticker "
            "'AB') does not have: found columns ['date', 'symbol', 'close']."
        ),
    ):
        panel_features(read_long_csv(path), "volume")


def test_gaps_and_bad_values_are_named(tmp_path):
    frame = arange_frame()
    frame.loc[frame.index[3], "High"] = np.nan
    item = series_of(tmp_path, frame)
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Feature 'range' needs positive numbers in column 'High' of "
            f"{str(tmp_path / 'GEN.csv')!r}, but it has no value on 2024-01-04. Fix "
            "or remove those rows."
        ),
    ):
        compute_features(item, "range")
    assert len(compute_features(item, "close,gap")) == 29  # High is not needed
    frame = arange_frame()
    frame.loc[frame.index[5], "Volume"] = -3
    with pytest.raises(
        ForecasterError, match="non-negative numbers in column 'Volume'"
    ):
        compute_features(series_of(tmp_path, frame, "NEG"), "volume")


def test_too_short_for_the_warmup(tmp_path):
    item = series_of(tmp_path, arange_frame(VOLUME_DAYS))
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Series 'GEN' in {str(tmp_path / 'GEN.csv')!r} has 20 row(s); features "
            "close, volume need more than 20."
        ),
    ):
        compute_features(item, "close,volume")


def test_parse_features():
    assert parse_features("close, Range ,volume") == ("close", "range", "volume")
    assert parse_features(["gap", "return"]) == ("gap", "return")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Unknown feature 'rsi': valid features are close, "
            "range, gap, volume, return, vol_return, parkinson, garman_klass, "
            "rogers_satchell, yang_zhang. Received: features='close,rsi'"
        ),
    ):
        parse_features("close,rsi")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Feature 'close' is named twice in features. Received: "
            "features='close,range,close'"
        ),
    ):
        parse_features("close,range,close")
    with pytest.raises(
        ForecasterError, match=re.escape("features must name at least one of close,")
    ):
        parse_features(" , ")


def test_panel_features_on_the_sample_panel():
    from forecaster.data.panel import read_long_csv

    panel = read_long_csv(ROOT / "data" / "panel_long.csv")
    features = panel_features(panel, "close,range,volume")
    assert list(features) == ["AAPL", "GOOG", "MSFT"]
    for name, frame in features.items():
        assert frame.shape == (1000 - VOLUME_DAYS, 3)
        assert np.isfinite(frame.to_numpy()).all()
        assert frame.index.equals(panel[name].values.index[VOLUME_DAYS:])
    one = Panel([panel["AAPL"]])
    assert list(panel_features(one, "close")) == ["AAPL"]


def test_model_inputs_share_the_complete_rows(tmp_path):
    item = series_of(tmp_path, arange_frame())
    values, extra = model_inputs(item, "close,range,return")
    assert values.index.equals(extra.index) and len(values) == 29
    assert list(extra.columns) == ["range", "return"]
    assert values.iloc[0] == item.values.iloc[1]
    values, extra = model_inputs(item, "close")
    assert extra is None and values.equals(item.values)


def test_range_estimators_as_log_volatility(tmp_path):
    """Each range feature is 0.5 log of its variance, written out by hand."""
    frame = arange_frame()
    names = "parkinson,garman_klass,rogers_satchell,yang_zhang"
    features = compute_features(series_of(tmp_path, frame), names)
    assert features.index.equals(frame.index[1:])  # Yang-Zhang: no first day
    o, h, low, c = (
        np.log(frame[k].to_numpy()[1:]) for k in ("Open", "High", "Low", "Close")
    )
    previous_close = np.log(frame["Close"].to_numpy()[:-1])
    parkinson = (h - low) ** 2 / (4 * np.log(2))
    garman_klass = 0.5 * (h - low) ** 2 - (2 * np.log(2) - 1) * (c - o) ** 2
    rogers_satchell = (h - c) * (h - o) + (low - c) * (low - o)
    k = 0.34 / 1.34
    yang_zhang = (
        (o - previous_close) ** 2 + k * (c - o) ** 2 + (1 - k) * rogers_satchell
    )
    for name, variance in (
        ("parkinson", parkinson),
        ("garman_klass", garman_klass),
        ("rogers_satchell", rogers_satchell),
        ("yang_zhang", yang_zhang),
    ):
        np.testing.assert_allclose(features[name], 0.5 * np.log(variance))


def test_range_features_floor_a_flat_day(tmp_path):
    """High = Low = Open = Close: zero variance becomes the floor, not -inf."""
    frame = arange_frame()
    frame.iloc[5, :4] = 100.0
    features = compute_features(series_of(tmp_path, frame), "parkinson,garman_klass")
    assert np.isfinite(features.to_numpy()).all()
    assert features["parkinson"].iloc[5] == pytest.approx(0.5 * np.log(RANGE_FLOOR))


def test_range_features_use_split_adjusted_overnight_move():
    """AAPL's 2:1 split on 2005-02-28: no jump in Yang-Zhang's overnight term."""
    aapl = read_panel_csvs([ROOT / "data" / "AAPL.csv"])["AAPL"]
    features = compute_features(aapl, "yang_zhang,parkinson")
    day = features.loc["2005-02-28"]
    assert day["yang_zhang"] < day["parkinson"] + 1.0  # not the log(2) overnight gap
    assert np.exp(day["yang_zhang"]) < 0.1  # a daily volatility under 10%


def test_range_feature_high_below_low_names_the_date(tmp_path):
    frame = arange_frame()
    frame.loc[frame.index[7], ["High", "Low"]] = [95.0, 120.0]
    item = series_of(tmp_path, frame)
    with pytest.raises(ForecasterError, match="High is below Low .* 2024-01-10"):
        compute_features(item, "close,parkinson")


def test_range_feature_without_high_low_lists_what_is_available(tmp_path):
    path = write(tmp_path, "Date,Close\n2024-01-02,5\n2024-01-03,6\n", "C.csv")
    with pytest.raises(ForecasterError, match="Feature 'parkinson' needs column"):
        compute_features(read_series_csv(path), "parkinson")
    assert {"parkinson", "yang_zhang"} <= set(FEATURES)
