"""Tests for forecaster/bptt.py: BPTT gradients against finite differences."""

import numpy as np
import pytest

from forecaster.bptt import (
    RNNParams,
    forward,
    gradient_norms_by_lag,
    loss_and_gradients,
    mse_loss,
)
from forecaster.errors import ForecasterError

WEIGHTS = ("input_kernel", "recurrent_kernel", "bias", "readout_kernel", "readout_bias")


def _problem(time=6, recurrent_scale=0.9, seed=0):
    """A tiny batch: 3 windows of `time` steps, 2 inputs, 4 units, 2 outputs."""
    params = RNNParams.random(
        n_inputs=2, units=4, n_outputs=2, recurrent_scale=recurrent_scale, seed=seed
    )
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(3, time, 2))
    y = rng.normal(size=(3, 2))
    return params, x, y


def _central_differences(loss_of, array, step=1e-6):
    """dL/d(array) by (L(a + step) - L(a - step)) / (2 step), one entry at a time.

    `loss_of()` must read `array`, which is perturbed in place and restored.
    """
    gradient = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + step
        loss_plus = loss_of()
        array[index] = original - step
        loss_minus = loss_of()
        array[index] = original
        gradient[index] = (loss_plus - loss_minus) / (2 * step)
    return gradient


def _relative_error(analytic, numeric):
    return np.linalg.norm(analytic - numeric) / (
        np.linalg.norm(analytic) + np.linalg.norm(numeric)
    )


@pytest.mark.parametrize("weight", WEIGHTS)
def test_weight_gradient_matches_central_differences(weight):
    params, x, y = _problem()
    _, gradients = loss_and_gradients(params, x, y)
    numeric = _central_differences(
        lambda: mse_loss(params, x, y), getattr(params, weight)
    )
    assert np.abs(getattr(gradients, weight)).max() > 1e-4  # a real test, not 0 == 0
    assert _relative_error(getattr(gradients, weight), numeric) < 1e-6


def test_input_gradient_matches_central_differences():
    params, x, y = _problem()
    _, gradients = loss_and_gradients(params, x, y)
    numeric = _central_differences(lambda: mse_loss(params, x, y), x)
    assert _relative_error(gradients.inputs, numeric) < 1e-6


def test_loss_is_the_mean_squared_error_of_the_forecast():
    params, x, y = _problem()
    loss, _ = loss_and_gradients(params, x, y)
    assert loss == pytest.approx(mse_loss(params, x, y))
    assert loss > 0


def test_gradient_vanishes_going_back_through_a_long_window():
    # Every singular value of W_h is 0.5 and tanh' <= 1, so each step back
    # multiplies the norm of dL/dh by at most 0.5.
    params, x, y = _problem(time=100, recurrent_scale=0.5)
    norms = gradient_norms_by_lag(params, x, y)
    assert norms.shape == (100,)
    assert np.all(norms[1:] < norms[:-1])
    assert np.all(norms[1:] <= 0.5 * norms[:-1] * (1 + 1e-12))
    assert norms[-1] < 1e-25 * norms[0]


def test_input_gradient_vanishes_too():
    params, x, y = _problem(time=100, recurrent_scale=0.5)
    norms = gradient_norms_by_lag(params, x, y, wrt="inputs")
    assert norms[-1] < 1e-20 * norms[0]


def test_last_step_gradient_comes_straight_from_the_readout():
    params, x, y = _problem()
    _, gradients = loss_and_gradients(params, x, y)
    y_hat, _ = forward(params, x)
    d_y_hat = 2 * (y_hat - y) / y.size
    np.testing.assert_allclose(
        gradients.hidden[:, -1], d_y_hat @ params.readout_kernel.T
    )


def test_wrong_input_shape_is_reported():
    params, x, y = _problem()
    with pytest.raises(
        ForecasterError,
        match=r"x must have shape \(batch, time, 2\) with time >= 1\. "
        r"Received: x.shape=\(3, 6\)",
    ):
        loss_and_gradients(params, x[:, :, 0], y)


def test_wrong_target_shape_is_reported():
    params, x, y = _problem()
    with pytest.raises(
        ForecasterError, match=r"y must have shape \(3, 2\) \(batch, n_outputs\)"
    ):
        loss_and_gradients(params, x, y[:, 0])


def test_unknown_gradient_target_lists_the_choices():
    params, x, y = _problem()
    with pytest.raises(
        ForecasterError, match="Unknown wrt 'weights': choose one of hidden, inputs."
    ):
        gradient_norms_by_lag(params, x, y, wrt="weights")


def test_random_params_reject_zero_units():
    with pytest.raises(ForecasterError, match="units must be at least 1. Received: "):
        RNNParams.random(n_inputs=1, units=0, n_outputs=1)
