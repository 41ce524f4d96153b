"""Tests for forecaster.evaluate.evaluation and .intervals: figures checked by hand.

Scores, the naive baseline, the conformal rank, the interval half-widths and
their growth, the volatility scale, coverage and RMSE by step are what the
project's honesty rests on, so each is pinned on a few numbers worked out by
hand (in the comments), not on another run of the same code.
"""

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.config import PrepSettings
from forecaster.evaluate import drift
from forecaster.evaluate.drift import choose_drift
from forecaster.evaluate.evaluation import (
    _rmse_by_step,
    engine_intervals,
    format_table,
    naive_scores,
    scores,
    step_errors,
)
from forecaster.evaluate.intervals import (
    MAX_INTERVAL_STEPS,
    MIN_RESIDUALS,
    MIN_VOLATILITY,
    VOLATILITY_DAYS,
    conformal_quantile,
    coverage,
    half_widths,
    scale_of,
)
from forecaster.model.paths import damp_drift
from forecaster.prep.windows import prepare

# ---------------------------------------------------------------------- scores


def test_scores_by_hand():
    actual = [10.0, 12.0, 9.0, 10.0]
    predicted = [11.0, 9.0, 9.0, 12.0]
    previous = [10.0, 10.0, 10.0, 10.0]
    result = scores(actual, predicted, previous)
    # errors 1, -3, 0, 2: squares 1 + 9 + 0 + 4 = 14 over 4 days
    assert result["rmse"] == pytest.approx(math.sqrt(3.5))
    assert result["mae"] == pytest.approx(1.5)  # (1 + 3 + 0 + 2) / 4
    # (1/10 + 3/12 + 0/9 + 2/10) / 4 = 0.55 / 4, in percent
    assert result["mape"] == pytest.approx(13.75)
    # the price moved on days 2 and 3 only: day 2 went up, predicted down
    # (wrong); day 3 went down, predicted down (right). Days 1 and 4 did not
    # move and are left out, whatever was predicted for them.
    assert result["directional_accuracy"] == pytest.approx(0.5)


def test_scores_a_predicted_standstill_is_not_a_direction():
    # the price moved up both days; predicting "no move" gets neither right
    result = scores([11.0, 12.0], [10.0, 11.0], [10.0, 11.0])
    assert result["directional_accuracy"] == 0.0


def test_scores_direction_is_nan_when_the_price_never_moved():
    result = scores([10.0, 10.0], [11.0, 9.0], [10.0, 10.0])
    assert math.isnan(result["directional_accuracy"])
    assert result["rmse"] == pytest.approx(1.0)
    assert result["mape"] == pytest.approx(10.0)


def test_scores_perfect_forecast():
    result = scores([11.0, 9.0, 12.0], [11.0, 9.0, 12.0], [10.0, 11.0, 9.0])
    assert result == {
        "rmse": 0.0,
        "mae": 0.0,
        "mape": 0.0,
        "directional_accuracy": 1.0,
    }


def test_naive_scores_by_hand():
    actual = [11.0, 10.0, 10.0, 12.0]
    previous = [10.0, 11.0, 10.0, 10.0]
    result = naive_scores(actual, previous)
    # naive predicts `previous`: errors -1, 1, 0, -2, squares 1 + 1 + 0 + 4
    assert result["rmse"] == pytest.approx(math.sqrt(1.5))
    assert result["mae"] == pytest.approx(1.0)  # (1 + 1 + 0 + 2) / 4
    assert result["mape"] == pytest.approx((1 / 11 + 1 / 10 + 0 + 2 / 12) / 4 * 100)
    # "always up": moves up, down, none, up -> 2 of the 3 moving days went up;
    # the day with no move counts neither way
    assert result["directional_accuracy"] == pytest.approx(2 / 3)


