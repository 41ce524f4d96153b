"""Backpropagation through time by hand, for every cell the factory builds.

`python -m forecaster.train.bptt --check` compares it, for LSTM, GRU and SimpleRNN
(stacked, bidirectional, through the Dense head), with central differences
and with TensorFlow's GradientTape, in float64; docs/cells.md has the results.

It starts with a lesson: one tanh SimpleRNN layer and a linear readout.
The network reads a window x_1..x_T and forecasts from its last hidden state:

    a_t = x_t W_x + h_(t-1) W_h + b        pre-activation, h_0 = 0
    h_t = tanh(a_t)
    y_hat = h_T W_y + b_y                   linear readout
    L = mean((y_hat - y)^2)                 over the batch and the outputs

Backpropagation runs the chain rule from the loss back to step 1:

    dL/dy_hat = 2 (y_hat - y) / (batch * n_outputs)
    dL/dW_y = h_T^T dL/dy_hat,   dL/db_y = sum over the batch of dL/dy_hat
    dL/dh_T = dL/dy_hat W_y^T
    for t = T .. 1:
        dL/da_t = dL/dh_t ⊙ (1 - h_t^2)                  tanh' = 1 - tanh^2
        dL/dW_x += x_t^T dL/da_t,  dL/dW_h += h_(t-1)^T dL/da_t,
        dL/db += sum over the batch of dL/da_t
        dL/dx_t = dL/da_t W_x^T
        dL/dh_(t-1) = dL/da_t W_h^T

The last line is why gradients vanish: going back k steps multiplies
dL/dh_T by k factors diag(1 - h_t^2) W_h^T, so its norm is at most
(max singular value of W_h)^k times the start. With small recurrent weights
(or saturated tanh units) the signal from the start of a long window is
negligible, which is what LSTM and GRU gates are designed to avoid.
`gradient_norms_by_lag` measures it.

The general part follows: each cell's forward step and, beside it, its
backward step with the equations (`lstm_forward`, `lstm_backward`, ...);
`Network`, a saved model.keras read through forecaster/model/reference.py and
backpropagated layer by layer; `gradient_norms_by_distance`; and the check.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.model.cells import DenseLayer, sigmoid
from forecaster.model.reference import ReferenceModel
from forecaster.train.devices import quiet_tensorflow


@dataclass
class RNNParams:
    """The weights of a SimpleRNN layer and its linear readout.

    input_kernel: W_x (n_inputs, units). recurrent_kernel: W_h (units, units).
    bias: b (units,). readout_kernel: W_y (units, n_outputs).
    readout_bias: b_y (n_outputs,).
    """

    input_kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    readout_kernel: np.ndarray
    readout_bias: np.ndarray

    @classmethod
    def random(
        cls,
        n_inputs: int,
        units: int,
        n_outputs: int,
        recurrent_scale: float = 1.0,
        seed: int = 0,
    ) -> RNNParams:
        """Random float64 weights; W_h is `recurrent_scale` times an orthogonal
        matrix, so every singular value of W_h equals `recurrent_scale`.

        recurrent_scale=1 matches Keras' Orthogonal initializer; below 1 the
        gradient shrinks at least geometrically as it goes back in time.
        """
        for name, value in (
            ("n_inputs", n_inputs),
            ("units", units),
            ("n_outputs", n_outputs),
        ):
            if value < 1:
                raise ForecasterError(
                    f"{name} must be at least 1. Received: {name}={value}"
                )
        rng = np.random.default_rng(seed)
        orthogonal, _ = np.linalg.qr(rng.normal(size=(units, units)))
        return cls(
            input_kernel=rng.normal(0.0, 1.0 / np.sqrt(n_inputs), (n_inputs, units)),
            recurrent_kernel=recurrent_scale * orthogonal,
            bias=rng.normal(0.0, 0.1, units),
            readout_kernel=rng.normal(0.0, 1.0 / np.sqrt(units), (units, n_outputs)),
            readout_bias=rng.normal(0.0, 0.1, n_outputs),
        )


@dataclass
class Gradients:
    """dL/d(each weight), same shapes as RNNParams, plus the gradients along time.

    hidden: dL/dh_t, (batch, time, units). inputs: dL/dx_t, (batch, time, n_inputs).
    """

    input_kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    readout_kernel: np.ndarray
    readout_bias: np.ndarray
    hidden: np.ndarray
    inputs: np.ndarray


def forward(params: RNNParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the layer and the readout.

    x: (batch, time, n_inputs) -> (y_hat (batch, n_outputs),
    hidden states h_0..h_T (batch, time + 1, units), h_0 = 0).
    """
    x = _check_inputs(params, x)
    batch, time, _ = x.shape
    hidden = np.zeros((batch, time + 1, params.recurrent_kernel.shape[0]))
    for t in range(time):
        a_t = (
            x[:, t] @ params.input_kernel
            + hidden[:, t] @ params.recurrent_kernel
            + params.bias
        )
        hidden[:, t + 1] = np.tanh(a_t)
    y_hat = hidden[:, -1] @ params.readout_kernel + params.readout_bias
    return y_hat, hidden


