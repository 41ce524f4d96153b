"""A NumPy trainer: Adam and SGD, as Keras computes them, on a `bptt_network.Network`.

Given a Keras model's initial weights and the same batches in the same order,
`train_on_batches` follows Keras' `train_on_batch` loss step by step
(tests/test_nptrain.py). `keras_network` and `to_keras` carry the weights
between the factory's Keras model and a Network; a whole run trained this
way is forecaster.workflows.numpy_run.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import keras
import numpy as np

from forecaster.config import ModelSettings
from forecaster.errors import ForecasterError
from forecaster.model.factory import build_model
from forecaster.prep.windows import (
    encode_inputs,
    encode_targets,
    target_view,
    window_view,
)
from forecaster.train.bptt_network import Network

OPTIMIZERS = ("adam", "sgd")


def clip_by_norm(gradient: np.ndarray, clipnorm: float | None) -> np.ndarray:
    """Keras' `clipnorm`: each weight's gradient rescaled to norm <= clipnorm,
    g * clipnorm / max(||g||, clipnorm); unchanged when clipnorm is None."""
    if clipnorm is None:
        return gradient
    return gradient * clipnorm / max(float(np.linalg.norm(gradient)), clipnorm)


class SGD:
    """Plain gradient descent, w -= learning_rate * g (Keras' SGD, momentum 0)."""

    def __init__(self, learning_rate: float = 0.01, clipnorm: float | None = None):
        _check_positive("learning_rate", learning_rate)
        if clipnorm is not None:
            _check_positive("clipnorm", clipnorm)
        self.learning_rate = learning_rate
        self.clipnorm = clipnorm
        self.iterations = 0

    def apply(self, weights: list[np.ndarray], gradients: list[np.ndarray]) -> None:
        """Update `weights` in place from their gradients (same order, shapes)."""
        learning_rate = _as_keras_float(self.learning_rate)
        for weight, gradient in zip(weights, gradients, strict=True):
            weight -= learning_rate * clip_by_norm(gradient, self.clipnorm)
        self.iterations += 1


class Adam(SGD):
    """Keras 3's Adam, step t = iterations + 1:

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g²
        alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
        w -= alpha m / (sqrt(v) + epsilon)

    with epsilon outside the bias correction, as Keras has it (1e-7 default).
    lr and β are used rounded to float32, as Keras uses them.
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        clipnorm: float | None = None,
    ):
        super().__init__(learning_rate, clipnorm)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.momentums: list[np.ndarray] | None = None
        self.velocities: list[np.ndarray] | None = None

    def apply(self, weights: list[np.ndarray], gradients: list[np.ndarray]) -> None:
        """Update `weights` in place from their gradients (same order, shapes)."""
        if self.momentums is None:
            self.momentums = [np.zeros_like(w) for w in weights]
            self.velocities = [np.zeros_like(w) for w in weights]
        step = self.iterations + 1
        beta_1, beta_2 = _as_keras_float(self.beta_1), _as_keras_float(self.beta_2)
        alpha = (
            _as_keras_float(self.learning_rate)
            * np.sqrt(1.0 - beta_2**step)
            / (1.0 - beta_1**step)
        )
        for weight, gradient, m, v in zip(
            weights, gradients, self.momentums, self.velocities, strict=True
        ):
            gradient = clip_by_norm(gradient, self.clipnorm)
            m += (1.0 - self.beta_1) * (gradient - m)
            v += (1.0 - self.beta_2) * (gradient**2 - v)
            weight -= alpha * m / (np.sqrt(v) + self.epsilon)
        self.iterations += 1


def make_optimizer(
    name: str, learning_rate: float, clipnorm: float | None = None
) -> SGD:
    """ "adam" or "sgd", with Keras' defaults for everything else."""
    if name not in OPTIMIZERS:
        raise ForecasterError(
            f"Unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}."
        )
    kind = Adam if name == "adam" else SGD
    return kind(learning_rate=learning_rate, clipnorm=clipnorm)


def train_step(network: Network, optimizer: SGD, x: np.ndarray, y: np.ndarray):
    """One gradient step on a batch; returns the loss before it, as Keras does.

    x: (batch, window, n_features), y: (batch, n_outputs).
    """
    gradients = network.gradients(x, y)
    optimizer.apply(network.weights, gradients.weights)
    return gradients.loss


def train_on_batches(network: Network, optimizer: SGD, batches) -> list[float]:
    """One step per (x, y) batch, in order; the loss of each step."""
    return [train_step(network, optimizer, x, y) for x, y in batches]


def window_arrays(prepared, targets: tuple[int, int], horizon: int):
    """Encoded windows and targets of a `windows.Prepared` series, float64.

    Returns x: (n, window, 1) and y: (n, horizon) for first targets in
    `targets`, in the representation the model reads.
    """
    # float32 first, as Keras' input pipeline encodes them
    window = prepared.split.window
    windows = window_view(prepared.scaled, window, targets).astype(np.float32)
    targets = target_view(prepared.scaled, horizon, targets).astype(np.float32)
    x = encode_inputs(windows, prepared.representation)
    y = encode_targets(windows, targets, prepared.representation)
    return x.astype(np.float64), y.astype(np.float64)


def fit_network(network, optimizer, fit, val, epochs, batch_size, patience, seed):
    """Shuffled mini-batch epochs with early stopping on the validation loss.

    fit and val: (x, y) pairs from `window_arrays`. Keeps the best weights in
    `network`; returns (history rows {epoch, loss, val_loss}, best epoch).
    """
    rng = np.random.default_rng(seed)
    x, y = fit
    history, best, best_epoch, best_weights = [], np.inf, 1, network.weights
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        batches = [order[k : k + batch_size] for k in range(0, len(x), batch_size)]
        losses = [train_step(network, optimizer, x[b], y[b]) for b in batches]
        val_loss = network.loss(*val)
        history.append(
            {"epoch": epoch, "loss": float(np.mean(losses)), "val_loss": val_loss}
        )
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            best_weights = [w.copy() for w in network.weights]
        elif patience and epoch - best_epoch >= patience:
            break
    network.weights = best_weights
    return history, best_epoch


def keras_network(model_settings: ModelSettings, window: int, horizon: int, seed=0):
    """The factory's Keras model with its initial weights, and the same as a Network.

    The Network is read back from the saved model.keras (one reader of the
    file format, forecaster/model/reference.py).
    """
    keras.utils.set_random_seed(seed)
    model = build_model(_mse(model_settings), window, horizon)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.keras"
        model.save(path)
        return model, Network.load(path)


def to_keras(network: Network, model_settings: ModelSettings, window, horizon):
    """The factory's compiled Keras model holding `network`'s weights."""
    model = build_model(_mse(model_settings), window, horizon, network.n_features)
    model.set_weights([w.astype(keras.config.floatx()) for w in network.weights])
    return model


def _mse(model_settings: ModelSettings) -> ModelSettings:
    """The settings with the point head: the only one the NumPy trainer trains."""
    return dataclasses.replace(model_settings, loss="mse", objective="price")


def _as_keras_float(value: float) -> float:
    """`value` rounded to float32, as Keras uses it under its default floatx.

    Keras keeps the learning rate in a floatx variable and turns β into a
    floatx tensor before casting it to the weights' dtype, so with float32
    floatx even float64 weights see float32(lr) and float32(β). With exact
    values Adam's first step differed from Keras' by 7e-6 relative; rounded,
    by 0 (tests/test_nptrain.py). Under floatx float64 Keras uses them exact.
    """
    return float(np.float32(value))


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ForecasterError(f"{name} must be positive. Received: {name}={value}")
