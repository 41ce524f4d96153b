"""Tests for forecaster/train/bptt*.py: BPTT vs finite differences and GradientTape."""

import numpy as np
import pytest

from forecaster.errors import ForecasterError
from forecaster.train import bptt_check
from forecaster.train.bptt import (
    RNNParams,
    forward,
    gradient_norms_by_lag,
    loss_and_gradients,
    mse_loss,
)
from forecaster.train.bptt_check import (
    TOLERANCE,
    check_cell,
    finite_difference_gradients,
    float64_model,
    relative_error,
    run_check,
    tape_gradients,
)
from forecaster.train.bptt_network import Network, gradient_norms_by_distance

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


# --------------------------------------------------------------------------
# Every cell the factory builds: stacked, bidirectional, through the Dense head

CELLS = ("lstm", "gru", "rnn")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """(cell, bidirectional) -> (float64 Keras model, Network read from its file)."""
    directory = tmp_path_factory.mktemp("bptt")
    models = {}
    for cell in CELLS:
        for bidirectional in (False, True):
            model = float64_model(cell, bidirectional, seed=3)
            path = directory / f"{cell}-{bidirectional}.keras"
            model.save(path)
            models[cell, bidirectional] = model, Network.load(path)
    return models


def _batch(seed=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 2))


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_passes_the_check_against_both_references(cell, tmp_path):
    errors = check_cell(cell, tmp_path)
    assert set(errors) == {"finite differences", "GradientTape"}
    assert max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", (False, True))
def test_network_gradients_match_gradient_tape(saved_models, cell, bidirectional):
    model, network = saved_models[cell, bidirectional]
    x, y = _batch()
    ours = network.gradients(x, y)
    weights, inputs = tape_gradients(model, x, y)
    assert len(ours.weights) == len(weights) == len(model.trainable_weights)
    for mine, theirs in zip(ours.weights, weights, strict=True):
        assert np.linalg.norm(mine) > 1e-3  # every weight carries gradient
        assert relative_error(mine, theirs) < 1e-10
    assert relative_error(ours.inputs, inputs) < 1e-10


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", (False, True))
def test_network_forward_is_the_reference_forward(saved_models, cell, bidirectional):
    model, network = saved_models[cell, bidirectional]
    x, _ = _batch()
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(network.predict(x), expected, rtol=1e-12, atol=1e-12)


def test_float64_model_is_float64_after_a_float32_model_was_built():
    keras = pytest.importorskip("keras")
    keras.layers.Dense(1)(np.zeros((1, 1), "float32"))  # caches the dtype policy
    model = float64_model("rnn", bidirectional=False)
    assert {w.dtype for w in model.weights} == {"float64"}
    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_input_gradient_of_a_gru_matches_central_differences(saved_models):
    _, network = saved_models["gru", True]
    x, y = _batch()
    _, numeric = finite_difference_gradients(network, x, y)
    assert relative_error(network.gradients(x, y).inputs, numeric) < 1e-7


def test_relative_error_is_zero_for_two_zero_arrays_and_symmetric():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.1])
    assert relative_error(a, b) == pytest.approx(relative_error(b, a))
    assert relative_error(a, b) == pytest.approx(0.1 / np.linalg.norm(b))


def test_norms_by_distance_count_back_from_the_last_step(saved_models):
    _, network = saved_models["lstm", False]
    x, y = _batch()
    norms = gradient_norms_by_distance(network, x, y)
    per_window = network.gradients(x, y).inputs * len(x)
    expected_last = np.linalg.norm(per_window[:, -1], axis=1).mean()
    expected_first = np.linalg.norm(per_window[:, 0], axis=1).mean()
    assert norms.shape == (6,)
    assert norms[0] == pytest.approx(expected_last)
    assert norms[-1] == pytest.approx(expected_first)


def test_check_fails_above_the_tolerance(monkeypatch):
    monkeypatch.setattr(bptt_check, "TOLERANCE", 0.0)
    lines, passed = run_check(cells=("rnn",))
    assert not passed
    assert lines[1].startswith("rnn   finite differences")
    assert "FAIL (tolerance 0)" in lines[1]


def test_check_command_exits_non_zero_on_failure(monkeypatch, capsys):
    monkeypatch.setattr(bptt_check, "run_check", lambda: (["rnn  FAIL"], False))
    assert bptt_check.main(["--check"]) == 1
    monkeypatch.setattr(bptt_check, "run_check", lambda: (["rnn  ok"], True))
    assert bptt_check.main(["--check"]) == 0
    assert "rnn  ok" in capsys.readouterr().out


def test_network_rejects_the_wrong_number_of_weights(saved_models):
    _, network = saved_models["rnn", False]
    with pytest.raises(
        ForecasterError,
        match=r"weights must hold 8 arrays for these layers\. Received: "
        r"len\(weights\)=7",
    ):
        Network(network.specs, network.weights[:-1], network.n_features)


def test_network_rejects_windows_of_the_wrong_width(saved_models):
    _, network = saved_models["rnn", False]
    with pytest.raises(
        ForecasterError,
        match=r"x must have shape \(batch, window, 2\)\. Received: x.shape=\(4, 6, 1\)",
    ):
        network.predict(np.zeros((4, 6, 1)))