def mse_loss(params: RNNParams, x: np.ndarray, y: np.ndarray) -> float:
    """L = mean((y_hat - y)^2). x: (batch, time, n_inputs), y: (batch, n_outputs)."""
    y_hat, _ = forward(params, x)
    return float(np.mean((y_hat - _check_targets(y_hat, y)) ** 2))


def loss_and_gradients(
    params: RNNParams, x: np.ndarray, y: np.ndarray
) -> tuple[float, Gradients]:
    """The MSE loss and its gradients by backpropagation through time.

    x: (batch, time, n_inputs), y: (batch, n_outputs). The equations are in
    the module docstring; see `Gradients` for the shapes returned.
    """
    y_hat, hidden = forward(params, x)
    x = np.asarray(x, dtype=np.float64)
    y = _check_targets(y_hat, y)
    batch, time, _ = x.shape
    d_y_hat = 2.0 * (y_hat - y) / y_hat.size
    d_hidden = np.zeros((batch, time, hidden.shape[2]))
    d_inputs = np.zeros_like(x)
    d_input_kernel = np.zeros_like(params.input_kernel)
    d_recurrent_kernel = np.zeros_like(params.recurrent_kernel)
    d_bias = np.zeros_like(params.bias)
    d_h = d_y_hat @ params.readout_kernel.T  # dL/dh_T
    for t in reversed(range(time)):
        h_t, h_prev = hidden[:, t + 1], hidden[:, t]
        d_hidden[:, t] = d_h
        d_a = d_h * (1.0 - h_t**2)
        d_input_kernel += x[:, t].T @ d_a
        d_recurrent_kernel += h_prev.T @ d_a
        d_bias += d_a.sum(axis=0)
        d_inputs[:, t] = d_a @ params.input_kernel.T
        d_h = d_a @ params.recurrent_kernel.T  # dL/dh_(t-1)
    gradients = Gradients(
        input_kernel=d_input_kernel,
        recurrent_kernel=d_recurrent_kernel,
        bias=d_bias,
        readout_kernel=hidden[:, -1].T @ d_y_hat,
        readout_bias=d_y_hat.sum(axis=0),
        hidden=d_hidden,
        inputs=d_inputs,
    )
    return float(np.mean((y_hat - y) ** 2)), gradients


def gradient_norms_by_lag(
    params: RNNParams, x: np.ndarray, y: np.ndarray, wrt: str = "hidden"
) -> np.ndarray:
    """How strongly the loss reacts to each step, counted back from the last.

    Returns norms (time,): norms[k] is the norm of dL/dh_(T-k) (wrt="hidden")
    or dL/dx_(T-k) (wrt="inputs") over the whole batch, so norms[0] is the last
    step and norms[time - 1] the first. A vanishing gradient shows as norms
    falling towards 0 as k grows.

    x: (batch, time, n_inputs), y: (batch, n_outputs).
    """
    if wrt not in ("hidden", "inputs"):
        raise ForecasterError(f"Unknown wrt {wrt!r}: choose one of hidden, inputs.")
    _, gradients = loss_and_gradients(params, x, y)
    along_time = getattr(gradients, wrt)  # (batch, time, features)
    norms = np.sqrt((along_time**2).sum(axis=(0, 2)))
    return norms[::-1]


