"""A whole saved model held in NumPy and backpropagated through time, layer by layer.

`Network` reads a model.keras of the factory through the NumPy reference
(forecaster/model/reference.py, no TensorFlow), runs its stacked and
`Bidirectional` recurrent layers and its `Dense` head with the steps of
train.bptt_cells, and gives the MSE loss's gradient with respect to every
weight and to the input window; `gradient_norms_by_distance` measures how
that gradient fades along the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.model.cells import DenseLayer
from forecaster.model.reference import ReferenceModel
from forecaster.train.bptt import check_targets
from forecaster.train.bptt_cells import direction_backward, direction_forward


@dataclass(frozen=True)
class RecurrentSpec:
    """A recurrent layer: its cell, width, direction and what it passes on."""

    cell: str  # "SimpleRNN", "LSTM" or "GRU"
    units: int
    bidirectional: bool
    return_sequences: bool

    @property
    def n_weights(self) -> int:
        return 6 if self.bidirectional else 3


@dataclass(frozen=True)
class DenseSpec:
    """The linear Dense head, y = h W + b."""

    units: int
    n_weights: int = 2


@dataclass
class NetworkGradients:
    """The loss, dL/d(each weight) in `Network.weights` order, and dL/dx.

    inputs: (batch, window, n_features), the gradient along time of the
    encoded windows the network reads (the representations' encoding and
    decoding stay outside the gradient).
    """

    loss: float
    weights: list[np.ndarray]
    inputs: np.ndarray


class Network:
    """A model of `forecaster.model.factory.build_model` held in NumPy, float64.

    `weights` lists the arrays in the order of Keras' `model.get_weights()`:
    per recurrent layer its kernel, recurrent kernel and bias (forward then
    backward when bidirectional), then the Dense kernel and bias. Dropout is
    left out: gradients are those of the model as it predicts.
    """

    def __init__(self, specs: list, weights: list[np.ndarray], n_features: int):
        expected = sum(spec.n_weights for spec in specs)
        if len(weights) != expected:
            raise ForecasterError(
                f"weights must hold {expected} arrays for these layers. "
                f"Received: len(weights)={len(weights)}"
            )
        self.specs = specs
        self.weights = [np.array(w, dtype=np.float64) for w in weights]
        self.n_features = n_features

    @classmethod
    def from_reference(cls, reference) -> Network:
        """The layers and weights of a `reference.ReferenceModel`, copied."""
        specs, weights = [], []
        for layer in reference.layers:
            if isinstance(layer, DenseLayer):
                specs.append(DenseSpec(layer.output_size))
                weights += [layer.kernel, layer.bias]
                continue
            specs.append(
                RecurrentSpec(
                    layer.cell,
                    layer.forward.units,
                    layer.backward is not None,
                    layer.return_sequences,
                )
            )
            for cell in (layer.forward, layer.backward):
                if cell is not None:
                    weights += [cell.kernel, cell.recurrent_kernel, cell.bias]
        return cls(specs, weights, reference.n_features)

    @classmethod
    def load(cls, path) -> Network:
        """Read a saved model.keras through reference.py (no TensorFlow)."""
        return cls.from_reference(ReferenceModel.load(path))

    def copy(self) -> Network:
        return Network(self.specs, self.weights, self.n_features)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, window, n_features) -> (batch, n_outputs), float64."""
        return self._forward(self._check(x))[0]

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """MSE, the mean over the batch and the outputs. y: (batch, n_outputs)."""
        y_hat = self.predict(x)
        return float(np.mean((y_hat - check_targets(y_hat, y)) ** 2))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> NetworkGradients:
        """The MSE loss and its gradients by backpropagation through time.

        x: (batch, window, n_features), y: (batch, n_outputs).
        """
        y_hat, tape = self._forward(self._check(x))
        y = check_targets(y_hat, y)
        d_weights, d_inputs = self._backward(tape, 2.0 * (y_hat - y) / y_hat.size)
        return NetworkGradients(float(np.mean((y_hat - y) ** 2)), d_weights, d_inputs)

    def _layer_weights(self):
        offset = 0
        for spec in self.specs:
            yield spec, offset, self.weights[offset : offset + spec.n_weights]
            offset += spec.n_weights

    def _forward(self, x):
        tape = []
        for spec, _, weights in self._layer_weights():
            if isinstance(spec, DenseSpec):
                tape.append(x)
                x = x @ weights[0] + weights[1]
                continue
            directions = [direction_forward(spec.cell, *weights[:3], x)]
            if spec.bidirectional:
                directions.append(
                    direction_forward(spec.cell, *weights[3:], x[:, ::-1])
                )
            tape.append((x, directions))
            x = _merge(spec, [outputs for outputs, _ in directions])
        return x, tape

    def _backward(self, tape, d_out):
        d_weights = [None] * len(self.weights)
        layers = list(self._layer_weights())
        for (spec, offset, weights), record in zip(
            reversed(layers), reversed(tape), strict=True
        ):
            if isinstance(spec, DenseSpec):
                d_weights[offset : offset + 2] = [record.T @ d_out, d_out.sum(axis=0)]
                d_out = d_out @ weights[0].T
                continue
            x, directions = record
            d_x = np.zeros_like(x)
            for k, (outputs, caches) in enumerate(directions):
                d_seq = _split_output_gradient(spec, d_out, k, outputs.shape)
                grads, d_x_k = direction_backward(
                    spec.cell,
                    weights[3 * k],
                    weights[3 * k + 1],
                    x if k == 0 else x[:, ::-1],
                    outputs,
                    caches,
                    d_seq,
                )
                d_weights[offset + 3 * k : offset + 3 * k + 3] = grads
                d_x += d_x_k if k == 0 else d_x_k[:, ::-1]
            d_out = d_x
        return d_weights, d_out

    def _check(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 3 or x.shape[2] != self.n_features or x.shape[1] < 1:
            raise ForecasterError(
                f"x must have shape (batch, window, {self.n_features}). "
                f"Received: x.shape={x.shape}"
            )
        return x


def _merge(spec: RecurrentSpec, outputs: list[np.ndarray]) -> np.ndarray:
    """A layer's output from its directions' (batch, time, units) outputs, as
    Keras joins them (merge_mode="concat", the backward one flipped back)."""
    if not spec.return_sequences:
        return np.concatenate([o[:, -1] for o in outputs], axis=-1)
    if spec.bidirectional:
        outputs = [outputs[0], outputs[1][:, ::-1]]
    return np.concatenate(outputs, axis=-1)


def _split_output_gradient(spec, d_out, k, shape):
    """dL/d(outputs) of direction k, in that direction's own time order."""
    d_part = d_out[..., k * spec.units : (k + 1) * spec.units]
    if spec.return_sequences:
        return d_part if k == 0 else d_part[:, ::-1]
    d_seq = np.zeros(shape)
    d_seq[:, -1] = d_part
    return d_seq


def gradient_norms_by_distance(
    network: Network, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """||d loss_i / d x_i,t||, averaged over the windows i, by distance from the end.

    x: (batch, window, n_features), y: (batch, n_outputs). Returns (window,):
    element k - 1 is for x_(T-k+1), so element 0 is the window's last step
    (distance 1). loss_i is window i's own MSE, so each window counts alike
    whatever the batch size.
    """
    d_inputs = network.gradients(x, y).inputs * len(x)
    norms = np.sqrt((d_inputs**2).sum(axis=2)).mean(axis=0)
    return norms[::-1]
