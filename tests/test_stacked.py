"""The LSTM stack run as one loop: the same outputs and gradients, the same file."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_prices, tiny_settings

from forecaster.config import ModelSettings
from forecaster.model.factory import build_model
from forecaster.model.stacked import run_stacked
from forecaster.prep.windows import prepare
from forecaster.train.fit import fit_model

WINDOW = 12
X = np.random.default_rng(0).normal(size=(16, WINDOW, 1)).astype(np.float32)
Y = np.random.default_rng(1).normal(size=(16, 1)).astype(np.float32) * 0.01


def tiny(**changes):
    keras.utils.set_random_seed(0)
    return build_model(ModelSettings(units=4, layers=3, **changes), WINDOW)


def loss_and_gradients(model):
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=X, y=Y, y_pred=model(X, training=True))
    return float(loss), tape.gradient(loss, model.trainable_variables)


def while_loops(model) -> int:
    """`while` loops in the traced forward pass (one per recurrent loop)."""
    spec = tf.TensorSpec((None, WINDOW, 1), tf.float32)
    graph = tf.function(model).get_concrete_function(spec).graph
    return sum(op.type in ("While", "StatelessWhile") for op in graph.get_operations())


@pytest.mark.parametrize("loss", [None, "student-t"])
def test_the_factory_runs_its_lstm_stack_as_one_loop(loss):
    model = tiny(loss=loss)
    assert "call" in vars(model)  # routed by the factory
    assert while_loops(model) == 1
    plain = tiny(loss=loss)
    del plain.call  # back to Keras' layer-by-layer loops
    assert while_loops(plain) == 3
    np.testing.assert_array_equal(model(X), plain(X))
    (got, got_grads), (want, want_grads) = map(loss_and_gradients, (model, plain))
    assert got == want
    for a, b in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_the_saved_model_keeps_its_separate_lstm_layers(tmp_path):
    model = tiny()
    config = json.dumps(model.get_config())
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert json.dumps(loaded.get_config()) == config
    assert [type(layer).__name__ for layer in loaded.layers].count("LSTM") == 3
    assert "call" not in vars(loaded)  # Keras' own loops, until routed again
    assert run_stacked(loaded) == 3 and while_loops(loaded) == 1
    np.testing.assert_array_equal(loaded(X), model(X))


@pytest.mark.parametrize(
    "changes",
    [{"cell": "gru"}, {"dropout": 0.1}, {"bidirectional": True}, {"layers": 1}],
)
def test_other_stacks_keep_keras_own_loops(changes):
    settings = {"layers": 3, **changes}
    keras.utils.set_random_seed(0)
    model = build_model(ModelSettings(units=4, **settings), WINDOW)
    assert "call" not in vars(model)
    assert run_stacked(model) == 0


def test_a_resumed_run_is_routed_again(tmp_path):
    settings = tiny_settings(train__epochs=1)
    part = prepare(make_prices(300), settings.prep)
    fit_model(part, settings, checkpoint_dir=tmp_path / "ckpt")
    settings.train.epochs = 2
    resumed = fit_model(part, settings, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.resumed_from == 1 and len(resumed.history) == 2
    assert "call" in vars(resumed.model)


def test_nothing_is_routed_where_a_gpu_is_visible(monkeypatch):
    # There Keras runs each LSTM layer with cuDNN's fused kernel.
    model = tiny()
    del model.call
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: ["/physical:GPU:0"]
    )
    assert run_stacked(model) == 0
    assert "call" not in vars(model)