def test_naive_direction_counts_only_moving_days():
    # two flat days, one fall, one rise: 1 of the 2 moving days went up (1/2);
    # a share over all four days would give 1/4
    actual = [10.0, 10.0, 9.0, 11.0]
    previous = [10.0, 10.0, 10.0, 10.0]
    assert naive_scores(actual, previous)["directional_accuracy"] == 0.5


def test_naive_direction_is_nan_when_the_price_never_moved():
    result = naive_scores([10.0, 10.0], [10.0, 10.0])
    assert math.isnan(result["directional_accuracy"])
    assert result["rmse"] == 0.0


def test_format_table_ratio_column():
    model = {"rmse": 2.0, "mae": 1.5, "mape": 3.0, "directional_accuracy": 0.6}
    naive = {"rmse": 4.0, "mae": 1.0, "mape": 0.0, "directional_accuracy": 0.5}
    lines = format_table(model, naive, title="val").splitlines()
    assert lines[0] == f"{'val':<12}{'model':>12}{'naive':>12}{'model/naive':>14}"
    assert [line.split() for line in lines[1:5]] == [
        ["RMSE", "2.0000", "4.0000", "0.500"],
        ["MAE", "1.5000", "1.0000", "1.500"],
        ["MAPE", "%", "3.000", "0.000", "nan"],  # naive 0: no ratio
        ["Direction", "0.600", "0.500", "1.200"],
    ]
    assert all(len(line) == 50 for line in lines[:5])  # 12 + 12 + 12 + 14
    assert (
        lines[5] == "(naive = tomorrow's price is today's; its direction = always up)"
    )


# ------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    "n, level, rank",
    [
        (9, 0.8, 8),  # ceil(10 * 0.8) = 8
        (9, 0.95, 9),  # ceil(10 * 0.95) = ceil(9.5) = 10, capped at 9
        (3, 0.95, 3),  # ceil(4 * 0.95) = ceil(3.8) = 4, capped at 3
        (3, 0.8, 3),  # ceil(4 * 0.8) = ceil(3.2) = 4, capped at 3
        (4, 0.8, 4),  # ceil(5 * 0.8) = 4 exactly, no rounding up
        (19, 0.95, 19),  # ceil(20 * 0.95) = 19 exactly
        (20, 0.8, 17),  # ceil(21 * 0.8) = ceil(16.8) = 17
        (20, 0.95, 20),  # ceil(21 * 0.95) = ceil(19.95) = 20
        (1, 0.8, 1),  # ceil(2 * 0.8) = 2, capped at 1
        (10, 0.5, 6),  # ceil(11 * 0.5) = ceil(5.5) = 6
        (12, 0.8, 11),  # ceil(13 * 0.8) = ceil(10.4) = 11, not rounded to 10
        (50, 0.95, 49),  # ceil(51 * 0.95) = ceil(48.45) = 49
    ],
)
def test_conformal_quantile_picks_the_exact_rank(n, level, rank):
    # residuals 10, 20, ..., 10n, shuffled: the k-th smallest is 10k
    residuals = np.random.default_rng(n).permutation(np.arange(1, n + 1) * 10.0)
    assert conformal_quantile(residuals, level) == 10.0 * rank


def test_conformal_quantile_n9_at_08_is_the_8th_smallest():
    residuals = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0]
    assert conformal_quantile(residuals, 0.8) == 8.0
    assert conformal_quantile(residuals, 0.95) == 9.0


def test_conformal_quantile_counts_ties_as_separate_residuals():
    # sorted 1, 1, 1, 5: the 4th smallest (ceil(5 * 0.8) = 4) is 5
    assert conformal_quantile([1.0, 5.0, 1.0, 1.0], 0.8) == 5.0


def test_half_widths_within_the_measured_steps():
    intervals = {"levels": {"0.8": [1.0, 2.0, 3.0], "0.95": [4.0, 5.0, 6.0]}}
    np.testing.assert_array_equal(half_widths(intervals, 0.8, 2), [1.0, 2.0])
    np.testing.assert_array_equal(half_widths(intervals, 0.95, 3), [4.0, 5.0, 6.0])


