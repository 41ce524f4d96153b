"""The model factory: a compiled stacked LSTM, GRU or SimpleRNN `keras.Sequential`."""

from __future__ import annotations

import keras

from forecaster.config import CELLS, ModelSettings, check_choice
from forecaster.errors import ForecasterError
from forecaster.model.heads import QUANTILES, HeadSpec, head_kind
from forecaster.model.keras_heads import MoveChannel, head_layers, head_loss
from forecaster.model.stacked import run_stacked


def build_model(
    settings: ModelSettings,
    window: int,
    horizon: int = 1,
    n_features: int = 1,
    scales: tuple[float, float] = (1.0, 1.0),
):
    """Build and compile the network described by `settings`.

    Input `(batch, window, n_features)`, output `(batch, horizon)`: `layers`
    recurrent layers of `units` each (optionally `Bidirectional`), each followed
    by Dropout when `dropout > 0`, then `Dense(horizon)`. Adam (with
    `clipnorm` when set) and MSE.

    With another `loss` or `objective` (forecaster.model.heads) the window first
    gains a channel of daily moves (`MoveChannel`, divided by `scales[1]`,
    the training moves' std), and the Dense layer feeds a `DistributionHead`
    whose outputs are in units of `scales[0]` (the std of the training
    targets in the representation), trained by that head's loss.

    LSTM and GRU keep Keras' defaults for activation (tanh), recurrent
    activation (sigmoid), `recurrent_dropout=0`, `unroll=False`,
    `use_bias=True` and, for GRU, `reset_after=True`: those are the conditions
    under which Keras runs them with the fused cuDNN kernel on a GPU. Dropout
    is therefore a separate layer, never `recurrent_dropout`.
    """
    check_choice("cell", settings.cell, CELLS)
    settings.validate()
    for name, value in (
        ("window", window),
        ("horizon", horizon),
        ("n_features", n_features),
    ):
        if value < 1:
            raise ForecasterError(
                f"{name} must be at least 1. Received: {name}={value}"
            )
    kind = head_kind(settings.loss, settings.objective)
    spec = HeadSpec(kind, horizon, scales[0], QUANTILES if kind == "quantile" else ())
    layers = [keras.Input(shape=(window, n_features), name="window")]
    if kind != "mse":
        layers.append(MoveChannel(scales[1], name="moves"))
    for depth in range(settings.layers):
        last = depth == settings.layers - 1
        layers.append(_recurrent_layer(settings, return_sequences=not last))
        if settings.dropout > 0:
            layers.append(keras.layers.Dropout(settings.dropout))
    layers.extend(head_layers(spec, settings.df_gain))
    model = keras.Sequential(layers, name=f"stacked_{settings.cell}")
    run_stacked(model)  # LSTM layers in one loop over time; saved as they are
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=settings.learning_rate, clipnorm=settings.clipnorm
        ),
        loss=head_loss(spec),
    )
    return model


def _recurrent_layer(settings: ModelSettings, return_sequences: bool):
    kind = {
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
        "rnn": keras.layers.SimpleRNN,
    }[settings.cell]
    layer = kind(settings.units, return_sequences=return_sequences)
    if settings.bidirectional:
        layer = keras.layers.Bidirectional(layer)
    return layer
