"""A readable NumPy reference of our Keras models, loaded without TensorFlow.

`ReferenceModel.load("model.keras")` reads the saved file (a zip holding
`config.json` and `model.weights.h5`) with `zipfile`, `json` and `h5py`
(forecaster.model.reference_loader), and `predict` runs the forward pass with
the equations of forecaster.model.cells, in float64. It reproduces the models
of `forecaster.model.factory.build_model` to within 1e-5 of Keras on the CPU:
stacked SimpleRNN, LSTM and GRU layers, optionally `Bidirectional`, Dropout
between them and a final `Dense`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forecaster.errors import ForecasterError, UnsupportedModelError
from forecaster.model.heads import HeadSpec, head_outputs, move_channel
from forecaster.model.reference_loader import read_saved_model
from forecaster.model.wavefront import stacked_lstm_for


class ReferenceModel:
    """A saved Keras model run by the NumPy equations of this module.

    Attributes: `window` and `n_features`, the input shape of one window;
    `n_outputs`, the forecast length; `layers`, the RecurrentLayer and
    DenseLayer objects in order (Dropout is left out: it is the identity when
    predicting).
    """

    def __init__(
        self,
        layers: list,
        window: int,
        n_features: int,
        head: HeadSpec | None = None,
        move_scale: float | None = None,
        df_weight: float = 0.0,
    ):
        self.layers = layers
        self.window = window
        self.n_features = n_features
        # forecaster.model.heads: the move channel before the stack, the head after
        self.head = head or HeadSpec(horizon=layers[-1].output_size)
        self.move_scale = move_scale
        self.df_weight = df_weight
        self.n_outputs = self.head.horizon
        # The same LSTM stack run wave by wave: ~L times fewer NumPy calls.
        self.stacked_lstm = stacked_lstm_for(layers)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceModel:
        """Read a `model.keras` file written by `model.save(path)` in Keras 3.

        Raises BundleError when the file is missing, damaged or not a Keras 3
        archive, and UnsupportedModelError when it holds a layer or a layer
        option this module does not implement.
        """
        layers, window, n_features, extras = read_saved_model(path)
        return cls(layers, window, n_features, **extras)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Forecast from windows x: (batch, window, n_features) -> (batch, n_outputs).

        Computed in float64 and returned as float32, like Keras. A model
        with a head (forecaster.model.heads) returns its outputs: (batch, n_outputs)
        or (batch, n_outputs, n_params).
        """
        x = np.asarray(x, dtype=np.float64)
        expected = (self.window, self.n_features)
        if x.ndim != 3 or x.shape[1:] != expected:
            raise ForecasterError(
                f"x must have shape (batch, {self.window}, {self.n_features}). "
                f"Received: x.shape={x.shape}; pass windows shaped like the "
                "model's training windows."
            )
        x = self.network_inputs(x)
        if self.stacked_lstm is not None:
            return self.head_of(self.stacked_lstm(x))
        raw = self._through_layers(x)
        return head_outputs(raw, self.head, self.df_weight).astype(np.float32)

    def network_inputs(self, x: np.ndarray) -> np.ndarray:
        """Windows (batch, time, n_features) with the head's move channel, if any."""
        if self.move_scale is not None:
            x = move_channel(x, self.move_scale)
        return x

    def head_of(self, top: np.ndarray) -> np.ndarray:
        """The last recurrent layer's output (batch, units) -> the head's outputs."""
        raw = self.layers[-1](np.asarray(top, dtype=np.float64))
        return head_outputs(raw, self.head, self.df_weight).astype(np.float32)

    def predict_layer_by_layer(self, x: np.ndarray) -> np.ndarray:
        """`predict` through each layer in turn (the plain reference path)."""
        x = np.asarray(x, dtype=np.float64)
        if self.move_scale is not None:
            x = move_channel(x, self.move_scale)
        raw = self._through_layers(x)
        return head_outputs(raw, self.head, self.df_weight).astype(np.float32)

    def _through_layers(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x


def is_supported(path: str | Path) -> bool:
    """True when `ReferenceModel.load(path)` can run the model, False when it
    holds a layer the reference does not implement.

    A missing or damaged file still raises BundleError.
    """
    try:
        ReferenceModel.load(path)
    except UnsupportedModelError:
        return False
    return True