def test_half_widths_grow_as_sqrt_past_the_measured_steps():
    intervals = {"levels": {"0.8": [1.0, 2.0]}}
    widths = half_widths(intervals, 0.8, 8)
    # step h > 2: last measured (2.0) x sqrt(h / 2)
    expected = [1.0, 2.0] + [2.0 * math.sqrt(h / 2) for h in range(3, 9)]
    np.testing.assert_allclose(widths, expected, rtol=1e-12)
    assert widths[3] == pytest.approx(2.0 * math.sqrt(2))  # step 4: twice as far
    assert widths[7] == pytest.approx(4.0)  # step 8: four times as far
    assert widths.shape == (8,)


def test_half_widths_from_one_measured_step():
    widths = half_widths({"levels": {"0.95": [0.5]}}, 0.95, 4)
    np.testing.assert_allclose(
        widths, [0.5, 0.5 * math.sqrt(2), 0.5 * math.sqrt(3), 1.0]
    )


def alternating_prices(returns: int, step: float = 0.01, last: float = 100.0):
    """Prices whose daily log returns alternate +step, -step, ...; ends at `last`.

    With an even number of returns their mean is 0 and their standard
    deviation (ddof=0) is exactly `step`.
    """
    signs = np.where(np.arange(returns) % 2 == 0, 1.0, -1.0)
    logs = np.concatenate([[0.0], np.cumsum(signs * step)])
    return last * np.exp(logs - logs[-1])


def test_scale_of_is_last_price_times_volatility():
    prices = alternating_prices(VOLATILITY_DAYS, step=0.01, last=250.0)
    assert len(prices) == 21
    # std of twenty returns of +-0.01 = 0.01 (ddof=0); x 250
    np.testing.assert_allclose(scale_of(prices[None]), [2.5], rtol=1e-9)


def test_scale_of_uses_only_the_last_20_returns():
    recent = alternating_prices(VOLATILITY_DAYS, step=0.02, last=50.0)
    wild = np.array([1.0, 1000.0, 3.0])  # huge moves, but older than 20 returns
    windows = np.stack(
        [np.concatenate([wild, recent]), np.concatenate([[50.0] * 3, recent])]
    )
    np.testing.assert_allclose(scale_of(windows), [1.0, 1.0], rtol=1e-9)  # 50 x 0.02


def test_scale_of_shorter_window_uses_every_return():
    # two returns log(1.1) and log(0.9 / 1.1): std = half their difference
    window = np.array([[100.0, 110.0, 90.0]])
    half_gap = abs(math.log(1.1) - math.log(90 / 110)) / 2
    np.testing.assert_allclose(scale_of(window), [90.0 * half_gap], rtol=1e-12)


def test_scale_of_flat_prices_are_floored():
    windows = np.array([[20.0] * 30, [7.0] * 30])
    np.testing.assert_allclose(
        scale_of(windows), [20 * MIN_VOLATILITY, 7 * MIN_VOLATILITY]
    )


@pytest.mark.parametrize("length", [1, 2])
def test_scale_of_fewer_than_two_returns_is_floored(length):
    # one return (or none) has no spread: the floor gives the band its width
    window = np.array([[40.0, 80.0][:length]])
    expected = window[0, -1] * MIN_VOLATILITY
    np.testing.assert_allclose(scale_of(window), [expected])


def test_scale_of_accepts_one_window_as_1d():
    prices = alternating_prices(VOLATILITY_DAYS, step=0.01, last=300.0)
    scale = scale_of(prices)
    assert scale.shape == (1,)
    np.testing.assert_allclose(scale, [3.0], rtol=1e-9)


