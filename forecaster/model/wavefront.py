"""A faster NumPy forward pass for stacked one-way LSTMs: all layers advance at once.

A 30-day recursive forecast with LSTM(50) x 3 over 100-day windows runs 9,000
cell steps one after another, and in NumPy each step costs a handful of
calls on tiny arrays, so the call count is what matters. Layer k at time t
needs only layer k-1's output at t and its own state at t-1; so at "wave" w
layer k can take step t = w - k, and every layer moves in the same wave: one
matrix product and seven elementwise calls per wave for the whole stack,
T + L - 1 waves instead of T x L steps.

The equations are those of `forecaster.model.cells.lstm_step`. How the wave
is packed into few calls:

- One vector `v = [h of every layer, x_t, 1]` times one matrix gives
  every gate's pre-activation, input and bias included.
- The buffers are unit-major, (units, batch): a block of gates is one
  contiguous slice, so each call is one long loop over many paths.
- The gates are gate-major across layers, in the order
  [o, i, f, c~], and the cell state c sits right after c~ in the same
  buffer: then [i, f] and [c~, c] are two adjacent slices, and one product
  gives [i c~, f c] for every layer at once.
- The i, f and o columns are pre-halved, so one tanh gives every sigmoid:
  σ(a) = (1 + tanh(a / 2)) / 2.

Tests check it against the layer-by-layer reference.
"""

from __future__ import annotations

import numpy as np

# Keras stores the gates in the order i, f, c~, o; the buffer wants o, i, f, c~.
KERAS_GATE = {"o": 3, "i": 0, "f": 1, "c~": 2}
SLOTS = ("o", "i", "f", "c~")


