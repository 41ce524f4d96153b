"""Fuzzing the panel loaders: any input gives a clean Panel or a ForecasterError.

Three layouts are fed random cells and markers: several CSV files, one
long-format file, and multi-ticker yfinance frames. Features are computed on
whatever loads; they too may only fail with a ForecasterError. All inputs are
generated.
"""

from __future__ import annotations

import random
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from panel_fakes import three_tickers
from test_fuzz import MUTATIONS, WEIRD_TOKENS, fuzz, mutate

from forecaster.config import FEATURES
from forecaster.data.panel import read_long_csv, read_panel_csvs
from forecaster.data.series import Panel, check_series_name
from forecaster.data.symbols import download_panel
from forecaster.errors import ForecasterError
from forecaster.prep.features import compute_features

FILE = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02,10.0,11.0,9.0,10.5,5.25,1000\n"
    "2024-01-03,10.5,12.0,10.0,11.5,5.75,1100\n"
    "2024-01-04,11.5,13.0,11.0,12.5,6.25,0\n"
    "2024-01-05,12.5,14.0,12.0,13.5,6.75,1300\n"
)
LONG = (
    "date,ticker,open,high,low,close,volume\n"
    "2024-01-02,AAA,10.0,11.0,9.0,10.5,1000\n"
    "2024-01-03,AAA,10.5,12.0,10.0,11.5,1100\n"
    "2024-01-04,AAA,11.5,13.0,11.0,12.5,1200\n"
    "2024-01-02,BBB,20.0,21.0,19.0,20.5,2000\n"
    "2024-01-03,BBB,20.5,22.0,20.0,21.5,2100\n"
    "2024-01-05,BBB,21.5,23.0,21.0,22.5,2200\n"
)
NAME_MARKERS = ["../../x", "..", "a/b", "c\\d", "\x00", "\x1b[31m", "x" * 70, " "]
column_choice = st.sampled_from([None, None, None, "close", "Volume", "nope", ""])
features_choice = st.lists(st.sampled_from(FEATURES), min_size=1, max_size=5)


def check(load, features) -> Panel | None:
    """The property: a clean panel (and features) or one-line ForecasterErrors."""
    try:
        panel = load()
    except ForecasterError as err:
        assert_one_line(err)
        event("error")
        return None
    for name, item in panel.items():
        assert check_series_name(name, "test") == name == item.name
        values = item.values
        assert values.index.is_monotonic_increasing and values.index.is_unique
        assert values.dtype == np.float64 and len(values) >= 2
        assert np.isfinite(values.to_numpy()).all() and (values > 0).all()
        if item.ohlcv is not None:
            assert item.ohlcv.index.equals(values.index)
        try:
            frame = compute_features(item, sorted(set(features)))
        except ForecasterError as err:
            assert_one_line(err)
            continue
        assert np.isfinite(frame.to_numpy()).all()
    event(f"panel of {len(panel)}")
    return panel


def assert_one_line(err: ForecasterError) -> None:
    message = str(err)
    assert message and "\n" not in message and "\r" not in message


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_panel")


mutation = st.tuples(st.sampled_from(MUTATIONS), st.floats(0, 1))


@fuzz(120)
@given(
    mutated=st.lists(
        st.tuples(st.integers(0, 2), st.lists(mutation, min_size=1, max_size=3)),
        min_size=1,
        max_size=3,
    ),
    seed=st.integers(0, 2**16),
    column=column_choice,
    skip_bad=st.booleans(),
    features=features_choice,
)
def test_several_files(folder, mutated, seed, column, skip_bad, features):
    rng = random.Random(seed)
    texts = [FILE, FILE, FILE]
    for which, steps in mutated:
        for kind, where in steps:
            texts[which] = mutate(texts[which], kind, where, rng)
    paths = []
    for i, text in enumerate(texts):
        paths.append(folder / f"S{i}.csv")
        paths[-1].write_bytes(text.encode("utf-8", errors="replace"))
    check(lambda: read_panel_csvs(paths, column=column, skip_bad=skip_bad), features)


