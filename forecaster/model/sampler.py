"""Sampled paths of a stacked LSTM that run the start every path shares only once.

A recursive forecast feeds each call the last `window` values: at call n the
window is the known context from day n·block on, then the path's own n·block
drawn values. The known start is the same for every path of a series, so the
LSTM's state after it is computed once per series and each path runs only its
own drawn tail: about steps/2 cell steps per call instead of `window`.

One thing differs from path to path in that start: the "delta" and
"log-delta" representations feed each value minus the window's LAST value
(forecaster.prep.windows.encode_inputs), which is the path's own last draw.
The state after the start is a smooth function of that one number, so it is
computed at a few Chebyshev nodes spanning the paths' last values and
interpolated (a polynomial through the nodes): with NODES nodes over the
spread of 30 days of draws it agrees with running every window whole to
float32 precision (tests/test_sampling.py holds the two to 1e-5; the
"level" representation needs no interpolation and is exact).

The paths' chunks run on PATH_THREADS threads: NumPy leaves the GIL while
its kernels run, and the chunks share nothing, so the paths are the same
bit for bit on any number of threads. It shortens the wait, not the CPU
time (BENCHMARKS.md, "A 200-series panel against one series").
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from forecaster.model.heads import quantile_function
from forecaster.prep.windows import decode_outputs

NODES = 6  # Chebyshev nodes in the last value, per series and call
PATH_CHUNK = 2048  # paths through the network at once: its buffers stay in cache
PATH_THREADS = min(4, len(os.sched_getaffinity(0)))  # threads over the chunks


def shared_start_paths(
    model, representation: str, context: np.ndarray, uniforms: np.ndarray, block: int
) -> np.ndarray:
    """Drawn paths (b * samples, n_calls * block) scaled, for a StackedLSTM model.

    `model`: a ReferenceModel with a `stacked_lstm` and one input feature;
    `context` (b, window) scaled; `uniforms` (n_calls, b * samples, block) in
    (0, 1), series-major (series 0's samples first), as `Engine.sample_paths`
    draws them. The paths of Engine's loop, which feeds every path its whole
    window, up to the interpolation above.
    """
    context = np.asarray(context, dtype=np.float32)
    n_calls, n_paths = uniforms.shape[:2]
    series, window = context.shape
    samples = n_paths // series
    drawn = np.empty((n_paths, n_calls * block), dtype=np.float32)
    chunks = _chunks(n_paths)
    with ThreadPoolExecutor(max(1, min(PATH_THREADS, len(chunks)))) as pool:
        for call in range(n_calls):
            done = call * block
            known = max(0, window - done)  # the length of the window's shared start
            tail = drawn[:, max(0, done - window) : done]  # each path's own part
            last = tail[:, -1] if done else np.repeat(context[:, -1], samples)
            shift = last if representation != "level" else np.zeros_like(last)
            start = _start_states(model, context[:, window - known :], shift, samples)

            def outputs_of(rows, tail=tail, shift=shift, start=start):
                return _tail_outputs(model, context, tail, shift, start, samples, rows)

            outputs = np.concatenate(list(pool.map(outputs_of, chunks)))[:, :block]
            moves = quantile_function(outputs, model.head, uniforms[call][..., None])
            drawn[:, done : done + block] = decode_outputs(
                last[:, None].astype(np.float64), moves[..., 0], representation
            )
    return drawn


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + PATH_CHUNK, n)) for i in range(0, n, PATH_CHUNK)]


def _start_states(model, start: np.ndarray, shift: np.ndarray, samples: int):
    """Each path's LSTM state (h, c), (paths, total), after its window's shared start.

    `start` (b, known): each series' shared values; `shift` (b * samples,):
    what each path subtracts from them (its last value, or 0 for "level").
    """
    stack = model.stacked_lstm
    series, known = start.shape
    if known == 0:
        zeros = np.zeros((series * samples, stack.total), dtype=np.float32)
        return zeros, zeros
    shift = shift.reshape(series, samples).astype(np.float64)
    low, high = shift.min(axis=1), shift.max(axis=1)
    spread = float((high - low).max())
    count = NODES if spread > 0 else 1
    # Chebyshev nodes of the first kind on each series' [low, high]
    unit = np.cos((2 * np.arange(count) + 1) * np.pi / (2 * count))
    nodes = (low + high)[:, None] / 2 + (high - low)[:, None] / 2 * unit
    x = start[:, None, :] - nodes[..., None]  # (b, count, known)
    x = model.network_inputs(x.reshape(series * count, known, 1))
    _, (h, c) = stack.run(x)
    weights = _lagrange_weights(shift, nodes)  # (b, samples, count)
    h = np.matmul(weights.astype(np.float32), h.reshape(series, count, -1))
    c = np.matmul(weights.astype(np.float32), c.reshape(series, count, -1))
    return h.reshape(series * samples, -1), c.reshape(series * samples, -1)


def _lagrange_weights(points: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Lagrange basis at `points` (b, s) for `nodes` (b, g): weights (b, s, g).

    Weight j is the product over m != j of (point - node m), from running
    products from the left and from the right, over (node j - node m). The
    running products go node by node over whole (b, s) planes: a cumprod
    along the short last axis took 2.5x as long.
    """
    gaps = points[None] - nodes.T[:, :, None]  # (g, b, s): point - node m
    count = len(gaps)
    left, right = np.empty_like(gaps), np.empty_like(gaps)
    left[0] = right[-1] = 1.0
    for k in range(1, count):
        np.multiply(left[k - 1], gaps[k - 1], out=left[k])
        np.multiply(right[count - k], gaps[count - k], out=right[count - k - 1])
    spans = nodes[:, :, None] - nodes[:, None, :]  # (b, g, g): node j - node m
    np.einsum("bjj->bj", spans)[...] = 1.0
    left *= right
    left /= spans.prod(axis=-1).T[:, :, None]
    return np.moveaxis(left, 0, -1)


def _tail_outputs(model, context, tail, shift, start, samples: int, rows: slice):
    """The head's outputs (rows, horizon, n_params) after each path's own tail.

    The tail's first move is from the context's last value when the window
    still holds some of the context, else 0 (a window's first day).
    """
    tail, shift = tail[rows], shift[rows]
    values = tail
    known = context.shape[1] - tail.shape[1]
    if known:
        path_series = np.arange(rows.start, rows.stop) // samples
        values = np.concatenate([context[path_series, -1:], tail], axis=1)
    x = model.network_inputs((values - shift[:, None])[..., None])
    if known:
        x = x[:, 1:]
    top, _ = model.stacked_lstm.run(x, (start[0][rows], start[1][rows]))
    return model.head_of(top)