class StackedLSTM:
    """The last output of stacked LSTM layers (all but the last return sequences).

    cells: list of `cells.CellWeights`, bottom layer first; layer k's
    kernel is (n_in_k, 4 * units_k) with n_in_k = units_(k-1) above the first.
    """

    def __init__(self, cells: list):
        units = [cell.units for cell in cells]
        self.n_layers = len(cells)
        self.n_in = cells[0].kernel.shape[0]
        self.offsets = np.concatenate([[0], np.cumsum(units)]).astype(int)
        total = self.total = int(self.offsets[-1])
        # Rows: h of every layer, then x, then the constant 1 (the biases).
        # Column of (slot s, layer k, unit j): s * total + offsets[k] + j.
        x_rows = slice(total, total + self.n_in)
        mixing = np.zeros((total + self.n_in + 1, 4 * total))
        for k, cell in enumerate(cells):
            own = slice(self.offsets[k], self.offsets[k + 1])
            below = x_rows if k == 0 else slice(self.offsets[k - 1], self.offsets[k])
            for s, name in enumerate(SLOTS):
                gate = slice(
                    KERAS_GATE[name] * units[k], (KERAS_GATE[name] + 1) * units[k]
                )
                scale = 1.0 if name == "c~" else 0.5  # pre-halved for σ via tanh
                columns = slice(s * total + own.start, s * total + own.stop)
                mixing[own, columns] = cell.recurrent_kernel[:, gate] * scale
                mixing[below, columns] = cell.kernel[:, gate] * scale
                mixing[-1, columns] = cell.bias[gate] * scale
        # float32, as Keras computes: about 3x faster for these small products.
        self.mixing = mixing.astype(np.float32)
        # the same, transposed for the unit-major buffers of `run`
        self.mixing_by_unit = np.ascontiguousarray(self.mixing.T)
        self.last = slice(self.offsets[-2], self.offsets[-1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, time, n_in) -> the top layer's last output (batch, units_top).

        Computed in float32, like Keras (the layer-by-layer reference uses
        float64); the two agree to about 1e-6.
        """
        return self.run(x)[0]

    def run(self, x: np.ndarray, state=None):
        """x (batch, time, n_in) from `state` -> (top output, state after x).

        `state`: (h, c), each (batch, total) with every layer's units side by
        side (`offsets`), the layers' state before x's first step; None: zeros,
        as Keras starts each window. The state returned is each layer's after
        x's last step: feeding the rest of a sequence from it continues the
        same computation (model.sampler runs the shared start of many windows
        once this way).

        Inside, every buffer is unit-major, (rows, batch): each gate block is
        one contiguous slice, so each elementwise call is one long SIMD loop
        rather than a short loop per row (about 2.5x less time per wave at a
        few thousand rows than the batch-major layout).
        """
        batch, time = x.shape[:2]
        total, n_layers = self.total, self.n_layers
        inputs = np.ascontiguousarray(np.asarray(x, np.float32).transpose(1, 2, 0))
        v = np.zeros((total + self.n_in + 1, batch), dtype=np.float32)
        v[-1] = 1.0
        h, x_t = v[:total], v[total : total + self.n_in]
        # One buffer [o, i, f, c~, c]: the gates of a wave, then the cell state.
        state_buffer = np.zeros((5 * total, batch), dtype=np.float32)
        c = state_buffer[4 * total :]
        if state is None:
            start_h = start_c = np.zeros((total, batch), dtype=np.float32)
        else:
            start_h, start_c = (np.asarray(a, dtype=np.float32).T for a in state)
            h[...], c[...] = start_h, start_c
        end_h = np.empty((total, batch), dtype=np.float32)
        end_c = np.empty((total, batch), dtype=np.float32)
        scratch = np.empty((3 * total, batch), dtype=np.float32)
        for wave in range(time + n_layers - 1 if time else 0):
            if wave < time:  # after the last input, layer 0's output is unused
                x_t[...] = inputs[wave]
            self._wave(v, state_buffer, scratch)
            if wave < n_layers - 1:  # layers above `wave` have not started yet
                above = slice(self.offsets[wave + 1], None)
                h[above], c[above] = start_h[above], start_c[above]
            done = wave - time + 1  # layer `done` has just taken x's last step
            if 0 <= done < n_layers:
                own = slice(self.offsets[done], self.offsets[done + 1])
                end_h[own], end_c[own] = h[own], c[own]
        if time == 0:
            end_h[...], end_c[...] = start_h, start_c
        return end_h[self.last].T.copy(), (end_h.T.copy(), end_c.T.copy())

    def _wave(self, v: np.ndarray, state: np.ndarray, scratch: np.ndarray) -> None:
        """One wave in place, unit-major: every layer's gates, cell state c and h."""
        total = self.total
        gates, sigmoids = state[: 4 * total], state[: 3 * total]
        o, i_f = state[:total], state[total : 3 * total]
        c_tilde_c, c = state[3 * total :], state[4 * total :]
        products, tanh_c = scratch[: 2 * total], scratch[2 * total :]
        np.matmul(self.mixing_by_unit, v, out=gates)
        np.tanh(gates, out=gates)
        np.multiply(sigmoids, 0.5, out=sigmoids)
        np.add(sigmoids, 0.5, out=sigmoids)  # σ for the pre-halved o, i, f
        np.multiply(i_f, c_tilde_c, out=products)  # [i c~, f c]
        np.add(products[:total], products[total:], out=c)  # c = f c + i c~
        np.tanh(c, out=tanh_c)
        np.multiply(o, tanh_c, out=v[:total])  # h = o tanh(c)


def stacked_lstm_for(layers: list) -> StackedLSTM | None:
    """A StackedLSTM for `ReferenceModel.layers` when they fit, else None.

    Fits: one-way LSTM layers, all but the last returning sequences, then
    one Dense layer.
    """
    *recurrent, head = layers
    if not recurrent or head.__class__.__name__ != "DenseLayer":
        return None
    for k, layer in enumerate(recurrent):
        last = k == len(recurrent) - 1
        if (
            layer.__class__.__name__ != "RecurrentLayer"
            or layer.cell != "LSTM"
            or layer.backward is not None
            or layer.return_sequences == last
        ):
            return None
    return StackedLSTM([layer.forward for layer in recurrent])