@fuzz(120)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(1, 6),  # line
            st.integers(0, 6),  # cell
            st.sampled_from(WEIRD_TOKENS + NAME_MARKERS + ["AAA", "BBB", "aaa"]),
        ),
        min_size=1,
        max_size=4,
    ),
    steps=st.lists(mutation, max_size=2),
    seed=st.integers(0, 2**16),
    column=column_choice,
    skip_bad=st.booleans(),
    features=features_choice,
)
def test_long_format(folder, cells, steps, seed, column, skip_bad, features):
    rng = random.Random(seed)
    lines = [line.split(",") for line in LONG.strip().split("\n")]
    for line, cell, token in cells:
        lines[line][cell] = token
    text = "\n".join(",".join(line) for line in lines) + "\n"
    for kind, where in steps:
        text = mutate(text, kind, where, rng)
    path = folder / "long.csv"
    path.write_bytes(text.encode("utf-8", errors="replace"))
    panel = check(
        lambda: read_long_csv(path, column=column, skip_bad=skip_bad), features
    )
    if panel is not None:
        assert set(panel.names) <= {"AAA", "BBB", "aaa"} | set(WEIRD_TOKENS)


frame_value = st.sampled_from(
    [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e308, 1e-300, 5.0, 123.25]
)


@fuzz(100)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 15), frame_value), max_size=12
    ),
    nan_rows=st.lists(st.integers(0, 39), max_size=40),
    symbols=st.lists(
        st.sampled_from(["AAPL", "MSFT", "GOOG", "IBM"]), min_size=1, max_size=4
    ),
    logged=st.sampled_from([(), ("['GOOG']: YFPricesMissingError('delisted')",)]),
    raises=st.booleans(),
    shuffle_index=st.booleans(),
    skip_bad=st.booleans(),
    features=features_choice,
)
def test_multi_ticker_frames(
    folder, cells, nan_rows, symbols, logged, raises, shuffle_index, skip_bad, features
):
    frame = three_tickers().astype(np.float64)
    for row, col, value in cells:
        frame.iloc[row, col] = value
    frame.iloc[sorted(set(nan_rows))] = np.nan
    if shuffle_index:
        frame = frame.iloc[::-1]

    def fake(tickers, **kwargs):
        import logging

        for message in logged:
            logging.getLogger("yfinance").error(message)
        if raises:
            raise RuntimeError("Failed to perform, curl: (6) Could not resolve host")
        return frame

    cache = folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    check(
        lambda: download_panel(
            symbols, "2024-01-01", None, cache, download=fake, skip_bad=skip_bad
        ),
        features,
    )
    if cache.exists():
        assert all(p.suffix == ".csv" for p in cache.iterdir())


@fuzz(60)
@given(
    rows=st.lists(
        st.tuples(
            st.dates(
                pd.Timestamp("2020-01-01").date(), pd.Timestamp("2020-03-01").date()
            ),
            st.sampled_from(["AAA", "BBB"]),
            st.floats(0.01, 1e4),
            st.floats(0.01, 1e4),
            st.integers(0, 10**9),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda row: row[:2],
    ),
    features=features_choice,
)
def test_valid_long_rows(folder, rows, features):
    """Well-formed long files with random numbers: each ticker's closes, exactly."""
    text = "date,ticker,high,low,close,volume\n" + "".join(
        f"{d},{t},{h},{lo},{h},{v}\n" for d, t, h, lo, v in rows
    )
    path = folder / "valid_long.csv"
    path.write_text(text)
    panel = check(lambda: read_long_csv(path), features)
    counts = pd.Series([t for _, t, *_ in rows]).value_counts()
    if counts.min() >= 2:
        assert panel is not None and panel.names == sorted(counts.index)
        for name in panel:
            written = sorted((pd.Timestamp(d), h) for d, t, h, *_ in rows if t == name)
            assert list(panel[name].values.items()) == written