def _check_inputs(params: RNNParams, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n_inputs = params.input_kernel.shape[0]
    if x.ndim != 3 or x.shape[2] != n_inputs or x.shape[1] < 1:
        raise ForecasterError(
            f"x must have shape (batch, time, {n_inputs}) with time >= 1. "
            f"Received: x.shape={x.shape}"
        )
    return x


def _check_targets(y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.shape != y_hat.shape:
        raise ForecasterError(
            f"y must have shape {y_hat.shape} (batch, n_outputs). "
            f"Received: y.shape={y.shape}"
        )
    return y


# --------------------------------------------------------------------------
# Every cell the factory builds: one step forward, and the same step backward
#
# Notation as in forecaster/model/reference.py: row vectors, `x_part` = x_t W + b_x
# (computed for every step at once), `U` the recurrent kernel, σ the sigmoid.
# A step's state is a tuple: (h,) for SimpleRNN and GRU, (h, c) for LSTM. Each
# backward step takes dL/d(state after the step) and returns
#   d_x_part  dL/d(x_t W + b_x)           -> dW, db_x and dL/dx_t
#   d_rec     dL/d(h_prev U + b_h)        -> dU (and db_h for the GRU)
#   d_prev    dL/d(state before the step)
# The weight gradients are then sums over steps, done once per layer.


def simple_rnn_forward(x_part, state, recurrent_kernel, recurrent_bias):
    """h = tanh(x_part + h_prev U). Returns ((h,), cache)."""
    (h_prev,) = state
    h = np.tanh(x_part + h_prev @ recurrent_kernel)
    return (h,), h


def simple_rnn_backward(d_state, cache, recurrent_kernel):
    """Backward through h = tanh(a), a = x_part + h_prev U:

    da = dh ⊙ (1 - h²);  d_x_part = d_rec = da;  dh_prev = da Uᵀ
    """
    (d_h,) = d_state
    d_a = d_h * (1.0 - cache**2)
    return d_a, d_a, (d_a @ recurrent_kernel.T,)


def lstm_forward(x_part, state, recurrent_kernel, recurrent_bias):
    """Keras' LSTM step, columns [i, f, c, o]:

    a = x_part + h_prev U;  i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_c)
    c = f ⊙ c_prev + i ⊙ g;  h = o ⊙ tanh(c). Returns ((h, c), cache).
    """
    h_prev, c_prev = state
    a_i, a_f, a_c, a_o = np.split(x_part + h_prev @ recurrent_kernel, 4, axis=-1)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)
    g = np.tanh(a_c)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return (h, c), (i, f, g, o, c_prev, tanh_c)


def lstm_backward(d_state, cache, recurrent_kernel):
    """Backward through the LSTM step, given dh and dc from the step after:

    do = dh ⊙ tanh(c);  dc_all = dc + dh ⊙ o ⊙ (1 - tanh²(c))
    di = dc_all ⊙ g;  df = dc_all ⊙ c_prev;  dg = dc_all ⊙ i;  dc_prev = dc_all ⊙ f
    da = [di i(1-i), df f(1-f), dg (1-g²), do o(1-o)];  dh_prev = da Uᵀ
    The forget gate is the only factor on the path c_t -> c_(t-1).
    """
    d_h, d_c = d_state
    i, f, g, o, c_prev, tanh_c = cache
    d_c_all = d_c + d_h * o * (1.0 - tanh_c**2)
    d_a = np.concatenate(
        [
            d_c_all * g * i * (1.0 - i),
            d_c_all * c_prev * f * (1.0 - f),
            d_c_all * i * (1.0 - g**2),
            d_h * tanh_c * o * (1.0 - o),
        ],
        axis=-1,
    )
    return d_a, d_a, (d_a @ recurrent_kernel.T, d_c_all * f)


def gru_forward(x_part, state, recurrent_kernel, recurrent_bias):
    """Keras' GRU step with reset_after=True, columns [z, r, h]:

    rec = h_prev U + b_h;  z = σ(x_z + rec_z);  r = σ(x_r + rec_r)
    n = tanh(x_h + r ⊙ rec_h);  h = z ⊙ h_prev + (1 - z) ⊙ n. Returns ((h,), cache).
    """
    (h_prev,) = state
    rec = h_prev @ recurrent_kernel + recurrent_bias
    x_z, x_r, x_h = np.split(x_part, 3, axis=-1)
    rec_z, rec_r, rec_h = np.split(rec, 3, axis=-1)
    z, r = sigmoid(x_z + rec_z), sigmoid(x_r + rec_r)
    n = np.tanh(x_h + r * rec_h)
    return (z * h_prev + (1.0 - z) * n,), (h_prev, z, r, n, rec_h)


def gru_backward(d_state, cache, recurrent_kernel):
    """Backward through the GRU step, given dh:

    dz = dh ⊙ (h_prev - n);  da_n = dh ⊙ (1 - z) ⊙ (1 - n²);  dr = da_n ⊙ rec_h
    da_z = dz z(1-z);  da_r = dr r(1-r)
    d_x_part = [da_z, da_r, da_n];  d_rec = [da_z, da_r, da_n ⊙ r]
    dh_prev = dh ⊙ z + d_rec Uᵀ
    The update gate z is the direct factor on the path h_t -> h_(t-1).
    """
    (d_h,) = d_state
    h_prev, z, r, n, rec_h = cache
    d_z = d_h * (h_prev - n) * z * (1.0 - z)
    d_n = d_h * (1.0 - z) * (1.0 - n**2)
    d_r = d_n * rec_h * r * (1.0 - r)
    d_x_part = np.concatenate([d_z, d_r, d_n], axis=-1)
    d_rec = np.concatenate([d_z, d_r, d_n * r], axis=-1)
    return d_x_part, d_rec, (d_h * z + d_rec @ recurrent_kernel.T,)


# cell -> (forward step, backward step, number of state arrays)
CELL_STEPS = {
    "SimpleRNN": (simple_rnn_forward, simple_rnn_backward, 1),
    "LSTM": (lstm_forward, lstm_backward, 2),
    "GRU": (gru_forward, gru_backward, 1),
}


# --------------------------------------------------------------------------
# Whole layers: one direction of a recurrent layer, forward and backward


def direction_forward(cell, kernel, recurrent_kernel, bias, x):
    """Run one direction of a recurrent layer from zero state, keeping what
    the backward pass needs.

    cell: "SimpleRNN", "LSTM" or "GRU"; x: (batch, time, n_in) ->
    (outputs h_1..h_T (batch, time, units), one cache per step).
    """
    forward_step, _, n_state = CELL_STEPS[cell]
    input_bias, recurrent_bias = _split_bias(cell, bias)
    x_parts = x @ kernel + input_bias
    batch, time = x.shape[:2]
    units = recurrent_kernel.shape[0]
    state = tuple(np.zeros((batch, units)) for _ in range(n_state))
    outputs = np.empty((batch, time, units))
    caches = []
    for t in range(time):
        state, cache = forward_step(
            x_parts[:, t], state, recurrent_kernel, recurrent_bias
        )
        outputs[:, t] = state[0]
        caches.append(cache)
    return outputs, caches


def direction_backward(cell, kernel, recurrent_kernel, x, outputs, caches, d_outputs):
    """Backpropagate dL/d(outputs) (batch, time, units) through one direction.

    Returns ([dL/dW, dL/dU, dL/db] shaped like the weights, dL/dx (batch, time,
    n_in)). dW = Σ_t x_tᵀ d_x_part_t, dU = Σ_t h_(t-1)ᵀ d_rec_t, db = Σ d_x_part
    (the GRU's second bias row: Σ d_rec), dx_t = d_x_part_t Wᵀ.
    """
    _, backward_step, n_state = CELL_STEPS[cell]
    batch, time, units = outputs.shape
    d_state = tuple(np.zeros((batch, units)) for _ in range(n_state))
    d_x_parts = np.empty((batch, time, kernel.shape[1]))
    d_recs = np.empty_like(d_x_parts)
    for t in reversed(range(time)):
        d_state = (d_state[0] + d_outputs[:, t], *d_state[1:])
        d_x_parts[:, t], d_recs[:, t], d_state = backward_step(
            d_state, caches[t], recurrent_kernel
        )
    h_prevs = np.concatenate([np.zeros((batch, 1, units)), outputs[:, :-1]], axis=1)
    d_bias = d_x_parts.sum(axis=(0, 1))
    if cell == "GRU":
        d_bias = np.stack([d_bias, d_recs.sum(axis=(0, 1))])
    d_weights = [
        np.tensordot(x, d_x_parts, axes=([0, 1], [0, 1])),
        np.tensordot(h_prevs, d_recs, axes=([0, 1], [0, 1])),
        d_bias,
    ]
    return d_weights, d_x_parts @ kernel.T


def _split_bias(cell, bias):
    """(input bias, recurrent bias): the GRU keeps two rows, the others one."""
    return (bias[0], bias[1]) if cell == "GRU" else (bias, 0.0)


# --------------------------------------------------------------------------
# A whole model held in NumPy


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
        return float(np.mean((y_hat - _check_targets(y_hat, y)) ** 2))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> NetworkGradients:
        """The MSE loss and its gradients by backpropagation through time.

        x: (batch, window, n_features), y: (batch, n_outputs).
        """
        y_hat, tape = self._forward(self._check(x))
        y = _check_targets(y_hat, y)
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


# --------------------------------------------------------------------------
# Checking the gradients: central differences and TensorFlow's GradientTape

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

    from forecaster.config import ModelSettings
    from forecaster.model.factory import build_model

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
    from pathlib import Path

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
    import tempfile

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
    """python -m forecaster.train.bptt --check"""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m forecaster.train.bptt",
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
