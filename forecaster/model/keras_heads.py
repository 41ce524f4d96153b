"""The heads of model.heads as Keras layers and losses, registered for safe_mode.

`MoveChannel` and `DistributionHead` are layers, `HeadLoss` the loss of every
head but mse; each is a registered serializable class with its settings in
`get_config`, so model.keras loads with `safe_mode=True` (no lambdas, no
pickled code). Importing this module imports Keras; forecaster.model.heads holds
the same equations in NumPy.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from forecaster.model.heads import (
    INITIAL_DF,
    MIN_DF,
    MIN_SCALE,
    QUANTILES,
    SCALE_OFFSET,
    HeadSpec,
)

PACKAGE = "forecaster"
LOG_PI = math.log(math.pi)
LOG_2PI = math.log(2 * math.pi)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MoveChannel(keras.layers.Layer):
    """Adds each day's move of input channel 0, divided by `move_scale`, as a channel.

    (b, window, f) -> (b, window, f + 1); the first day's move is 0.
    """

    def __init__(self, move_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.move_scale = float(move_scale)

    def call(self, x):
        first = x[:, :1, :1]
        path = x[..., :1]
        moves = ops.concatenate([first, path[:, :-1]], axis=1)
        return ops.concatenate([x, (path - moves) / self.move_scale], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "move_scale": self.move_scale}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistributionHead(keras.layers.Layer):
    """Dense outputs (b, horizon * n_params) to the head of forecaster.model.heads.

    normal (b, h, 2): location, scale; student-t (b, h, 3): location, scale,
    df (one learned weight, repeated, MIN_DF + softplus(df_gain x weight));
    quantile (b, h, Q) increasing; direction (b, h): P(up). `df_gain` is 1 in
    configs saved before it existed.
    """

    def __init__(
        self,
        kind: str = "normal",
        horizon: int = 1,
        move_scale: float = 1.0,
        quantiles=None,
        df_gain: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kind, self.horizon = kind, int(horizon)
        self.df_gain = float(df_gain)
        self.move_scale = float(move_scale)
        self.quantiles = list(quantiles) if quantiles else []
        self.spec = HeadSpec(kind, self.horizon, self.move_scale, tuple(self.quantiles))

    def build(self, input_shape):
        if self.kind == "student-t":
            initial = math.log(math.expm1(INITIAL_DF - MIN_DF)) / self.df_gain
            self.df_weight = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(initial),
                name="df_weight",
            )

    def call(self, raw):
        if self.kind == "direction":
            return ops.sigmoid(raw)
        raw = ops.reshape(raw, (-1, self.horizon, self.spec.n_params))
        m = self.move_scale
        if self.kind == "quantile":
            return self._quantiles(raw, self.spec.point_index, m)
        location = m * raw[..., 0]
        scale = m * (ops.softplus(raw[..., 1] + SCALE_OFFSET) + MIN_SCALE)
        parts = [location, scale]
        if self.kind == "student-t":
            df = MIN_DF + ops.softplus(self.df_gain * self.df_weight)
            parts.append(ops.ones_like(location) * df)
        return ops.stack(parts, axis=-1)

    @staticmethod
    def _quantiles(raw, median: int, m: float):
        centre = m * raw[..., median : median + 1]
        above = m * ops.cumsum(ops.softplus(raw[..., median + 1 :]), axis=-1)
        below = ops.flip(ops.softplus(raw[..., :median]), axis=-1)
        below = ops.flip(m * ops.cumsum(below, axis=-1), axis=-1)
        return ops.concatenate([centre - below, centre, centre + above], axis=-1)

    def compute_output_shape(self, input_shape):
        if self.kind == "direction":
            return input_shape
        return (input_shape[0], self.horizon, self.spec.n_params)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "horizon": self.horizon,
            "move_scale": self.move_scale,
            "quantiles": self.quantiles,
            "df_gain": self.df_gain,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class HeadLoss(keras.losses.Loss):
    """The training loss of a head: NLL, pinball loss or binary cross-entropy.

    y_true (b, horizon): the moves in the representation; y_pred: the head's
    output. Averaged over steps and windows.
    """

    def __init__(self, kind: str = "normal", quantiles=None, name=None, **kwargs):
        super().__init__(name=name or f"{kind}_loss", **kwargs)
        self.kind = kind
        self.quantiles = list(quantiles) if quantiles else []

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        if self.kind == "direction":
            up = ops.cast(y_true > 0, y_pred.dtype)
            return keras.losses.binary_crossentropy(up[..., None], y_pred[..., None])
        if self.kind == "quantile":
            levels = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
            error = y_true[..., None] - y_pred
            pinball = ops.maximum(levels * error, (levels - 1.0) * error)
            return ops.mean(ops.sum(pinball, axis=-1) / len(self.quantiles), axis=-1)
        z = (y_true - y_pred[..., 0]) / y_pred[..., 1]
        log_scale = ops.log(y_pred[..., 1])
        if self.kind == "normal":
            return ops.mean(log_scale + 0.5 * (z * z + LOG_2PI), axis=-1)
        return ops.mean(log_scale + _t_kernel(z, y_pred[..., 2]), axis=-1)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "quantiles": self.quantiles}


def _t_kernel(z, df):
    """-log of the standard Student-t density with `df` degrees of freedom at z."""
    import tensorflow as tf

    return (
        tf.math.lgamma(df / 2)
        - tf.math.lgamma((df + 1) / 2)
        + 0.5 * ops.log(df)
        + 0.5 * LOG_PI
        + (df + 1) / 2 * ops.log1p(z * z / df)
    )


def head_layers(spec: HeadSpec, df_gain: float = 1.0) -> list:
    """The layers that go after the recurrent stack: Dense, then the head if any.

    `df_gain`: the t head's gain on its df weight (heads.DF_GAIN trains it).
    """
    units = spec.horizon * spec.n_params
    layers = [keras.layers.Dense(units, name="forecast")]
    if spec.kind != "mse":
        layers.append(
            DistributionHead(
                spec.kind,
                spec.horizon,
                spec.move_scale,
                spec.quantiles,
                df_gain=df_gain,
                name="head",
            )
        )
    return layers


def head_loss(spec: HeadSpec):
    """The compile loss for `spec`: "mse" or a HeadLoss."""
    if spec.kind == "mse":
        return "mse"
    return HeadLoss(spec.kind, list(spec.quantiles) or None)


__all__ = ["QUANTILES", "DistributionHead", "HeadLoss", "MoveChannel", "head_layers"]
