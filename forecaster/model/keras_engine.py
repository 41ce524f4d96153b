"""The Keras engine: a Keras model called through compiled tf.functions.

`KerasEngine` runs the recursive forecast of model.engines inside one
TensorFlow graph; `load_keras_model` reads a bundle's model.keras with Keras'
safe mode. TensorFlow and Keras are imported inside the functions that use
them, so importing this module (model.choose, the API) loads neither: a
forecast that the NumPy engine runs never starts TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from forecaster.errors import BundleError
from forecaster.model.engines import Engine, check_block_size
from forecaster.model.heads import HeadSpec, point, spec_from_config
from forecaster.prep.windows import decode_outputs, encode_inputs


class KerasEngine(Engine):
    """The Keras model, called through compiled tf.functions (no per-call overhead)."""

    name = "keras"

    def __init__(
        self,
        model,
        representation: str,
        window: int,
        horizon: int,
        jit_compile: bool = True,
    ):
        import tensorflow as tf

        super().__init__(representation, window, horizon)
        self.model = model
        self.head = keras_head_spec(model)
        # XLA fuses the loop of `forecast` (measured ~30x faster per call on
        # 2 CPU cores) but compiles for ~0.6 s first: worth it when forecasting
        # many times (evaluation, benchmarks), not for one forecast.
        self.jit_compile = jit_compile
        spec = tf.TensorSpec([None, window, model.input_shape[-1]], tf.float32)
        self._compiled = tf.function(
            lambda x: model(x, training=False), input_signature=[spec]
        )
        self._loops = {}

    @classmethod
    def from_file(
        cls,
        model_path: Path,
        representation: str,
        window: int,
        horizon: int,
        jit_compile: bool = True,
    ):
        model = load_keras_model(model_path)
        return cls(model, representation, window, horizon, jit_compile)

    def _call(self, inputs: np.ndarray) -> np.ndarray:
        return self._compiled(inputs).numpy()

    def forecast(
        self, context: np.ndarray, steps: int, block: int = 1, extra=None
    ) -> np.ndarray:
        """The whole recursive loop runs inside one compiled TensorFlow graph."""
        if extra is not None:
            return super().forecast(context, steps, block, extra)
        check_block_size(block, self.horizon)
        if block not in self._loops:
            self._loops[block] = self._build_loop(block)
        n_blocks = -(-steps // block)
        out = self._loops[block](np.asarray(context, dtype=np.float32), n_blocks)
        return out.numpy().astype(np.float64)[:, :steps]

    def _build_loop(self, block: int):
        import tensorflow as tf

        model, representation, head = self.model, self.representation, self.head
        spec = [
            tf.TensorSpec([None, self.window], tf.float32),
            tf.TensorSpec([], tf.int32),
        ]

        @tf.function(input_signature=spec, jit_compile=self.jit_compile)
        def loop(context, n_blocks):
            predictions = tf.TensorArray(tf.float32, size=n_blocks)

            def body(i, ctx, predictions):
                inputs = encode_inputs(ctx, representation)
                out = point(model(inputs, training=False), head)[:, :block]
                out = decode_outputs(ctx, out, representation)
                return (
                    i + 1,
                    tf.concat([ctx[:, block:], out], 1),
                    predictions.write(i, out),
                )

            _, _, predictions = tf.while_loop(
                lambda i, *_: i < n_blocks, body, (tf.constant(0), context, predictions)
            )
            stacked = predictions.stack()  # (n_blocks, batch, block)
            return tf.reshape(
                tf.transpose(stacked, [1, 0, 2]), [tf.shape(context)[0], -1]
            )

        return loop


def keras_head_spec(model) -> HeadSpec:
    """The HeadSpec of a Keras model (mse unless its last layer is a head)."""
    return spec_from_config(
        {
            "config": {
                "layers": [
                    {"class_name": type(layer).__name__, "config": layer.get_config()}
                    for layer in model.layers
                ]
            }
        }
    )


def load_keras_model(file: str | os.PathLike):
    """Load model.keras with Keras' safe mode on (no arbitrary code, no pickle)."""
    import keras

    # Registers the head layers. Here, not at the top, since it imports Keras:
    # the NumPy forecasting path (api -> model.choose -> here) never loads it.
    import forecaster.model.keras_heads  # noqa: F401

    try:
        return keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many kinds for a damaged archive
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise BundleError(
            f"Cannot load the model in {str(file)!r} ({first}): the bundle is damaged "
            "or incompatible, train it again."
        ) from None
