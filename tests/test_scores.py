"""Proper scores against hand-computed values and independent integrals."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from forecaster.errors import ForecasterError
from forecaster.evaluate import scores


def crps_by_integral(cdf, y: float) -> float:
    """CRPS = integral of (F(x) - 1[x >= y])^2 dx, by quadrature."""
    below = integrate.quad(lambda x: cdf(x) ** 2, -np.inf, y, limit=200)[0]
    above = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, np.inf, limit=200)[0]
    return below + above


# ------------------------------------------------------------------ intervals


def test_coverage_and_width_by_hand():
    actual = [1.0, 2.0, 3.0, 4.0]
    lower, upper = [0.0, 2.5, 3.0, 0.0], [2.0, 3.0, 3.0, 3.0]
    # inside: 1 in [0, 2], 3 in [3, 3] (ends count); outside: 2 and 4
    assert scores.interval_coverage(actual, lower, upper) == 0.5
    assert scores.interval_width(lower, upper) == pytest.approx((2 + 0.5 + 0 + 3) / 4)


def test_interval_score_by_hand():
    # band [1, 3] at 80%: alpha 0.2, penalty 2 / 0.2 = 10 per unit outside
    got = scores.interval_score([2.0, 0.0, 4.0, 3.5], 1.0, 3.0, 0.8)
    np.testing.assert_allclose(got, [2.0, 12.0, 12.0, 7.0])


def test_interval_score_rejects_a_crossed_band():
    with pytest.raises(ForecasterError, match=r"lower must not exceed upper\. "):
        scores.interval_score([1.0], [2.0], [1.5], 0.8)


@pytest.mark.parametrize("level", [0, 1, 2, -0.5])
def test_level_outside_the_unit_interval_is_refused(level):
    with pytest.raises(
        ForecasterError,
        match=rf"^level must be in \(0, 1\)\. Received: level={level}$",
    ):
        scores.interval_score([1.0], [0.0], [2.0], level)


# ----------------------------------------------------------------------- CRPS


def test_crps_normal_at_the_centre():
    # 2 phi(0) - 1 / sqrt(pi) = 2 / sqrt(2 pi) - 1 / sqrt(pi)
    expected = 2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi)
    assert expected == pytest.approx(0.23369497725510913, abs=1e-15)
    assert scores.crps_normal(0.0, 0.0, 1.0) == pytest.approx(expected, abs=1e-12)


def test_crps_normal_scales_with_the_distribution():
    unit = scores.crps_normal(0.7, 0.0, 1.0)
    assert scores.crps_normal(10 + 3 * 0.7, 10.0, 3.0) == pytest.approx(3 * unit)


def test_crps_normal_matches_the_integral():
    got = scores.crps_normal(1.3, 1.0, 2.0)
    expected = crps_by_integral(lambda x: stats.norm.cdf((x - 1.0) / 2.0), 1.3)
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "df, y, location, scale", [(3, 0.7, 0.2, 1.5), (5, -2.0, 0, 1), (2.5, 4, 1, 0.5)]
)
def test_crps_student_t_matches_the_integral(df, y, location, scale):
    got = scores.crps_student_t(y, location, scale, df)
    expected = crps_by_integral(lambda x: stats.t.cdf((x - location) / scale, df), y)
    assert got == pytest.approx(expected, rel=1e-8)


def test_crps_student_t_approaches_the_normal_as_df_grows():
    normal = scores.crps_normal(0.5, 0.0, 1.0)
    gaps = [scores.crps_student_t(0.5, 0.0, 1.0, df) - normal for df in (3, 30, 3000)]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[2] < 1e-4


def test_crps_student_t_needs_df_above_one():
    with pytest.raises(ForecasterError, match=r"^df must be above 1 .*df=1\.0$"):
        scores.crps_student_t(0.0, 0.0, 1.0, 1.0)


def test_scale_must_be_positive():
    with pytest.raises(ForecasterError, match=r"^scale must be positive\. .*=0\.0$"):
        scores.crps_normal([0.0, 1.0], 0.0, [1.0, 0.0])


def test_mismatched_shapes_name_the_arguments():
    with pytest.raises(ForecasterError, match=r"actual\.shape=\(3,\), location"):
        scores.crps_normal([0.0, 1.0, 2.0], [0.0, 1.0], 1.0)


def test_crps_samples_by_hand():
    # samples {0, 2}, y = 1: mean |X - y| = 1; |x_i - x_j| sums to 4 over the
    # 2 ordered pairs (fair: 4 / (2 x 2) = 1) or the 4 pairs (4 / (2 x 4) = 0.5)
    assert scores.crps_samples([1.0], [[0.0, 2.0]])[0] == pytest.approx(0.0)
    assert scores.crps_samples([1.0], [[0.0, 2.0]], fair=False)[0] == pytest.approx(0.5)


def test_crps_samples_standard_form_is_the_empirical_cdf_integral():
    samples = np.array([0.3, -1.2, 2.0, 0.9, 0.0])
    expected = crps_by_integral(lambda x: np.mean(samples <= x), 0.4)
    got = scores.crps_samples([0.4], samples[None, :], fair=False)[0]
    assert got == pytest.approx(expected, abs=1e-6)


def test_crps_samples_converge_to_the_closed_form():
    actual = np.array([-1.5, 0.0, 0.3, 2.2])
    samples = np.random.default_rng(0).normal(size=(4, 20_000))
    np.testing.assert_allclose(
        scores.crps_samples(actual, samples),
        scores.crps_normal(actual, 0.0, 1.0),
        atol=0.01,
    )


def test_crps_samples_needs_two_per_day():
    with pytest.raises(ForecasterError, match=r"^samples needs at least 2 .* m=1$"):
        scores.crps_samples([0.0], [[1.0]])


def test_pinball_loss_by_hand():
    # tau 0.1, q 3: y = 1 below -> 0.9 x 2 = 1.8; y = 5 above -> 0.1 x 2 = 0.2
    got = scores.pinball_loss([1.0, 5.0], [[3.0], [3.0]], [0.1])
    np.testing.assert_allclose(got, [[1.8], [0.2]])


def test_crps_quantiles_on_a_fine_grid_approaches_the_closed_form():
    levels = np.arange(1, 100) / 100
    actual = np.array([-1.5, 0.0, 0.3, 2.2])
    quantiles = np.tile(stats.norm.ppf(levels), (4, 1))
    got = scores.crps_quantiles(actual, quantiles, levels)
    np.testing.assert_allclose(got, scores.crps_normal(actual, 0, 1), rtol=0.02)


def test_crps_quantiles_shape_is_checked():
    with pytest.raises(ForecasterError, match=r"quantiles must have shape \(n, k\)"):
        scores.crps_quantiles([0.0, 1.0], [[0.0, 1.0]], [0.1, 0.9])


# ------------------------------------------------------------------ log score


def test_log_scores_by_hand():
    # N(0, 1) at 0: log sqrt(2 pi); Cauchy (t, df 1) at 0: log pi
    assert scores.log_score_normal(0.0, 0.0, 1.0) == pytest.approx(
        0.5 * math.log(2 * math.pi)
    )
    assert scores.log_score_student_t(0.0, 0.0, 1.0, 1.0) == pytest.approx(
        math.log(math.pi)
    )
    # scale 2 at z = 1: log 2 + log sqrt(2 pi) + 1/2
    assert scores.log_score_normal(3.0, 1.0, 2.0) == pytest.approx(
        math.log(2) + 0.5 * math.log(2 * math.pi) + 0.5
    )


# ------------------------------------------------------------------------ PIT


def test_pit_values():
    assert scores.pit_normal(0.0, 0.0, 1.0) == pytest.approx(0.5)
    assert scores.pit_student_t(1.0, 0.0, 1.0, 1.0) == pytest.approx(0.75)


def test_pit_histogram_counts_ten_bins():
    counts = scores.pit_histogram([0.0, 0.05, 0.1, 0.95, 1.0, 0.55])
    np.testing.assert_array_equal(counts, [2, 1, 0, 0, 0, 1, 0, 0, 0, 2])


def test_pit_histogram_refuses_values_outside_the_unit_interval():
    with pytest.raises(ForecasterError, match=r"^pit values must be in \[0, 1\]\. "):
        scores.pit_histogram([0.5, 1.2])


def test_quantile_levels_of_the_two_bands():
    np.testing.assert_allclose(
        scores.quantile_levels((0.8, 0.95)), [0.025, 0.1, 0.5, 0.9, 0.975]
    )
