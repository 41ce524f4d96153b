"""One training step of the default LSTM stack on the CPU, by implementation.

Why forecaster's steady state cannot simply be made faster by swapping the
LSTM's implementation (issue 27, must-have 5; BENCHMARKS.md). The network of
the peers comparison (3 x LSTM(50), window 100, batch 256, float32, a
Dense(1) readout, MSE) takes one gradient (no optimizer) with:

- keras: Keras 3's own loop (a `while` loop of small ops per time step and
  TensorFlow's gradient of it): what the product trains with;
- keras-xla: the same, traced with `jit_compile=True`;
- keras-unroll: the same layers with `unroll=True` (100 steps inlined);
- keras-stacked: the three cells in one Keras RNN layer (`StackedRNNCells`,
  one `while` loop for all three, the same weights);
- block-lstm: TensorFlow's fused `BlockLSTM` op (one kernel for the whole
  sequence, and one for its gradient), on the same weights;
- hand-bptt: a `tf.custom_gradient` over the sequence: the forward loop keeps
  the gates, the backward loop is written out (forecaster/train/bptt_cells.py's
  equations), the weight gradients accumulated per step.

Each runs in a fresh process, in a rotating order; per variant it reports the
first call (tracing, graph optimisation, the step), the median of the next
steps, and the largest relative difference of its gradients from keras'.

    flock /tmp/bench.lock python -m bench.lstm_step --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = (
    "keras",
    "keras-xla",
    "keras-unroll",
    "keras-stacked",
    "block-lstm",
    "hand-bptt",
)
BATCH, WINDOW, UNITS, LAYERS, FEATURES = 256, 100, 50, 3, 2


def measure(variant: str, steps: int) -> dict:
    """First call and median step of `variant`'s gradient, and its gradient error."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    layers = [
        keras.layers.LSTM(
            UNITS, return_sequences=k < LAYERS - 1, unroll=variant == "keras-unroll"
        )
        for k in range(LAYERS)
    ]
    model = keras.Sequential(
        [keras.Input((WINDOW, FEATURES)), *layers, keras.layers.Dense(1)]
    )
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(BATCH, WINDOW, FEATURES)).astype(np.float32))
    y = tf.constant(rng.normal(size=(BATCH, 1)).astype(np.float32))

    def keras_loss():
        return tf.reduce_mean((model(x) - y) ** 2)

    def sequence_loss(run):
        h = tf.transpose(x, [1, 0, 2])
        zeros = tf.zeros([BATCH, UNITS])
        for layer in layers:
            cell = layer.cell
            h = run(
                h,
                zeros,
                zeros,
                cell.kernel.value,
                cell.recurrent_kernel.value,
                cell.bias.value,
            )
        return tf.reduce_mean((model.layers[-1](h[-1]) - y) ** 2)

    stacked = keras.Sequential(
        [
            keras.Input((WINDOW, FEATURES)),
            keras.layers.RNN(
                keras.layers.StackedRNNCells(
                    [keras.layers.LSTMCell(UNITS) for _ in range(LAYERS)]
                )
            ),
            keras.layers.Dense(1),
        ]
    )
    stacked.set_weights(model.get_weights())

    def stacked_loss():
        return tf.reduce_mean((stacked(x) - y) ** 2)

    loss = {
        "keras-stacked": stacked_loss,
        "block-lstm": lambda: sequence_loss(block_lstm),
        "hand-bptt": lambda: sequence_loss(hand_bptt),
    }.get(variant, keras_loss)
    variables = (stacked if variant == "keras-stacked" else model).trainable_variables

    def gradient(loss_fn):
        with tf.GradientTape() as tape:
            value = loss_fn()
        return tape.gradient(value, variables)

    def reference_gradient():
        with tf.GradientTape() as tape:
            value = keras_loss()
        return tape.gradient(value, model.trainable_variables)

    step = tf.function(lambda: gradient(loss), jit_compile=variant == "keras-xla")
    started = time.perf_counter()
    grads = step()
    first = time.perf_counter() - started
    times, cpu = [], time.process_time()
    for _ in range(steps):
        started = time.perf_counter()
        grads = step()
        times.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu) / steps
    reference = tf.function(reference_gradient)()
    error = max(
        float(tf.reduce_max(tf.abs(a - b)) / tf.reduce_max(tf.abs(b)))
        for a, b in zip(grads, reference, strict=True)
    )
    return {
        "variant": variant,
        "first_s": first,
        "step_s": statistics.median(times),
        "cpu_step_s": cpu,
        "grad_rel_error": error,
    }


