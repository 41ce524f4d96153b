"""Diebold-Mariano with the HLN correction: hand calculations and statsmodels."""

import math

import numpy as np
import pytest

from forecaster.errors import ForecasterError
from forecaster.evaluate.significance import DieboldMariano, diebold_mariano, verdict

LOSS_A, LOSS_B = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]


def t3_two_sided_p(t: float) -> float:
    """Two-sided p of Student-t with 3 df, from its closed-form CDF."""
    root = math.sqrt(3)
    cdf = 0.5 + (t / (root * (1 + t * t / 3)) + math.atan(t / root)) / math.pi
    return 2 * (1 - cdf)


def test_one_step_by_hand():
    # d = -1, 0, 1, 2: mean 0.5, gamma_0 = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25,
    # DM = 0.5 / sqrt(1.25 / 4); HLN factor sqrt((4 + 1 - 2) / 4) = sqrt(0.75);
    # statistic = sqrt(0.6)
    result = diebold_mariano(LOSS_A, LOSS_B)
    assert result.statistic == pytest.approx(math.sqrt(0.6), rel=1e-12)
    assert result.p_value == pytest.approx(t3_two_sided_p(math.sqrt(0.6)), rel=1e-12)
    assert result.p_value == pytest.approx(0.4950253, abs=1e-7)
    assert result.ratio == pytest.approx(2.5 / 2)
    assert (result.n, result.horizon) == (4, 1)


def test_two_step_by_hand():
    # gamma_1 = ((-0.5)(-1.5) + (0.5)(-0.5) + (1.5)(0.5)) / 4 = 0.3125,
    # V = 1.25 + 2 x 0.3125 = 1.875; DM = 0.5 / sqrt(1.875 / 4);
    # HLN factor sqrt((4 + 1 - 4 + 2 x 1 / 4) / 4) = sqrt(0.375): statistic sqrt(0.2)
    result = diebold_mariano(LOSS_A, LOSS_B, horizon=2)
    assert result.statistic == pytest.approx(math.sqrt(0.2), rel=1e-12)
    assert result.p_value == pytest.approx(t3_two_sided_p(math.sqrt(0.2)), rel=1e-12)


def test_matches_statsmodels_at_one_step():
    from statsmodels.tsa.stattools import diebold_mariano_test

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 60)) ** 2
    ours = diebold_mariano(a, b)
    theirs = diebold_mariano_test(
        np.zeros(60), a, b, criterion=lambda y, f: f, lags=0, harvey_adj=True
    )
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-10)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-10)


def test_swapping_the_losses_flips_the_sign_only():
    rng = np.random.default_rng(4)
    a, b = rng.exponential(size=(2, 40))
    forward, backward = diebold_mariano(a, b, 3), diebold_mariano(b, a, 3)
    assert backward.statistic == pytest.approx(-forward.statistic)
    assert backward.p_value == pytest.approx(forward.p_value)


def test_identical_losses_are_no_difference():
    result = diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (result.statistic, result.p_value, result.ratio) == (0.0, 1.0, 1.0)


def test_a_large_consistent_gain_is_significant():
    rng = np.random.default_rng(5)
    b = rng.exponential(size=500) + 1.0
    result = diebold_mariano(0.8 * b, b)
    assert result.statistic < 0 and result.p_value < 1e-10


def test_verdict_needs_significance_for_a_lower_ratio():
    close = DieboldMariano(-1.2, 0.23, 0.97, 300, 1)
    assert verdict(close, "conformal", "GARCH") == (
        "no significant difference between conformal and GARCH "
        "(mean loss ratio 0.970, DM p = 0.23)"
    )
    clear = DieboldMariano(3.1, 0.002, 1.09, 300, 1)
    assert verdict(clear, "conformal", "GARCH") == (
        "GARCH has significantly lower loss than conformal "
        "(mean loss ratio 1.090, DM p = 0.002)"
    )


def test_constant_difference_has_no_variance():
    with pytest.raises(ForecasterError, match=r"no positive long-run variance"):
        diebold_mariano([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss_a": [1.0, 2.0, 3.0], "loss_b": [1.0, 2.0]}, r"loss_b\.shape=\(2,\)$"),
        ({"loss_a": [1.0, 2.0], "loss_b": [1.0, 3.0]}, r"at least 3 .* n=2$"),
        (
            {"loss_a": LOSS_A, "loss_b": LOSS_B, "horizon": 4},
            r"^horizon must be in \[1, 3\]\. Received: horizon=4$",
        ),
        ({"loss_a": [1.0, np.nan, 2.0], "loss_b": [1.0] * 3}, r"must be finite"),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ForecasterError, match=message):
        diebold_mariano(**kwargs)
