"""Forecasting engines: the shared `Engine` and the NumPy one (never TensorFlow).

The Keras engine, with its in-graph loop, is model.keras_engine; which of the
two runs a saved model is chosen in model.choose. Both expose the same two
calls on scaled data: `predict(windows)` for one model call on a batch of
windows, and
`forecast(context, steps, block)` for a recursive forecast that feeds its own
predictions back, `block` steps at a time (1 = one-step recursion, the model's
horizon = direct multi-step). A model with a probabilistic head also gives
`sample_paths`, the same loop fed with values drawn from its distribution,
and `step_quantiles`, the quantiles of one call's steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from forecaster.config import check_at_least
from forecaster.errors import ForecasterError
from forecaster.model.draws import path_uniforms
from forecaster.model.heads import HeadSpec, point, quantile_function
from forecaster.model.reference import ReferenceModel
from forecaster.model.sampler import PATH_CHUNK, shared_start_paths
from forecaster.prep.windows import decode_outputs, encode_inputs

SAMPLE_CHUNK = 16384  # contexts per model call when sampling paths
SMALL_BATCH = 16384  # rows up to which the NumPy engine's BLAS runs one thread


class Engine:
    """Shared logic; subclasses provide `_call(inputs) -> outputs`."""

    name = "base"
    head = HeadSpec()  # what the model outputs (model.heads); set by subclasses

    def __init__(self, representation: str, window: int, horizon: int):
        self.representation = representation
        self.window = window
        self.horizon = horizon

    def predict(self, windows: np.ndarray, extra: np.ndarray | None = None):
        """Scaled windows (b, window) to scaled predictions (b, horizon), float64.

        `extra` (b, window, n_extra): the scaled input features beside the
        target, for a model trained with them. A probabilistic head's point
        forecast is its location (normal, t) or median (quantile).
        """
        if self.head.kind == "direction":
            raise ForecasterError(
                "This model forecasts the direction of the next move (P(up)), not "
                "prices: use predict_head. Received: a model with objective="
                "'direction'"
            )
        windows = np.asarray(windows, dtype=np.float32)
        outputs = self.predict_head(windows, extra)
        return decode_outputs(
            windows.astype(np.float64), point(outputs, self.head), self.representation
        )

    def predict_head(self, windows: np.ndarray, extra: np.ndarray | None = None):
        """The head's outputs for scaled windows (b, window), float64, not decoded.

        (b, horizon) for mse and direction heads, (b, horizon, n_params) for
        the others, in the representation's units (forecaster.model.heads).
        """
        windows = np.asarray(windows, dtype=np.float32)
        inputs = encode_inputs(windows, self.representation)
        if extra is not None:
            inputs = np.concatenate([inputs, np.asarray(extra, np.float32)], axis=-1)
        return np.asarray(self._call(inputs), dtype=np.float64)

    def forecast(
        self, context: np.ndarray, steps: int, block: int = 1, extra=None
    ) -> np.ndarray:
        """Recursive forecast from scaled contexts (b, window) to (b, steps) scaled.

        Each model call predicts `horizon` steps; the first `block` of them are
        kept and appended to the context for the next call. With `extra`
        features the future inputs are unknown, so only one call is made:
        `steps` must be at most the model's horizon.
        """
        check_block_size(block, self.horizon)
        if extra is not None:
            check_direct_steps(steps, self.horizon)
            return self.predict(context, extra)[:, :steps]
        context = np.array(context, dtype=np.float32)
        pieces, done = [], 0
        while done < steps:
            predicted = self.predict(context)[:, :block]
            pieces.append(predicted)
            context = np.concatenate(
                [context[:, block:], predicted.astype(np.float32)], 1
            )
            done += block
        return np.concatenate(pieces, axis=1)[:, :steps]

    def sample_paths(
        self, context: np.ndarray, steps: int, samples: int, seed: int, block: int = 1
    ) -> np.ndarray:
        """Paths drawn from the model's distribution, (b, samples, steps) scaled.

        From scaled contexts (b, window): the loop of `forecast`, but each
        call's next `block` moves are DRAWN from the head's distribution (the
        inverse CDF of model.draws.path_uniforms(seed): the same seed gives
        the same paths, and every series the same draws) and appended to each
        path's own context. The b x samples contexts go through the model
        together. Steps within one block are drawn independently, each from
        its own distribution: a direct head gives one distribution per step,
        not their joint law.
        """
        check_block_size(block, self.horizon)
        check_at_least("steps", steps)
        check_at_least("samples", samples)
        self._check_probabilistic("sampling paths", f"samples={samples}")
        n_calls = -(-steps // block)
        draws = path_uniforms(seed, samples, n_calls * block)
        # (n_calls, b * samples, block): every series is drawn with the same set
        uniforms = np.tile(
            draws.reshape(samples, n_calls, block).transpose(1, 0, 2),
            (1, len(context), 1),
        )
        context = np.asarray(context, dtype=np.float32)
        paths = self._draw_paths(context, uniforms, block)[:, :steps]
        return paths.reshape(-1, samples, steps)

    def _draw_paths(self, context, uniforms: np.ndarray, block: int) -> np.ndarray:
        """Paths (b * samples, n_calls * block) scaled: each call's moves drawn.

        `uniforms` (n_calls, b * samples, block), series-major; each path
        feeds its whole window to the model, SAMPLE_CHUNK windows per call.
        """
        samples = uniforms.shape[1] // len(context)
        context = np.repeat(context, samples, axis=0)
        pieces = []
        for draws in uniforms:
            outputs = self._head_in_chunks(context)[:, :block]
            moves = quantile_function(outputs, self.head, draws[..., None])[..., 0]
            drawn = decode_outputs(
                context.astype(np.float64), moves, self.representation
            )
            pieces.append(drawn)
            context = np.concatenate([context[:, block:], drawn.astype(np.float32)], 1)
        return np.concatenate(pieces, axis=1)

    def step_quantiles(
        self, context: np.ndarray, steps: int, levels, extra=None
    ) -> np.ndarray:
        """Quantiles of the next `steps` values, read from one model call's head.

        Contexts (b, window) to (b, steps, len(levels)) scaled values, for a
        direct forecast: `steps` is at most the model's horizon and each step
        has its own distribution, so nothing is sampled. `extra` as in
        `predict`.
        """
        check_at_least("steps", steps)
        self._check_probabilistic("quantiles per step", f"levels={list(levels)}")
        if steps > self.horizon:
            raise ForecasterError(
                f"steps must be at most the model's horizon {self.horizon} to read "
                "quantiles from one model call; further steps need sample_paths. "
                f"Received: steps={steps}"
            )
        context = np.asarray(context, dtype=np.float32)
        outputs = self.predict_head(context, extra)[:, :steps]
        moves = quantile_function(outputs, self.head, levels)
        values = decode_outputs(
            context.astype(np.float64),
            moves.reshape(len(moves), -1),
            self.representation,
        )
        return values.reshape(moves.shape)

    def _head_in_chunks(self, windows: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                self.predict_head(windows[start : start + SAMPLE_CHUNK])
                for start in range(0, len(windows), SAMPLE_CHUNK)
            ]
        )

    def _check_probabilistic(self, what: str, received: str) -> None:
        if self.head.probabilistic:
            return
        trained = (
            "objective='direction'"
            if self.head.kind == "direction"
            else f"loss={self.head.kind!r}"
        )
        raise ForecasterError(
            f"{what} needs a model with a probabilistic head: train it with loss "
            f"'normal', 'student-t' or 'quantile'. Received: {received} for a model "
            f"trained with {trained}"
        )

    def _call(self, inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class NumpyEngine(Engine):
    """The NumPy reference cells of model.reference: never imports TensorFlow."""

    name = "numpy"

    def __init__(
        self, model_path: Path, representation: str, window: int, horizon: int
    ):
        super().__init__(representation, window, horizon)
        self.model = ReferenceModel.load(model_path)
        self.head = self.model.head
        self.blas = ThreadpoolController()

    def _call(self, inputs: np.ndarray) -> np.ndarray:
        with self.blas_threads(len(inputs)):
            return self.model.predict(inputs)

    def _draw_paths(self, context, uniforms: np.ndarray, block: int) -> np.ndarray:
        """Engine's paths; a stacked LSTM runs each window's shared start once."""
        if self.model.stacked_lstm is None or self.model.n_features != 1:
            return super()._draw_paths(context, uniforms, block)
        with self.blas_threads(min(uniforms.shape[1], PATH_CHUNK)):
            return shared_start_paths(
                self.model, self.representation, context, uniforms, block
            )

    def blas_threads(self, rows: int):
        """A context limiting BLAS to one thread for products of <= SMALL_BATCH rows.

        The cells' products are small: OpenBLAS's extra threads gain little
        on them and spin while other processes hold the cores (a 30-day
        forecast went from 0.3 s to 4-12 s under load; BENCHMARKS.md). Only
        the engine's own calls are limited, not the process.
        """
        return self.blas.limit(
            limits=1 if rows <= SMALL_BATCH else None, user_api="blas"
        )


def check_direct_steps(steps: int, horizon: int, name: str = "steps") -> None:
    """With input features beside the target, a forecast reaches `horizon` steps.

    `name`: the argument the message names (steps, or days for a forecast).
    """
    if steps > horizon:
        raise ForecasterError(
            f"{name} must be at most the model's horizon {horizon} when it takes "
            "input features other than the price: their future values are "
            "unknown, so no recursive loop can feed them. Train with a larger "
            f"horizon (direct forecasts). Received: {name}={steps}"
        )


def check_block_size(block: int, horizon: int) -> None:
    """Raise unless 1 <= block <= horizon: the steps kept from each model call."""
    if not 1 <= block <= horizon:
        raise ForecasterError(
            f"block must be between 1 and the model's horizon {horizon}. Received: "
            f"block={block}"
        )
