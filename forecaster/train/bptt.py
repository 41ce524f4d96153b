"""Backpropagation through time by hand, for every cell the factory builds.

`python -m forecaster.train.bptt_check --check` compares it, for LSTM, GRU and SimpleRNN
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

The general part is in three modules beside this one: train.bptt_cells, each
cell's forward step and, beside it, its backward step with the equations
(`lstm_forward`, `lstm_backward`, ...); train.bptt_network, `Network`, a
saved model.keras read through forecaster/model/reference.py and
backpropagated layer by layer, and `gradient_norms_by_distance`; and
train.bptt_check, the check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError


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
    return float(np.mean((y_hat - check_targets(y_hat, y)) ** 2))


def loss_and_gradients(
    params: RNNParams, x: np.ndarray, y: np.ndarray
) -> tuple[float, Gradients]:
    """The MSE loss and its gradients by backpropagation through time.

    x: (batch, time, n_inputs), y: (batch, n_outputs). The equations are in
    the module docstring; see `Gradients` for the shapes returned.
    """
    y_hat, hidden = forward(params, x)
    x = np.asarray(x, dtype=np.float64)
    y = check_targets(y_hat, y)
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


def check_targets(y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y as float64, checked to have the forecast's shape (batch, n_outputs)."""
    y = np.asarray(y, dtype=np.float64)
    if y.shape != y_hat.shape:
        raise ForecasterError(
            f"y must have shape {y_hat.shape} (batch, n_outputs). "
            f"Received: y.shape={y.shape}"
        )
    return y