def block_lstm(x, h0, c0, kernel, recurrent_kernel, bias):
    """BlockLSTM over x (time, batch, n): hidden states (time, batch, units)."""
    import tensorflow as tf

    def block_order(packed, axis):  # Keras' gates i, f, c, o -> BlockLSTM's i, c, f, o
        i, f, c, o = tf.split(packed, 4, axis=axis)
        return tf.concat([i, c, f, o], axis=axis)

    no_peephole = tf.zeros([UNITS])
    outputs = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.shape(x, out_type=tf.int64)[0],
        x=x,
        cs_prev=c0,
        h_prev=h0,
        w=block_order(tf.concat([kernel, recurrent_kernel], 0), 1),
        wci=no_peephole,
        wcf=no_peephole,
        wco=no_peephole,
        b=block_order(bias, 0),
        forget_bias=0.0,
        cell_clip=-1.0,
        use_peephole=False,
    )
    return outputs[6]


def hand_bptt(x, h0, c0, kernel, recurrent_kernel, bias):
    """The LSTM over x (time, batch, n) with its backward pass written out."""
    import tensorflow as tf

    @tf.custom_gradient
    def run(x, kernel, recurrent_kernel, bias):
        steps = tf.shape(x)[0]

        def forward(t, h, c, gates, tanh_g, cells, hidden):
            z = tf.matmul(x[t], kernel) + tf.matmul(h, recurrent_kernel) + bias
            s = tf.sigmoid(z)
            i, f, _, o = tf.split(s, 4, axis=1)
            g = tf.tanh(z[:, 2 * UNITS : 3 * UNITS])
            c = f * c + i * g
            h = o * tf.tanh(c)
            return (
                t + 1,
                h,
                c,
                gates.write(t, s),
                tanh_g.write(t, g),
                cells.write(t, c),
                hidden.write(t, h),
            )

        def array():
            return tf.TensorArray(tf.float32, size=steps, clear_after_read=False)

        _, _, _, gates, tanh_g, cells, hidden = tf.while_loop(
            lambda t, *_: t < steps,
            forward,
            (0, h0, c0, array(), array(), array(), array()),
        )

        def backward(d_hidden):
            def step(t, dh, dc, dw, du, db, dx):
                i, f, _, o = tf.split(gates.read(t), 4, axis=1)
                g, tanh_c = tanh_g.read(t), tf.tanh(cells.read(t))
                earlier = tf.maximum(t - 1, 0)
                c_prev = tf.cond(t > 0, lambda: cells.read(earlier), lambda: c0)
                h_prev = tf.cond(t > 0, lambda: hidden.read(earlier), lambda: h0)
                dh = dh + d_hidden[t]
                dc_all = dc + dh * o * (1.0 - tanh_c * tanh_c)
                da = tf.concat(
                    [
                        dc_all * g * i * (1.0 - i),
                        dc_all * c_prev * f * (1.0 - f),
                        dc_all * i * (1.0 - g * g),
                        dh * tanh_c * o * (1.0 - o),
                    ],
                    1,
                )
                return (
                    t - 1,
                    tf.matmul(da, recurrent_kernel, transpose_b=True),
                    dc_all * f,
                    dw + tf.matmul(x[t], da, transpose_a=True),
                    du + tf.matmul(h_prev, da, transpose_a=True),
                    db + tf.reduce_sum(da, 0),
                    dx.write(t, tf.matmul(da, kernel, transpose_b=True)),
                )

            start = (
                steps - 1,
                tf.zeros_like(h0),
                tf.zeros_like(c0),
                tf.zeros_like(kernel),
                tf.zeros_like(recurrent_kernel),
                tf.zeros_like(bias),
                tf.TensorArray(tf.float32, size=steps),
            )
            *_, dw, du, db, dx = tf.while_loop(lambda t, *_: t >= 0, step, start)
            return dx.stack(), dw, du, db

        return hidden.stack(), backward

    return run(x, kernel, recurrent_kernel, bias)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(measure(args.variant, args.steps)))
        return
    rows = []
    for k in range(args.rounds):
        for variant in VARIANTS[k % len(VARIANTS) :] + VARIANTS[: k % len(VARIANTS)]:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.lstm_step",
                    "--variant",
                    variant,
                    "--steps",
                    str(args.steps),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(
        "| variant | first call s | step ms (median) | vs keras | CPU ms a step |"
        " grad rel. error |"
    )
    print("|---|---|---|---|---|---|")
    keras_step = statistics.median(r["step_s"] for r in rows if r["variant"] == "keras")
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        step = statistics.median(r["step_s"] for r in mine)
        print(
            f"| {variant} | {statistics.median(r['first_s'] for r in mine):.2f} | "
            f"{step * 1000:.0f} | {keras_step / step:.2f}x | "
            f"{statistics.median(r['cpu_step_s'] for r in mine) * 1000:.0f} | "
            f"{max(r['grad_rel_error'] for r in mine):.1e} |"
        )


if __name__ == "__main__":
    main()