def test_scale_of_gives_one_scale_per_window():
    calm = alternating_prices(VOLATILITY_DAYS, step=0.01, last=100.0)
    rough = alternating_prices(VOLATILITY_DAYS, step=0.03, last=100.0)
    np.testing.assert_allclose(scale_of(np.stack([calm, rough])), [1.0, 3.0], rtol=1e-9)


class FlatEngine:
    """A fake engine that forecasts the context's last value for every step."""

    def __init__(self, horizon: int = 1):
        self.horizon = horizon
        self.calls = []

    def forecast(self, context, steps, block=1):
        self.calls.append((np.array(context), steps, block))
        return np.repeat(context[:, -1:], steps, axis=1)


def steady_prepared(n: int = 400):
    """Prices growing 0.1% a day, 100 x exp(0.001 t): every log return is 0.001."""
    values = 100.0 * np.exp(0.001 * np.arange(n))
    return prepare(
        pd.Series(values, index=pd.bdate_range("2021-01-04", periods=n)),
        PrepSettings(window=5),
    )


def test_conformal_intervals_by_hand():
    prepared = steady_prepared()
    split = prepared.split
    # 300 training points; 295 training windows, the newest 30 validate
    assert (split.n_train, split.val_targets) == (300, (270, 300))
    engine = FlatEngine(horizon=2)
    intervals = engine_intervals(engine, prepared, block=2)
    # steps: as many as leave at least MIN_RESIDUALS residuals inside the
    # training part: 300 - 270 - 20 + 1 = 11
    assert MIN_RESIDUALS == 20 and intervals["steps"] == 11
    # step h scores the origins whose day h is still a training day
    assert intervals["residuals_per_step"] == list(range(30, 19, -1))
    # a flat forecast misses by last x (exp(0.001 h) - 1) on every origin; the
    # returns have no spread, so the scale is the floor, last x 1e-4
    expected = [(math.exp(0.001 * h) - 1) / MIN_VOLATILITY for h in range(1, 12)]
    for level in ("0.8", "0.95"):
        np.testing.assert_allclose(intervals["levels"][level], expected, rtol=1e-6)
    assert intervals["block"] == 2
    ((context, steps, block),) = engine.calls  # the paths forecast in blocks of 2
    assert (context.shape, steps, block) == ((30, 5), 11, 2)
    np.testing.assert_allclose(
        prepared.scaler.inverse_transform(context[0]),
        100.0 * np.exp(0.001 * np.arange(265, 270)),
    )


def test_conformal_intervals_steps_are_capped():
    intervals = engine_intervals(FlatEngine(), steady_prepared(2000), 1, max_steps=3)
    assert intervals["steps"] == 3 and len(intervals["levels"]["0.8"]) == 3
    long = engine_intervals(FlatEngine(), steady_prepared(2000), 1)
    assert long["steps"] == MAX_INTERVAL_STEPS == 30


def test_conformal_intervals_keep_one_step_on_a_short_validation_slice():
    # 60 points: 4 validation windows, fewer than MIN_RESIDUALS, still 1 step
    intervals = engine_intervals(FlatEngine(), steady_prepared(60), 1)
    assert intervals["steps"] == 1
    assert intervals["residuals_per_step"] == [4]


def test_coverage_counts_the_boundary_as_covered():
    actual = [10.0, 10.0, 10.0, 10.0]
    predicted = [10.0, 11.0, 12.0, 7.0]  # misses 0, 1, 2, 3
    # half-width 2 x scale 1: misses of 0, 1 and exactly 2 are inside
    assert coverage(actual, predicted, [1.0] * 4, 2.0) == 0.75
    assert coverage(actual, predicted, [1.0] * 4, 1.999) == 0.5


def test_coverage_scales_the_band_day_by_day():
    actual = [10.0, 10.0, 10.0, 10.0]
    predicted = [10.0, 11.0, 12.0, 7.0]
    scale = [1.0, 0.25, 0.5, 2.0]  # bands of 2, 0.5, 1 and 4 with half-width 2
    # inside: day 1 (0 <= 2) and day 4 (3 <= 4); outside: 1 > 0.5, 2 > 1
    assert coverage(actual, predicted, scale, 2.0) == 0.5


