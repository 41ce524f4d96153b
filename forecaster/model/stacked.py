"""A model's stacked LSTM layers run as one loop over time: the same math, ~1.6x faster.

Keras runs each recurrent layer as its own `while` loop over the window: the
default network (3 x LSTM(50), window 100) walks the window three times, one
layer after another, each step a handful of small ops. Run as one loop whose
step goes through the three cells in turn (Keras' `RNN(StackedRNNCells)`),
a gradient step took 83 ms instead of 126 ms on 2 cores, with
bit-identical gradients (bench/lstm_step.py, BENCHMARKS.md): TensorFlow can
start layer 1's next step while layers 2 and 3 finish this one, and there
is one loop's overhead instead of three.

`run_stacked` does this for a built Sequential without changing it: its
layers, config, weights and saved file stay those of separate LSTM layers
(the NumPy engine, a bundle and a checkpoint read as before); only this
instance's `call` goes through the cells of each run of two or more
consecutive plain LSTM layers together. A model loaded from disk is routed
by calling it once more. On a GPU nothing is routed: there Keras runs each
LSTM layer with the fused cuDNN kernel, which a stacked loop would bypass.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def run_stacked(model) -> int:
    """Route `model`'s runs of consecutive LSTM layers through one loop each.

    Returns how many layers now run inside such a loop (0: the model is
    unchanged, e.g. one recurrent layer, GRU cells, Dropout between the
    layers, or a GPU is visible). Call before the model's first traced step.
    Idempotent.
    """
    if tf.config.list_physical_devices("GPU"):
        return 0  # Keras' cuDNN LSTM kernel beats any loop
    plan, stacked = _plan(list(model.layers))
    if stacked:
        model.call = _StackedCall(plan)
    return stacked


def _plan(layers: list) -> tuple[list, int]:
    """(callables applied in order, layers inside a stacked loop)."""
    plan, stacked, k = [], 0, 0
    while k < len(layers):
        run = 1
        while (
            k + run < len(layers)
            and _eligible(layers[k + run - 1])
            and _eligible(layers[k + run])
            and layers[k + run - 1].return_sequences
        ):
            run += 1
        if run > 1:
            group = layers[k : k + run]
            plan.append(
                keras.layers.RNN(
                    keras.layers.StackedRNNCells([layer.cell for layer in group]),
                    return_sequences=group[-1].return_sequences,
                )
            )
            stacked += run
        else:
            plan.append(layers[k])
        k += run
    return plan, stacked


def _eligible(layer) -> bool:
    """A plain LSTM layer whose loop a stacked loop reproduces exactly."""
    return (
        type(layer) is keras.layers.LSTM
        and not layer.go_backwards
        and not layer.stateful
        and not layer.unroll
        and not layer.return_state
        and not layer.cell.dropout
        and not layer.cell.recurrent_dropout
    )


class _StackedCall:
    """The Sequential's `call`, with each run of LSTM layers as one stacked loop."""

    def __init__(self, plan: list):
        self.plan = plan

    def __call__(self, inputs, training=None, mask=None, **kwargs):
        outputs = inputs
        for step in self.plan:
            outputs = step(outputs, training=training)
        return outputs
