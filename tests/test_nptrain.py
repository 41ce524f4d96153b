"""Tests for forecaster/train/nptrain.py: the NumPy trainer tracks Keras per step."""

import json

import keras
import numpy as np
import pytest
from conftest import tiny_settings

from forecaster.cli.main import train_parser, train_settings
from forecaster.config import ModelSettings
from forecaster.errors import ForecasterError
from forecaster.model.choose import make_engine
from forecaster.model.keras_engine import load_keras_model
from forecaster.store.bundle import load_bundle
from forecaster.train.nptrain import (
    SGD,
    Adam,
    clip_by_norm,
    keras_network,
    make_optimizer,
    train_on_batches,
)
from forecaster.workflows.numpy_run import run_numpy_training

STEPS = 100
TRACKING = 1e-4  # largest relative gap between the two losses at any step


def _batches(seed=1, distinct=10, window=8, horizon=2):
    """STEPS batches of 8 windows: `distinct` random batches, cycled."""
    rng = np.random.default_rng(seed)
    batches = [
        (rng.normal(size=(8, window, 1)), rng.normal(size=(8, horizon)))
        for _ in range(distinct)
    ]
    return batches * (STEPS // distinct)


def _keras_optimizer(name, learning_rate, clipnorm):
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
    return keras.optimizers.SGD(learning_rate=learning_rate, clipnorm=clipnorm)


def _both_losses(cell, optimizer, learning_rate, clipnorm=None, bidirectional=False):
    """Keras' and the NumPy trainer's loss at each of STEPS steps, same start."""
    settings = ModelSettings(
        cell=cell, units=4, layers=2, bidirectional=bidirectional, loss="mse"
    )
    model, network = keras_network(settings, window=8, horizon=2, seed=0)
    model.compile(
        optimizer=_keras_optimizer(optimizer, learning_rate, clipnorm), loss="mse"
    )
    batches = _batches()
    keras_losses = [
        float(model.train_on_batch(x.astype("float32"), y.astype("float32")))
        for x, y in batches
    ]
    ours = train_on_batches(
        network, make_optimizer(optimizer, learning_rate, clipnorm), batches
    )
    return np.array(keras_losses), np.array(ours)


# every cell and both optimizers in the fast set; the other three pairs are slow
FAST_PAIRS = {("lstm", "adam"), ("gru", "sgd"), ("rnn", "sgd")}


@pytest.mark.parametrize(
    ("cell", "optimizer", "learning_rate"),
    [
        pytest.param(
            cell,
            optimizer,
            rate,
            marks=() if (cell, optimizer) in FAST_PAIRS else pytest.mark.slow,
        )
        for optimizer, rate in (("adam", 1e-2), ("sgd", 0.1))
        for cell in ("lstm", "gru", "rnn")
    ],
)
def test_numpy_trainer_tracks_keras_for_100_steps(cell, optimizer, learning_rate):
    keras_losses, ours = _both_losses(
        cell, optimizer, learning_rate, bidirectional=cell == "gru"
    )
    assert len(ours) == STEPS
    assert np.max(np.abs(ours - keras_losses) / keras_losses) < TRACKING
    # The weights moved: the last pass over the batches differs from the first.
    assert np.abs(ours[-10:] - ours[:10]).max() > 1e-2


@pytest.mark.slow  # 100 steps in both trainers
def test_clipped_training_tracks_keras_clipnorm():
    keras_losses, ours = _both_losses("rnn", "sgd", 0.5, clipnorm=0.05)
    assert np.max(np.abs(ours - keras_losses) / keras_losses) < TRACKING
    _, unclipped = _both_losses("rnn", "sgd", 0.5)
    assert np.abs(unclipped - ours).max() > 1e-2  # the clipping did something


def test_adam_step_is_keras_formula():
    # The bias correction uses float32(β), as Keras does; lr 0.125 is exact.
    weight, gradient, lr = np.array([1.0, -2.0]), np.array([0.5, 0.25]), 0.125
    b1, b2 = float(np.float32(0.9)), float(np.float32(0.999))
    m1, v1 = 0.1 * gradient, 0.001 * gradient**2
    w1 = weight - lr * np.sqrt(1 - b2) / (1 - b1) * m1 / (np.sqrt(v1) + 1e-7)
    m2, v2 = 0.9 * m1 + 0.1 * gradient, 0.999 * v1 + 0.001 * gradient**2
    w2 = w1 - lr * np.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (np.sqrt(v2) + 1e-7)
    weights, adam = [weight.copy()], Adam(learning_rate=lr)
    adam.apply(weights, [gradient])
    adam.apply(weights, [gradient])
    np.testing.assert_allclose(weights[0], w2, rtol=1e-14)
    assert adam.iterations == 2


@pytest.mark.parametrize("name", ("adam", "sgd"))
def test_update_matches_keras_optimizer_on_one_variable(name):
    rng = np.random.default_rng(5)
    start = rng.normal(size=(3, 2))
    variable = keras.Variable(start, dtype="float64")
    theirs = _keras_optimizer(name, 0.25, clipnorm=0.5)
    weights, ours = [start.copy()], make_optimizer(name, 0.25, clipnorm=0.5)
    for _ in range(5):
        gradient = rng.normal(size=(3, 2))
        theirs.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        ours.apply(weights, [gradient])
    np.testing.assert_allclose(weights[0], np.asarray(variable), rtol=1e-12)
    assert np.abs(weights[0] - start).max() > 0.1


def test_clip_by_norm_caps_the_norm_and_keeps_the_direction():
    gradient = np.array([3.0, 4.0])
    np.testing.assert_allclose(clip_by_norm(gradient, 1.0), [0.6, 0.8])
    np.testing.assert_array_equal(clip_by_norm(gradient, 10.0), gradient)
    np.testing.assert_array_equal(clip_by_norm(gradient, None), gradient)


def test_sgd_step_is_learning_rate_times_gradient():
    weights = [np.array([1.0, 1.0])]
    SGD(learning_rate=0.5).apply(weights, [np.array([2.0, -2.0])])
    np.testing.assert_allclose(weights[0], [0.0, 2.0])


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_numpy_trained_bundle_loads_in_predict_and_keras(prices_csv, tmp_path):
    settings = tiny_settings(prices_csv, model__clipnorm=1.0, model__loss="mse")
    report = run_numpy_training(settings, tmp_path / "bundle", optimizer="adam")
    bundle = load_bundle(report.out)
    metadata = json.loads((report.out / "metadata.json").read_text())
    assert metadata["settings"]["model"]["clipnorm"] == 1.0
    assert metadata["training"]["trainer"] == "numpy adam"
    assert bundle.settings.model.clipnorm == 1.0
    context = np.linspace(0.0, 1.0, 10)[None, :]
    args = (bundle.model_path, bundle.representation, bundle.window, bundle.horizon)
    numpy_forecast = make_engine(*args, "numpy").forecast(context, steps=3)
    keras_forecast = make_engine(*args, "keras").forecast(context, steps=3)
    np.testing.assert_allclose(numpy_forecast, keras_forecast, atol=1e-5)
    model = load_keras_model(bundle.model_path)
    untrained, _ = keras_network(settings.model, 10, 1, seed=settings.train.seed)
    moved = [
        np.abs(a - b).max()
        for a, b in zip(model.get_weights(), untrained.get_weights(), strict=True)
    ]
    assert min(moved) > 0  # every weight was trained, none left at its start


def test_numpy_trainer_refuses_dropout(prices_csv, tmp_path):
    settings = tiny_settings(prices_csv, model__dropout=0.2, model__loss="mse")
    with pytest.raises(
        ForecasterError,
        match=r"the NumPy trainer trains without Dropout; set dropout to 0\. "
        r"Received: dropout=0\.2",
    ):
        run_numpy_training(settings, tmp_path / "bundle")


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(
        ForecasterError, match="Unknown optimizer 'rmsprop': choose one of adam, sgd."
    ):
        make_optimizer("rmsprop", 0.1)


def test_optimizer_rejects_a_zero_clipnorm():
    with pytest.raises(
        ForecasterError, match=r"clipnorm must be positive\. Received: clipnorm=0"
    ):
        Adam(clipnorm=0)


def test_settings_reject_a_negative_clipnorm():
    with pytest.raises(
        ForecasterError, match=r"clipnorm must be positive\. Received: clipnorm=-1\.0"
    ):
        ModelSettings(clipnorm=-1.0).validate()


def test_clipnorm_flag_reaches_the_settings_and_the_optimizer():
    args = train_parser("train").parse_args(["--clipnorm", "0.5", "--model", "rnn"])
    settings = train_settings(args)
    assert settings.model.clipnorm == 0.5
    assert train_settings(train_parser("train").parse_args([])).model.clipnorm is None
    model, _ = keras_network(settings.model, window=4, horizon=1)
    assert model.optimizer.clipnorm == 0.5
