"""Backpropagation through time for every cell the factory builds, step by step.

Each cell's forward step and, beside it, the same step backward, with the
equations; then one direction of a recurrent layer run forward (keeping
what the backward pass needs) and backward over a whole window.

Notation as in forecaster/model/cells.py: row vectors, `x_part` = x_t W + b_x
(computed for every step at once), `U` the recurrent kernel, σ the sigmoid.
A step's state is a tuple: (h,) for SimpleRNN and GRU, (h, c) for LSTM. Each
backward step takes dL/d(state after the step) and returns
  d_x_part  dL/d(x_t W + b_x)           -> dW, db_x and dL/dx_t
  d_rec     dL/d(h_prev U + b_h)        -> dU (and db_h for the GRU)
  d_prev    dL/d(state before the step)
The weight gradients are then sums over steps, done once per layer.
"""

from __future__ import annotations

import numpy as np

from forecaster.model.cells import sigmoid


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
