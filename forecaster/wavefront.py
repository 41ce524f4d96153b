"""A faster NumPy forward pass for stacked one-way LSTMs: all layers advance at once.

A 30-day recursive forecast with LSTM(50) x 3 over 100-day windows runs 9,000
cell steps one after another, and in NumPy each step costs a handful of
calls on tiny arrays, so the call count is what matters. Layer k at time t
needs only layer k-1's output at t and its own state at t-1; so at "wave" w
layer k can take step t = w - k, and every layer moves in the same wave: one
matrix product and one set of elementwise calls per wave for the whole stack,
T + L - 1 waves instead of T x L steps.

The equations are those of `forecaster.reference.lstm_step`; the gate columns
are laid out gate-major across layers ([i of every layer, f of every layer,
c~ ..., o ...]) so the cell update runs on all layers at once, and the i, f,
o columns are pre-halved so one tanh gives every sigmoid
(σ(a) = (1 + tanh(a / 2)) / 2). Tests check it against the reference.
"""

from __future__ import annotations

import numpy as np


class StackedLSTM:
    """The last output of stacked LSTM layers (all but the last return sequences).

    cells: list of `reference.CellWeights`, bottom layer first; layer k's
    kernel is (n_in_k, 4 * units_k) with n_in_k = units_(k-1) above the first.
    """

    def __init__(self, cells: list):
        units = [cell.units for cell in cells]
        self.n_layers = len(cells)
        self.offsets = np.concatenate([[0], np.cumsum(units)]).astype(int)
        total = int(self.offsets[-1])
        self.total = total
        # Column for (gate g, layer k, unit j): g * total + offsets[k] + j.
        self.mixing = np.zeros((total, 4 * total))
        self.bias = np.zeros(4 * total)
        self.first_kernel = np.zeros((cells[0].kernel.shape[0], 4 * total))
        for k, cell in enumerate(cells):
            columns = self._columns(k)
            halve = np.repeat([0.5, 0.5, 1.0, 0.5], units[k])
            rows = slice(self.offsets[k], self.offsets[k + 1])
            self.mixing[rows, columns] = cell.recurrent_kernel * halve
            if k == 0:
                self.first_kernel[:, columns] = cell.kernel * halve
                self.first_bias = np.zeros(4 * total)
                self.first_bias[columns] = cell.bias * halve
            else:
                below = slice(self.offsets[k - 1], self.offsets[k])
                self.mixing[below, columns] = cell.kernel * halve
                self.bias[columns] = cell.bias * halve
        self.last = slice(self.offsets[-2], self.offsets[-1])
        # float32, as Keras computes: about 3x faster for these small products.
        for name in ("mixing", "bias", "first_kernel", "first_bias"):
            setattr(self, name, getattr(self, name).astype(np.float32))

    def _columns(self, k: int) -> np.ndarray:
        lo, hi = self.offsets[k], self.offsets[k + 1]
        return np.concatenate([np.arange(lo, hi) + g * self.total for g in range(4)])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, time, n_in) -> the top layer's last output (batch, units_top).

        Computed in float32, like Keras (the layer-by-layer reference uses
        float64); the two agree to about 1e-6.
        """
        batch, time = x.shape[:2]
        total, n_layers = self.total, self.n_layers
        x = np.asarray(x, dtype=np.float32)
        # What each wave adds besides h @ mixing: x_t W + b for layer 0 while
        # there is input, and the biases of the layers above.
        drive = x @ self.first_kernel + self.first_bias + self.bias
        h = np.zeros((batch, total), dtype=np.float32)
        c = np.zeros((batch, total), dtype=np.float32)
        # Buffers reused by every wave, so the loop allocates nothing.
        pre = np.empty((batch, 4 * total), dtype=np.float32)
        gates = np.empty_like(pre)
        scratch = np.empty_like(c)
        i, f = gates[:, :total], gates[:, total : 2 * total]
        c_tilde, o = pre[:, 2 * total : 3 * total], gates[:, 3 * total :]
        for wave in range(time + n_layers - 1):
            np.matmul(h, self.mixing, out=pre)
            pre += drive[:, wave] if wave < time else self.bias
            np.tanh(pre, out=pre)
            np.multiply(pre, 0.5, out=gates)
            gates += 0.5  # σ for the pre-halved i, f, o columns
            c *= f
            np.multiply(i, c_tilde, out=scratch)
            c += scratch  # c = f c + i c~
            np.tanh(c, out=scratch)
            np.multiply(o, scratch, out=h)  # h = o tanh(c)
            if wave < n_layers - 1:  # layers above `wave` have not started yet
                h[:, self.offsets[wave + 1] :] = 0.0
                c[:, self.offsets[wave + 1] :] = 0.0
        return h[:, self.last]


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
