"""Tests for forecaster.prep.windows: windows, counts, split, train-only scaling."""

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler

from forecaster.config import PrepSettings
from forecaster.errors import ForecasterError
from forecaster.prep.windows import (
    Scaler,
    decode_outputs,
    encode_inputs,
    encode_targets,
    minimum_rows,
    split_series,
    target_view,
    window_view,
)


def test_windows_have_exact_contents():
    series = np.arange(10.0)
    x = window_view(series, 3, (3, 10))
    y = target_view(series, 1, (3, 10))
    assert x.shape == (7, 3) and y.shape == (7, 1)
    np.testing.assert_array_equal(x[0], [0, 1, 2])
    np.testing.assert_array_equal(x[-1], [6, 7, 8])
    np.testing.assert_array_equal(y[:, 0], np.arange(3, 10))


def test_windows_are_views_not_copies():
    series = np.arange(1000.0)
    x = window_view(series, 100, (100, 1000))
    assert np.shares_memory(x, series)


def test_multi_step_targets():
    y = target_view(np.arange(10.0), 3, (3, 8))
    np.testing.assert_array_equal(y[0], [3, 4, 5])
    np.testing.assert_array_equal(y[-1], [7, 8, 9])


def test_split_gives_n_minus_window_windows_none_dropped():
    prep = PrepSettings(window=100, train_fraction=0.75)
    split = split_series(1000, prep)
    assert split.n_train == 750
    assert split.n_fit + split.n_val + split.n_test == 1000 - 100
    assert split.fit_targets[0] == 100
    assert split.fit_targets[1] == split.val_targets[0]
    assert split.val_targets[1] == split.test_targets[0] == 750
    assert split.test_targets[1] == 1000


def test_validation_comes_from_end_of_training_part():
    split = split_series(1000, PrepSettings(window=100, val_fraction=0.1))
    assert split.val_targets == (750 - 65, 750)
    assert split.val_targets[1] <= split.n_train


def test_test_windows_take_context_from_training_end():
    series = np.arange(40.0)
    split = split_series(40, PrepSettings(window=5, train_fraction=0.75))
    x = window_view(series, 5, split.test_targets)
    np.testing.assert_array_equal(x[0], [25, 26, 27, 28, 29])
    assert split.test_targets[0] == 30


def test_horizon_windows_stay_inside_each_part():
    split = split_series(200, PrepSettings(window=10, horizon=5))
    assert split.val_targets[1] - 1 + 5 - 1 == split.n_train - 1
    assert split.test_targets[1] - 1 + 5 - 1 == 199


def test_too_little_data_is_a_clear_error():
    prep = PrepSettings(window=100, train_fraction=0.75)
    need = minimum_rows(prep)
    with pytest.raises(
        ForecasterError,
        match=rf"need at least {need} rows for "
        r"window=100, horizon=1 and train-fraction=0.75, got 150",
    ):
        split_series(150, prep)
    split_series(need, prep)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"window": 0}, "window must be at least 1. Received: window=0"),
        ({"train_fraction": 1.5}, "train_fraction=1.5"),
        ({"train_fraction": 0.0}, "train_fraction=0.0"),
        ({"horizon": 0}, "horizon=0"),
        ({"representation": "ratio"}, "choose one of level, delta, log-delta"),
    ],
)
def test_bad_prep_settings(kwargs, match):
    with pytest.raises(ForecasterError, match=match):
        PrepSettings(**kwargs).validate()


def test_scaler_matches_sklearn_and_is_fitted_on_train_only():
    prices = np.concatenate([np.linspace(10, 20, 75), np.linspace(20, 60, 25)])
    scaler = Scaler().fit(prices[:75])
    reference = MinMaxScaler().fit(prices[:75, None])
    np.testing.assert_allclose(
        scaler.transform(prices), reference.transform(prices[:, None])[:, 0]
    )
    assert scaler.data_max_ == 20.0
    assert scaler.transform(np.array([60.0]))[0] == pytest.approx(5.0)
    np.testing.assert_allclose(
        scaler.inverse_transform(scaler.transform(prices)), prices
    )


def test_log_scaler_round_trip():
    prices = np.array([1.0, 10.0, 100.0])
    scaler = Scaler(log=True).fit(prices)
    np.testing.assert_allclose(scaler.transform(prices), [0, 0.5, 1])
    np.testing.assert_allclose(
        scaler.inverse_transform(scaler.transform(prices)), prices
    )
    assert Scaler.from_dict(scaler.to_dict()) == scaler


def test_unfitted_scaler_says_so():
    with pytest.raises(ForecasterError, match="not fitted"):
        Scaler().transform(np.ones(3))


@pytest.mark.parametrize("representation", ["level", "delta", "log-delta"])
def test_representations_round_trip(representation):
    windows = np.array([[0.1, 0.2, 0.4], [0.5, 0.3, 0.9]])
    targets = np.array([[0.45], [1.2]])
    x = encode_inputs(windows, representation)
    y = encode_targets(windows, targets, representation)
    assert x.shape == (2, 3, 1)
    np.testing.assert_allclose(
        decode_outputs(windows, y, representation), targets, atol=1e-6
    )
    if representation != "level":
        np.testing.assert_allclose(x[:, -1, 0], 0)
        np.testing.assert_allclose(y[:, 0], [0.05, 0.3], atol=1e-6)
