"""One series is a panel of one: the shared steps give a lone series exactly its
own split, the question "one series or a panel?" has one answer, and the store
reads what it writes for both layouts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices

from forecaster.api import is_single, settings_from_keywords
from forecaster.config import PrepSettings, Settings
from forecaster.data.frames import panel_from_pandas
from forecaster.data.series import Panel, Series
from forecaster.errors import ForecasterError
from forecaster.prep.panel import prepare_panel, validation_date
from forecaster.prep.windows import prepare, validation_start
from forecaster.store.bundle import read_part


@pytest.mark.parametrize(
    ("n", "window", "horizon", "train_fraction", "val_fraction"),
    [(260, 10, 1, 0.75, 0.1), (300, 30, 5, 0.6, 0.2), (157, 7, 2, 0.8, 0.05)],
)
def test_a_lone_series_gets_exactly_its_own_split(
    n, window, horizon, train_fraction, val_fraction
):
    prep = PrepSettings(
        window=window,
        horizon=horizon,
        train_fraction=train_fraction,
        val_fraction=val_fraction,
    )
    values = make_prices(n, seed=n)
    alone = prepare(values, prep)
    [part] = prepare_panel(panel_from_pandas(values), prep).parts.values()
    assert part.split == alone.split
    np.testing.assert_array_equal(part.scaled, alone.scaled)
    assert part.scaler.to_dict() == alone.scaler.to_dict()


def test_a_panel_validates_every_series_from_one_date():
    panel = panel_from_pandas(
        {"A": make_prices(260, seed=1), "B": make_prices(200, seed=2)}
    )
    prep = PrepSettings(window=10)
    prepared = prepare_panel(panel, prep)
    first = validation_date(panel, prepared.cutoff, prep)
    training_days = panel.dates[panel.dates < prepared.cutoff]
    assert first == training_days[validation_start(len(training_days), prep)]
    for part in prepared.parts.values():
        assert part.dates[part.split.val_targets[0]] == first


def test_a_lone_short_series_gets_its_own_error():
    prep = PrepSettings(window=100)
    with pytest.raises(ForecasterError, match=r"^need at least \d+ rows for window"):
        prepare_panel(panel_from_pandas(make_prices(60)), prep)


def test_one_series_or_a_panel_has_one_answer():
    settings = Settings()
    prices = make_prices()
    assert is_single(prices, settings)
    assert is_single(prices.to_frame(), settings)
    assert is_single({"A": prices}, settings)
    assert not is_single({"A": prices, "B": prices}, settings)
    assert not is_single(panel_from_pandas(prices), settings)  # a Panel, even of one
    assert not is_single(prices, settings, cutoff="2020-06-01")
    assert not is_single(prices, settings, covariates={"VIX": prices})
    assert not is_single(prices, settings_from_keywords(features="close,return"))
    long = pd.DataFrame({"date": prices.index, "ticker": "A", "close": prices.values})
    assert not is_single(long, settings)


def test_every_loader_returns_a_series_named_by_its_source(tmp_path):
    values = make_prices(30)
    series = Series.from_source(values, {"kind": "csv", "path": "x/My File.csv"})
    assert series.name == "My File" and series.where == "'x/My File.csv'"
    assert series.first_date == "2020-01-01" and len(series) == 30
    ticker = Series.from_source(values, {"kind": "ticker", "ticker": "MSFT"})
    assert ticker.name == "MSFT"
    lone = panel_from_pandas(series)  # a lone series keeps its name as it is
    assert lone.names == ["My File"] and lone["My File"] is series
    with pytest.raises(ForecasterError, match="is not a safe file name"):
        Panel([Series("a/b", values)])


def test_the_store_reads_a_part_or_says_why_not(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"a": 1}))
    (tmp_path / "history.csv").write_text("epoch,loss\n")
    (tmp_path / "scaler.json").write_text("{not json")
    assert read_part(tmp_path, "metrics.json") == ({"a": 1}, None)
    assert read_part(tmp_path, "history.csv") == (None, "history.csv has no rows")
    assert read_part(tmp_path, "scaler.json") == (
        None,
        "scaler.json unreadable: JSONDecodeError",
    )
    assert read_part(tmp_path, "forecast.csv") == (None, "no forecast.csv")
