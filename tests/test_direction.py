"""Direction scores: hand-computed Brier, log loss, base rate, bins and bootstrap."""

import json
import math

import numpy as np
import pytest

from forecaster.errors import ForecasterError
from forecaster.evaluate import direction
from forecaster.report.plots import plot_reliability

# ----------------------------------------------------------------- labels


def test_up_labels_and_moved_days_by_hand():
    actual, previous = [101.0, 99.0, 100.0, 100.5], [100.0, 100.0, 100.0, 100.0]
    np.testing.assert_array_equal(direction.up_labels(actual, previous), [1, 0, 0, 1])
    np.testing.assert_array_equal(
        direction.moved_days(actual, previous), [True, True, False, True]
    )


def test_base_rate_counts_moved_days_only():
    # moves +1, 0, -1, +2, +1: three up of four moved
    assert direction.base_rate([100.0, 101.0, 101.0, 100.0, 102.0, 103.0]) == 0.75


def test_base_rate_needs_a_move():
    with pytest.raises(ForecasterError, match=r"train_prices must move at least once"):
        direction.base_rate([5.0, 5.0, 5.0])


# ----------------------------------------------------------------- scores


def test_brier_by_hand():
    got = direction.brier([0.8, 0.3, 0.5, 0.0], [1, 1, 0, 0])
    np.testing.assert_allclose(got, [0.04, 0.49, 0.25, 0.0])


def test_log_loss_by_hand_and_clipped():
    got = direction.log_loss([0.8, 0.3, 0.5], [1, 0, 1])
    np.testing.assert_allclose(got, [-math.log(0.8), -math.log(0.7), math.log(2)])
    certain_and_wrong = direction.log_loss([0.0, 1.0], [1, 0], eps=1e-3)
    np.testing.assert_allclose(certain_and_wrong, [-math.log(1e-3)] * 2)
    assert direction.log_loss([1.0], [1])[0] == pytest.approx(1e-6)