# ----------------------------------------------------------------- RMSE by step


def test_rmse_by_step_by_hand():
    predicted = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    actual = np.zeros((3, 2))
    # step 1: sqrt((1 + 9 + 0) / 3); step 2: sqrt((4 + 16 + 0) / 3)
    np.testing.assert_allclose(
        _rmse_by_step(predicted, actual), [math.sqrt(10 / 3), math.sqrt(20 / 3)]
    )


class LinearEngine:
    """A fake engine: each step adds `slope` prices to the context's last price.

    Works in scaled units as a real engine does: a price step of 1 is
    `scaler.scale_` scaled units (the "level"/"delta" scalers are affine).
    Records every call so tests can check which origins were forecast.
    """

    def __init__(self, scaler, horizon: int, slopes: dict[int, float]):
        self.horizon = horizon
        self.unit = scaler.scale_
        self.slopes = slopes  # block -> price change per step
        self.calls = []

    def forecast(self, context, steps, block=1):
        self.calls.append((np.array(context), steps, block))
        ahead = np.arange(1, steps + 1) * self.slopes[block] * self.unit
        return context[:, -1:] + ahead[None, :]


def line_prepared(n: int = 60, horizon: int = 1):
    """Prices 100, 101, ..., 100 + n - 1 on business days, window 5."""
    prices = pd.Series(
        100.0 + np.arange(n), index=pd.bdate_range("2021-01-04", periods=n)
    )
    return prepare(
        prices, PrepSettings(window=5, horizon=horizon, representation="delta")
    )


def test_step_errors_recursive_and_naive_by_hand():
    prepared = line_prepared()
    assert prepared.split.n_train == 45  # int(60 x 0.75)
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 3.0})
    table = step_errors(engine, prepared, steps=3)
    assert list(table.columns) == ["step", "recursive", "naive"]
    np.testing.assert_array_equal(table["step"], [1, 2, 3])
    # prices rise 1 a day; the engine says 3 a day: off by 2h at step h on
    # every origin. Naive stays at the last price: off by h.
    np.testing.assert_allclose(table["recursive"], [2.0, 4.0, 6.0], rtol=1e-9)
    np.testing.assert_allclose(table["naive"], [1.0, 2.0, 3.0], rtol=1e-12)


def test_step_errors_scores_only_origins_whose_path_is_in_the_test_part():
    prepared = line_prepared()
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 1.0})
    table = step_errors(engine, prepared, steps=3)
    ((context, steps, block),) = engine.calls
    assert (steps, block) == (3, 1)
    # first targets t = 45 .. 57: a path from t = 58 would end at 60, past the data
    assert context.shape == (13, 5)
    np.testing.assert_allclose(
        prepared.scaler.inverse_transform(context[0]), [140, 141, 142, 143, 144]
    )
    np.testing.assert_allclose(
        prepared.scaler.inverse_transform(context[-1]), [152, 153, 154, 155, 156]
    )
    np.testing.assert_allclose(table["recursive"], [0.0, 0.0, 0.0], atol=1e-9)


def test_step_errors_adds_direct_for_a_multi_step_engine():
    prepared = line_prepared(horizon=3)
    engine = LinearEngine(prepared.scaler, horizon=3, slopes={1: 3.0, 3: 0.5})
    table = step_errors(engine, prepared, steps=4)
    assert list(table.columns) == ["step", "recursive", "direct", "naive"]
    assert [call[2] for call in engine.calls] == [1, 3]  # recursive, then direct
    np.testing.assert_allclose(table["recursive"], [2.0, 4.0, 6.0, 8.0], rtol=1e-9)
    np.testing.assert_allclose(table["direct"], [0.5, 1.0, 1.5, 2.0], rtol=1e-9)
    np.testing.assert_allclose(table["naive"], [1.0, 2.0, 3.0, 4.0], rtol=1e-12)


