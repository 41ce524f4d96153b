"""Checking the BPTT gradients: central differences and TensorFlow's GradientTape.

`python -m forecaster.train.bptt_check --check` compares, for LSTM, GRU and
SimpleRNN (stacked, bidirectional, through the Dense head), the gradients of
train.bptt_network with central differences and with TensorFlow's
GradientTape, in float64; docs/cells.md has the results.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from forecaster.config import ModelSettings
from forecaster.model.factory import build_model
from forecaster.train.bptt_network import Network
from forecaster.train.devices import quiet_tensorflow

TOLERANCE = 1e-5  # largest relative error accepted, float64 throughout
CHECK_CELLS = ("lstm", "gru", "rnn")


def relative_error(analytic: np.ndarray, reference: np.ndarray) -> float:
    """||analytic - reference|| / max(||analytic||, ||reference||); 0 if both are 0."""
    scale = max(np.linalg.norm(analytic), np.linalg.norm(reference))
    return float(np.linalg.norm(analytic - reference) / scale) if scale else 0.0


def finite_difference_gradients(
    network: Network, x: np.ndarray, y: np.ndarray, step: float = 1e-6
) -> tuple[list[np.ndarray], np.ndarray]:
    """dL/d(each weight) and dL/dx by (L(w + step) - L(w - step)) / (2 step),
    one entry at a time, in float64. The network and x are restored."""
    x = np.array(x, dtype=np.float64)
    arrays = [*network.weights, x]
    gradients = []
    for array in arrays:
        gradient = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + step
            loss_plus = network.loss(x, y)
            array[index] = original - step
            loss_minus = network.loss(x, y)
            array[index] = original
            gradient[index] = (loss_plus - loss_minus) / (2 * step)
        gradients.append(gradient)
    return gradients[:-1], gradients[-1]


def tape_gradients(model, x: np.ndarray, y: np.ndarray):
    """dL/d(each weight) and dL/dx of a Keras model by TensorFlow's GradientTape.

    The model runs as it predicts (training=False: Dropout off), in its own
    dtype; the loss is the same MSE. Weights come in `model.trainable_weights`
    order, which is `Network.weights` order for our models.
    """
    import tensorflow as tf

    dtype = model.trainable_weights[0].dtype
    inputs = tf.constant(x, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y_hat = model(inputs, training=False)
        loss = tf.reduce_mean(tf.square(y_hat - tf.constant(y, dtype=dtype)))
    gradients = tape.gradient(loss, [*model.trainable_weights, inputs])
    return [np.asarray(g, np.float64) for g in gradients[:-1]], np.asarray(
        gradients[-1], np.float64
    )


@contextmanager
def keras_float64():
    """Build Keras layers in float64 inside the block; floatx and the dtype
    policy are restored afterwards.

    Both must change: Keras caches its global dtype policy from floatx the
    first time a layer is built, so after any float32 model floatx alone
    is ignored.
    """
    import keras

    previous_floatx, previous_policy = (
        keras.config.floatx(),
        keras.config.dtype_policy(),
    )
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


def float64_model(cell: str, bidirectional: bool, seed: int = 0):
    """A tiny float64 Keras model from the factory, every weight set to N(0, 0.5).

    Two stacked layers of 3 units (optionally bidirectional), window 6,
    2 features, Dense(2): stacking, both directions and the head all carry
    gradient.
    """
    import keras

    with keras_float64():
        keras.utils.set_random_seed(seed)
        settings = ModelSettings(
            cell, units=3, layers=2, bidirectional=bidirectional, loss="mse"
        )
        model = build_model(settings, window=6, horizon=2, n_features=2)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape) for w in model.get_weights()])
    return model


def check_cell(cell: str, directory, seed: int = 0) -> dict[str, float]:
    """Largest relative error of BPTT against each reference, over every weight
    array and dL/dx, for one cell stacked one-way and bidirectional.

    `directory` receives the saved model.keras files the NumPy side reads.
    """
    worst = {"finite differences": 0.0, "GradientTape": 0.0}
    for bidirectional in (False, True):
        model = float64_model(cell, bidirectional, seed)
        path = Path(directory) / f"{cell}-{int(bidirectional)}.keras"
        model.save(path)
        network = Network.load(path)
        rng = np.random.default_rng(seed + 1)
        x, y = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 2))
        ours = network.gradients(x, y)
        for name, (weights, inputs) in (
            ("finite differences", finite_difference_gradients(network, x, y)),
            ("GradientTape", tape_gradients(model, x, y)),
        ):
            errors = [
                relative_error(a, b)
                for a, b in zip(
                    [*ours.weights, ours.inputs], [*weights, inputs], strict=True
                )
            ]
            worst[name] = max(worst[name], *errors)
    return worst


def run_check(cells=CHECK_CELLS) -> tuple[list[str], bool]:
    """Check every cell; returns (report lines, True when all pass TOLERANCE)."""
    lines = [f"{'cell':6}{'reference':22}largest relative error"]
    passed = True
    with tempfile.TemporaryDirectory() as directory:
        for cell in cells:
            for name, error in check_cell(cell, directory).items():
                ok = error < TOLERANCE
                passed = passed and ok
                verdict = "ok" if ok else f"FAIL (tolerance {TOLERANCE:g})"
                lines.append(f"{cell:6}{name:22}{error:.2e}  {verdict}")
    return lines, passed


def main(argv: list[str] | None = None) -> int:
    """python -m forecaster.train.bptt_check --check"""
    parser = argparse.ArgumentParser(
        prog="python -m forecaster.train.bptt_check",
        description="Check BPTT for every cell against central differences and "
        "TensorFlow's GradientTape (float64).",
    )
    parser.add_argument("--check", action="store_true", help="run the check")
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 2
    quiet_tensorflow()
    lines, passed = run_check()
    print("\n".join(lines))
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