def test_reliability_bins_by_hand():
    table = direction.reliability([0.1, 0.2, 0.7, 1.0], [0, 1, 1, 1], bins=4)
    # bins [0, .25), [.25, .5), [.5, .75), [.75, 1]: 1.0 falls in the last
    np.testing.assert_allclose(table["bin_lower"], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(table["bin_upper"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(table["count"], [2, 0, 1, 1])
    np.testing.assert_allclose(table["mean_forecast"], [0.15, np.nan, 0.7, 1.0])
    np.testing.assert_allclose(table["observed_frequency"], [0.5, np.nan, 1, 1])


def test_calibrated_forecast_lies_on_the_diagonal():
    rng = np.random.default_rng(7)
    p_up = rng.uniform(size=100_000)
    up = (rng.uniform(size=p_up.size) < p_up).astype(float)
    table = direction.reliability(p_up, up)
    # about 10,000 days a bin: the observed share's standard error is <= 0.005
    gap = (table["observed_frequency"] - table["mean_forecast"]).abs()
    assert gap.max() < 0.02
    assert table["count"].sum() == p_up.size


# -------------------------------------------------------------- bootstrap


def test_block_means_match_joined_blocks():
    difference = np.random.default_rng(1).normal(size=23)
    got = direction._block_means(difference, block=10, resamples=50, seed=3)
    # the same draws joined explicitly: 3 blocks of 10, cut to 23 days
    starts = np.random.default_rng(3).integers(0, 14, (50, 3))
    index = (starts[:, :, None] + np.arange(10)).reshape(50, -1)[:, :23]
    np.testing.assert_allclose(got, difference[index].mean(axis=1), atol=1e-14)


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    a, b = rng.exponential(size=(2, 300))
    first = direction.bootstrap_interval(a, b)
    assert direction.bootstrap_interval(a, b) == first
    assert direction.bootstrap_interval(a, b, seed=1) != first
    assert first[0] < np.mean(a - b) < first[1]


def test_bootstrap_of_a_constant_shift_is_that_shift():
    b = np.linspace(0.0, 1.0, 50)
    assert direction.bootstrap_interval(b + 0.25, b) == pytest.approx((0.25, 0.25))


def test_bootstrap_contains_the_true_mean_of_correlated_differences():
    # AR(1) differences, phi 0.5, around a true mean of 0.1
    rng = np.random.default_rng(5)
    noise = np.zeros(2000)
    for day in range(1, 2000):
        noise[day] = 0.5 * noise[day - 1] + rng.normal(scale=0.2)
    lower, upper = direction.bootstrap_interval(0.1 + noise, np.zeros(2000))
    assert lower < 0.1 < upper
    assert upper - lower < 0.05


def test_bootstrap_rejects_a_block_longer_than_the_days():
    with pytest.raises(
        ForecasterError,
        match=r"block must be in \[1, 5\] \(the number of days\)\. Received: block=6",
    ):
        direction.bootstrap_interval(np.ones(5), np.zeros(5), block=6)


# ---------------------------------------------------------------- summary


def test_constant_base_rate_forecast_has_ratio_one():
    rng = np.random.default_rng(3)
    previous = 100 + rng.normal(size=40)
    actual = previous + rng.normal(size=40)
    scores = direction.direction_scores(np.full(40, 0.55), actual, previous, 0.55)
    assert scores["brier_ratio"] == 1.0
    assert scores["log_loss_ratio"] == 1.0
    assert scores["dm_p_value"] == 1.0
    assert (scores["brier_difference_lower"], scores["brier_difference_upper"]) == (
        0.0,
        0.0,
    )
    assert scores["verdict"].startswith("no significant difference")


def test_scores_by_hand_skip_the_unmoved_day():
    previous = [10.0, 10.0, 10.0, 10.0, 10.0]
    actual = [11.0, 9.0, 10.0, 9.5, 9.0]  # up, down, unmoved, down, down
    p_up = [0.6, 0.4, 0.9, 0.5, 0.2]
    scores = direction.direction_scores(p_up, actual, previous, 0.5, name="lstm")
    assert (scores["days"], scores["unmoved_days"]) == (4, 1)
    assert scores["bootstrap_block"] == 4  # fewer days than a block: one block
    # moved days: Brier 0.16, 0.16, 0.25, 0.04 vs 0.25 each
    assert scores["brier"] == pytest.approx(0.61 / 4)
    assert scores["brier_base_rate"] == pytest.approx(0.25)
    assert scores["brier_ratio"] == pytest.approx(0.61)
    assert scores["log_loss_base_rate"] == pytest.approx(math.log(2))
    # 0.5 counts as up: right, right, wrong, right; always up: 1 of 4
    assert scores["accuracy"] == 0.75
    assert scores["accuracy_always_up"] == 0.25
    assert "lstm" in scores["verdict"]


def test_scores_are_plain_json_values():
    rng = np.random.default_rng(4)
    previous = 100 + rng.normal(size=60)
    actual = previous + rng.normal(size=60)
    scores = direction.direction_scores(rng.uniform(size=60), actual, previous, 0.5)
    assert all(type(v) in (float, int, str) for v in scores.values())
    assert json.loads(json.dumps(scores)) == scores


def test_informative_forecast_beats_the_base_rate():
    rng = np.random.default_rng(6)
    p_up = rng.uniform(size=2000)
    previous = np.full(2000, 100.0)
    actual = previous + np.where(rng.uniform(size=2000) < p_up, 1.0, -1.0)
    scores = direction.direction_scores(p_up, actual, previous, 0.5)
    # expected Brier 1/6 against 1/4
    assert scores["brier_ratio"] == pytest.approx(2 / 3, abs=0.05)
    assert scores["dm_p_value"] < 0.05
    assert scores["verdict"].startswith("model has significantly lower loss")
    assert scores["brier_difference_upper"] < 0
    assert scores["accuracy"] > scores["accuracy_always_up"]


def test_table_says_no_significant_difference_for_a_small_edge():
    # 6 up, 4 down at p 0.55: Brier 0.2425 against 0.25, ratio 0.97, p large
    previous = np.full(10, 100.0)
    actual = previous + np.array([1, -1, 1, 1, -1, 1, -1, 1, 1, -1])
    scores = direction.direction_scores(np.full(10, 0.55), actual, previous, 0.5)
    assert scores["brier_ratio"] == pytest.approx(0.97)
    assert scores["dm_p_value"] >= 0.05
    table = direction.format_direction_table(scores)
    lines = table.splitlines()
    assert lines[0].split() == ["direction", "model", "base", "rate", "ratio"]
    assert lines[1].split() == ["Brier", "0.2425", "0.2500", "0.970"]
    assert lines[3].split() == ["Accuracy", "0.600", "0.600", "1.000"]
    assert lines[4].startswith(
        "Brier: no significant difference between model and base rate"
    )
    assert "95% block-bootstrap interval of the difference [" in lines[4]


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: direction.brier([0.2, 1.2], [0, 1]),
            r"p_up must be in \[0, 1\]\. Received: p_up=1\.2 on day 1",
        ),
        (
            lambda: direction.brier([0.2, np.nan], [0, 1]),
            r"p_up must be in \[0, 1\]\. Received: p_up=nan",
        ),
        (
            lambda: direction.brier([0.2, 0.3], [0, 1, 1]),
            r"p_up and up must have the same length\. .*up\.shape=\(3,\)",
        ),
        (
            lambda: direction.log_loss([0.2], [2]),
            r"up must hold only 0 and 1\. Received: up=2\.0",
        ),
        (
            lambda: direction.log_loss([0.2], [1], eps=0.5),
            r"eps must be in \(0, 0\.5\)\. Received: eps=0\.5",
        ),
        (
            lambda: direction.reliability([0.2], [1], bins=0),
            r"bins must be an integer >= 1\. Received: bins=0",
        ),
        (
            lambda: direction.up_labels([1.0, 2.0], [1.0]),
            r"arrays must have the same length\. .*previous\.shape=\(1,\)",
        ),
        (
            lambda: direction.brier(np.ones((2, 2)), np.ones((2, 2))),
            r"p_up must be 1-d, one value per day\. Received: p_up\.shape=\(2, 2\)",
        ),
        (
            lambda: direction.base_rate([1.0, np.inf]),
            r"train_prices must be finite\. Received: train_prices=inf on day 1",
        ),
        (
            lambda: direction.direction_scores([0.5] * 4, [1, 2, 3, 4], [0] * 4, 1.5),
            r"train_rate must be in \[0, 1\]\. Received: train_rate=1\.5",
        ),
        (
            lambda: direction.direction_scores([0.5] * 3, [1, 2, 3, 4], [0] * 4, 0.5),
            r"p_up must have one value per day of actual\. .*p_up\.shape=\(3,\)",
        ),
        (
            lambda: direction.direction_scores([0.5] * 4, [1, 1, 3, 4], [1] * 4, 0.5),
            r"at least 3 days that moved\. Received: 2 of 4 days moved",
        ),
        (
            lambda: direction.bootstrap_interval([1, 2], [1, 2], level=1.0, block=1),
            r"level must be in \(0, 1\)\. Received: level=1\.0",
        ),
    ],
)
def test_bad_input_names_the_argument_and_value(call, message):
    with pytest.raises(ForecasterError, match=message):
        call()


