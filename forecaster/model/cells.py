"""The NumPy equations of the recurrent cells and layers of our Keras models.

One time step of each cell (SimpleRNN, LSTM, GRU), whole layers over a
window (one-way and `Bidirectional`), and the layer objects the NumPy
reference (forecaster.model.reference) runs. All float64.

Notation, for one time step of one window (row vectors, as Keras writes them):
`x_t` is the input `(n_in,)`, `h_prev` the previous output `(units,)`, `W` the
input kernel `(n_in, k*units)`, `U` the recurrent kernel `(units, k*units)`, `b`
the bias `(k*units,)`, `σ` the logistic sigmoid and `⊙` the elementwise
product. The `k` gate blocks sit side by side in the columns of `W`, `U` and `b`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Gate blocks per cell: how many `units`-wide column blocks W, U and b hold.
GATE_BLOCKS = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


# --------------------------------------------------------------------------
# Activations


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic sigmoid σ(a) = 1 / (1 + exp(-a)), elementwise, any shape.

    Written as (1 + tanh(a / 2)) / 2, the same function, so that large |a|
    neither overflows nor warns.
    """
    return 0.5 * (1.0 + np.tanh(0.5 * a))


# --------------------------------------------------------------------------
# One time step of each cell


@dataclass(frozen=True)
class CellWeights:
    """The three arrays of a recurrent cell, as Keras stores them.

    kernel: `W`, (n_in, k*units). recurrent_kernel: `U`, (units, k*units).
    bias: `b`, (k*units,); for GRU (reset_after=True) it is (2, 3*units):
    row 0 the input bias `b_x`, row 1 the recurrent bias `b_h`.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]


def simple_rnn_step(
    x_t: np.ndarray, h_prev: np.ndarray, weights: CellWeights
) -> np.ndarray:
    """One step of a SimpleRNN cell (activation tanh).

        h_t = tanh(x_t W + h_prev U + b)

    x_t: (batch, n_in), h_prev: (batch, units) -> h_t: (batch, units).
    """
    return np.tanh(
        x_t @ weights.kernel + h_prev @ weights.recurrent_kernel + weights.bias
    )


def lstm_step(
    x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, weights: CellWeights
) -> tuple[np.ndarray, np.ndarray]:
    """One step of an LSTM cell; Keras' gate order in the columns is [i, f, c, o].

        i = σ(x_t W_i + h_prev U_i + b_i)            input gate
        f = σ(x_t W_f + h_prev U_f + b_f)            forget gate
        c_tilde = tanh(x_t W_c + h_prev U_c + b_c)   candidate cell state
        o = σ(x_t W_o + h_prev U_o + b_o)            output gate
        c_t = f ⊙ c_prev + i ⊙ c_tilde
        h_t = o ⊙ tanh(c_t)

    x_t: (batch, n_in), h_prev and c_prev: (batch, units)
    -> (h_t, c_t), each (batch, units).
    """
    pre_activation = (
        x_t @ weights.kernel + h_prev @ weights.recurrent_kernel + weights.bias
    )
    a_i, a_f, a_c, a_o = np.split(pre_activation, 4, axis=-1)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)
    c_tilde = np.tanh(a_c)
    c_t = f * c_prev + i * c_tilde
    h_t = o * np.tanh(c_t)
    return h_t, c_t


def gru_step(x_t: np.ndarray, h_prev: np.ndarray, weights: CellWeights) -> np.ndarray:
    """One step of a GRU cell with reset_after=True (Keras 3's default and cuDNN's).

    Gate order in the columns is [z, r, h]; the bias has two rows, `b_x` added
    to the input part and `b_h` to the recurrent part:

        z = σ(x_t W_z + b_x,z + h_prev U_z + b_h,z)               update gate
        r = σ(x_t W_r + b_x,r + h_prev U_r + b_h,r)               reset gate
        h_tilde = tanh(x_t W_h + b_x,h + r ⊙ (h_prev U_h + b_h,h))  candidate
        h_t = z ⊙ h_prev + (1 - z) ⊙ h_tilde

    "reset after" means `r` multiplies `h_prev U_h + b_h,h`, after the matrix
    product, rather than `h_prev` before it.

    x_t: (batch, n_in), h_prev: (batch, units) -> h_t: (batch, units).
    """
    input_bias, recurrent_bias = weights.bias
    x_z, x_r, x_h = np.split(x_t @ weights.kernel + input_bias, 3, axis=-1)
    h_z, h_r, h_h = np.split(
        h_prev @ weights.recurrent_kernel + recurrent_bias, 3, axis=-1
    )
    z = sigmoid(x_z + h_z)
    r = sigmoid(x_r + h_r)
    h_tilde = np.tanh(x_h + r * h_h)
    return z * h_prev + (1.0 - z) * h_tilde


# --------------------------------------------------------------------------
# Whole layers


def run_recurrent(
    cell: str, weights: CellWeights, x: np.ndarray, return_sequences: bool
) -> np.ndarray:
    """Run one recurrent layer over a sequence, starting from zero state.

    cell: "SimpleRNN", "LSTM" or "GRU". x: (batch, time, n_in) -> the output at
    every step (batch, time, units) when `return_sequences`, else the last
    output (batch, units).

    This computes exactly the step functions above, rearranged for speed (a
    30-day forecast runs 9,000 cell steps one after another, so the cost of
    each NumPy call matters): the input part `x_t W + b` is computed for all
    steps in one matrix product, and since σ(a) = (1 + tanh(a/2)) / 2 the
    gate columns are pre-halved so that one `tanh` call serves every gate.
    `run_recurrent_stepwise` is the plain loop over the step functions;
    the tests check that the two agree.
    """
    units = weights.units
    if cell == "GRU":
        input_bias, recurrent_bias = weights.bias
    else:
        input_bias, recurrent_bias = weights.bias, 0.0
    sigmoid_columns = {"LSTM": [0, 1, 3], "GRU": [0, 1], "SimpleRNN": []}[cell]
    halve = np.ones(weights.kernel.shape[1])
    for block in sigmoid_columns:
        halve[block * units : (block + 1) * units] = 0.5
    projected = (x @ weights.kernel + input_bias) * halve  # (batch, time, k*units)
    recurrent = weights.recurrent_kernel * halve
    recurrent_bias = recurrent_bias * halve
    step = {"LSTM": _lstm_fused, "GRU": _gru_fused, "SimpleRNN": _rnn_fused}[cell]
    return step(projected, recurrent, recurrent_bias, units, return_sequences)


def _lstm_fused(projected, recurrent, _bias, units, return_sequences):
    batch, time = projected.shape[:2]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        activated = np.tanh(projected[:, t] + h @ recurrent)
        gates = activated * 0.5 + 0.5  # σ for the pre-halved i, f, o columns
        i, f = gates[:, :units], gates[:, units : 2 * units]
        c_tilde, o = activated[:, 2 * units : 3 * units], gates[:, 3 * units :]
        c = f * c + i * c_tilde
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def _gru_fused(projected, recurrent, recurrent_bias, units, return_sequences):
    batch, time = projected.shape[:2]
    h = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        x_part = projected[:, t]
        h_part = h @ recurrent + recurrent_bias
        zr = np.tanh(x_part[:, : 2 * units] + h_part[:, : 2 * units]) * 0.5 + 0.5
        z, r = zr[:, :units], zr[:, units:]
        h_tilde = np.tanh(x_part[:, 2 * units :] + r * h_part[:, 2 * units :])
        h = h_tilde + z * (h - h_tilde)  # = z h + (1 - z) h_tilde
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def _rnn_fused(projected, recurrent, _bias, units, return_sequences):
    batch, time = projected.shape[:2]
    h = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        h = np.tanh(projected[:, t] + h @ recurrent)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def run_recurrent_stepwise(
    cell: str, weights: CellWeights, x: np.ndarray, return_sequences: bool
) -> np.ndarray:
    """`run_recurrent` as the plain loop over the step functions (the reference).

    x: (batch, time, n_in) -> (batch, time, units) or (batch, units).
    """
    batch, time = x.shape[:2]
    h = np.zeros((batch, weights.units))
    c = np.zeros((batch, weights.units))  # LSTM cell state; unused otherwise
    outputs = []
    for t in range(time):
        if cell == "LSTM":
            h, c = lstm_step(x[:, t], h, c, weights)
        elif cell == "GRU":
            h = gru_step(x[:, t], h, weights)
        else:
            h = simple_rnn_step(x[:, t], h, weights)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def run_bidirectional(
    cell: str,
    forward: CellWeights,
    backward: CellWeights,
    x: np.ndarray,
    return_sequences: bool,
) -> np.ndarray:
    """Run a `Bidirectional` layer with merge_mode="concat".

    The backward layer reads the window from its last step to its first. With
    `return_sequences` Keras flips its outputs back into time order, so that
    step t of the result joins the forward output after reading x_0..x_t and
    the backward output after reading x_(T-1)..x_t:

        y_t = [h_forward_t, h_backward_t]

    Without `return_sequences` each direction gives its final output (the
    backward one after reading back to x_0) and the two are concatenated.

    x: (batch, time, n_in) -> (batch, time, 2*units) or (batch, 2*units).
    """
    y_forward = run_recurrent(cell, forward, x, return_sequences)
    y_backward = run_recurrent(cell, backward, x[:, ::-1], return_sequences)
    if return_sequences:
        y_backward = y_backward[:, ::-1]
    return np.concatenate([y_forward, y_backward], axis=-1)


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A linear Dense layer, y = x W + b. x: (batch, n_in) -> (batch, n_out)."""
    return x @ kernel + bias


# --------------------------------------------------------------------------
# Layers as loaded from a file


@dataclass(frozen=True)
class RecurrentLayer:
    """A SimpleRNN, LSTM or GRU layer, or a Bidirectional wrapper around one.

    `backward` is None unless the layer is bidirectional. The output has
    `output_size` features: units, or 2*units when bidirectional.
    """

    name: str
    cell: str
    forward: CellWeights
    backward: CellWeights | None
    return_sequences: bool

    @property
    def output_size(self) -> int:
        return self.forward.units * (1 if self.backward is None else 2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, time, n_in) -> (batch, time, out) or (batch, out),
        out = output_size."""
        if self.backward is None:
            return run_recurrent(self.cell, self.forward, x, self.return_sequences)
        return run_bidirectional(
            self.cell, self.forward, self.backward, x, self.return_sequences
        )


@dataclass(frozen=True)
class DenseLayer:
    """A Dense layer with linear activation: kernel (n_in, n_out), bias (n_out,)."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray

    @property
    def output_size(self) -> int:
        return self.kernel.shape[1]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, n_in) -> (batch, n_out)."""
        return dense(x, self.kernel, self.bias)