def test_step_errors_naive_rmse_averages_over_origins():
    # prices alternate 100, 102, 100, 102, ...: naive is off by 2 at odd steps
    # and exact at even steps, on every origin
    n = 60
    values = 100.0 + 2.0 * (np.arange(n) % 2)
    prepared = prepare(
        pd.Series(values, index=pd.bdate_range("2021-01-04", periods=n)),
        PrepSettings(window=5),
    )
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 0.0})
    table = step_errors(engine, prepared, steps=4)
    np.testing.assert_allclose(table["naive"], [2.0, 0.0, 2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(table["recursive"], [2.0, 0.0, 2.0, 0.0], atol=1e-9)


def test_step_errors_empty_when_the_test_part_is_shorter_than_the_path():
    prepared = line_prepared()  # 15 test days
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 1.0})
    table = step_errors(engine, prepared, steps=16)
    assert table.empty
    assert list(table.columns) == ["step", "recursive", "naive"]
    assert engine.calls == []


def test_damp_drift_scales_the_move_from_the_last_price():
    last = np.array([[100.0]])
    path = np.array([[102.0, 104.0]])
    np.testing.assert_allclose(damp_drift(path, last, 0.5, log=False), [[101, 102]])
    np.testing.assert_allclose(damp_drift(path, last, 0.0, log=True), [[100, 100]])
    halfway = damp_drift(path, last, 0.5, log=True)
    np.testing.assert_allclose(halfway, 100 * np.sqrt(path / 100))
    np.testing.assert_allclose(damp_drift(path, last, 1.0, log=True), path)


def test_choose_drift_reads_validation_origins_only(monkeypatch):
    """The engine says +3 a day where prices rise 1: 1/3 of its move is right,
    and 0.25 is the nearest candidate, used only when the switch allows; only
    training-part paths are read."""
    prepared = line_prepared(n=300)
    split = prepared.split
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 3.0})
    chosen = choose_drift(engine, prepared, steps=3)
    assert chosen["best"] == 0.25 and chosen["weight"] == 0.0  # zero drift kept
    monkeypatch.setattr(drift, "KEEP_SIGNIFICANT_DRIFT", True)
    assert choose_drift(engine, prepared, steps=3)["weight"] == 0.25
    assert chosen["origins"] == split.n_train - 3 + 1 - split.val_targets[0]
    context = engine.calls[0][0]
    last_input = prepared.scaler.inverse_transform(context[-1])[-1]
    assert last_input + 3 <= prepared.prices[split.n_train - 1]  # no test day


def test_choose_drift_keeps_zero_unless_validation_shows_a_gain():
    """A drift that helps on validation by chance is not kept: prices that
    wander with no trend, an engine that drifts up."""
    rng = np.random.default_rng(4)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    prepared = prepare(
        pd.Series(values, index=pd.bdate_range("2021-01-04", periods=400)),
        PrepSettings(window=5, representation="delta"),
    )
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 0.01})
    chosen = choose_drift(engine, prepared, steps=5)
    assert chosen["weight"] == 0.0
    assert chosen["dm_p_value"] is None or chosen["dm_p_value"] >= 0.05


def test_step_errors_damped_beside_undamped_by_hand():
    prepared = line_prepared()
    engine = LinearEngine(prepared.scaler, horizon=1, slopes={1: 3.0})
    table = step_errors(engine, prepared, steps=3, drift=0.5)
    assert list(table.columns) == ["step", "recursive", "undamped", "naive"]
    # damped: 1.5 a day against 1: off by h / 2; undamped: off by 2h
    np.testing.assert_allclose(table["recursive"], [0.5, 1.0, 1.5], rtol=1e-9)
    np.testing.assert_allclose(table["undamped"], [2.0, 4.0, 6.0], rtol=1e-9)