def test_score_frame_puts_each_score_beside_its_benchmark():
    scores = {
        "brier": 0.24,
        "brier_base_rate": 0.25,
        "log_loss": 0.68,
        "log_loss_base_rate": 0.0,
        "accuracy": 0.55,
        "accuracy_always_up": 0.5,
    }
    frame = direction.score_frame(scores)
    assert list(frame.index) == ["brier", "log_loss", "accuracy"]
    assert list(frame.columns) == ["model", "benchmark", "model/benchmark"]
    assert frame.loc["brier", "model/benchmark"] == pytest.approx(0.96)
    assert frame.loc["accuracy", "benchmark"] == 0.5
    assert math.isnan(frame.loc["log_loss", "model/benchmark"])


def test_format_reliability_shows_only_the_bins_with_days():
    table = direction.reliability([0.1, 0.2, 0.7, 1.0], [0, 1, 1, 1], bins=4)
    lines = direction.format_reliability(table).splitlines()
    assert lines[0].split() == ["P(up)", "bin", "mean", "P(up)", "up", "share", "days"]
    assert lines[1].split() == ["0.00", "to", "0.25", "0.150", "0.500", "2"]
    assert [line.split()[0] for line in lines[2:4]] == ["0.50", "0.75"]
    assert len(lines) == 5 and lines[-1].startswith("(calibrated:")


# ------------------------------------------------------------------- plot


def test_plot_reliability_draws_and_writes_only_when_asked(tmp_path):
    from matplotlib.figure import Figure

    table = direction.reliability([0.1, 0.2, 0.7, 1.0], [0, 1, 1, 1], bins=4)
    fig = plot_reliability(table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2  # the diagonal and the forecast
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [0.15, 0.7, 1.0])
    assert len(ax.collections[0].get_offsets()) == 3  # the empty bin is left out
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "reliability.png"
    assert plot_reliability(table, ax=ax, path=path) is fig
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
