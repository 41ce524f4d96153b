"""A readable NumPy reference of our Keras models, loaded without TensorFlow.

`ReferenceModel.load("model.keras")` reads the saved file (a zip holding
`config.json` and `model.weights.h5`) with `zipfile`, `json` and `h5py`, and
`predict` runs the forward pass with the equations below, in float64. It
reproduces the models of `forecaster.model.factory.build_model` to within 1e-5 of
Keras on the CPU: stacked SimpleRNN, LSTM and GRU layers, optionally
`Bidirectional`, Dropout between them and a final `Dense`.

Notation, for one time step of one window (row vectors, as Keras writes them):
`x_t` is the input `(n_in,)`, `h_prev` the previous output `(units,)`, `W` the
input kernel `(n_in, k*units)`, `U` the recurrent kernel `(units, k*units)`, `b`
the bias `(k*units,)`, `σ` the logistic sigmoid and `⊙` the elementwise
product. The `k` gate blocks sit side by side in the columns of `W`, `U` and `b`.

How the weights sit in `model.weights.h5` (Keras 3 names each group after the
layer's class in snake case, numbered `_1`, `_2`... in the order of
`model.layers`, and stores the layer's own name in the `name` attribute of its
`vars` group)::

    layers/<group>/cell/vars/0   W  (n_in, k*units)    recurrent layer
    layers/<group>/cell/vars/1   U  (units, k*units)
    layers/<group>/cell/vars/2   b  (k*units,), GRU: (2, 3*units)
    layers/<group>/forward_layer/cell/vars/{0,1,2}      Bidirectional
    layers/<group>/backward_layer/cell/vars/{0,1,2}
    layers/<group>/vars/0, vars/1                       Dense kernel, bias
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from forecaster.errors import BundleError, ForecasterError, UnsupportedModelError
from forecaster.model.heads import (
    HeadSpec,
    head_outputs,
    move_channel,
    spec_from_config,
)
from forecaster.model.keras_file import damaged, read_archive

RECURRENT_CLASSES = ("SimpleRNN", "LSTM", "GRU")
HEAD_CLASSES = ("MoveChannel", "DistributionHead")  # forecaster.model.keras_heads
SUPPORTED_CLASSES = ("InputLayer", "Dropout", "Dense", "Bidirectional")
SUPPORTED_CLASSES += RECURRENT_CLASSES + HEAD_CLASSES
SUPPORTED_DTYPES = ("float32", "float64")

# Gate blocks per cell: how many `units`-wide column blocks W, U and b hold.
GATE_BLOCKS = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


# --------------------------------------------------------------------------
# Activations


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic sigmoid σ(a) = 1 / (1 + exp(-a)), elementwise, any shape.

    Written as (1 + tanh(a / 2)) / 2, the same function, so that large |a|
    neither overflows nor warns.
    """
    return 0.5 * (1.0 + np.tanh(0.5 * a))


# --------------------------------------------------------------------------
# One time step of each cell


@dataclass(frozen=True)
class CellWeights:
    """The three arrays of a recurrent cell, as Keras stores them.

    kernel: `W`, (n_in, k*units). recurrent_kernel: `U`, (units, k*units).
    bias: `b`, (k*units,); for GRU (reset_after=True) it is (2, 3*units):
    row 0 the input bias `b_x`, row 1 the recurrent bias `b_h`.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]


def simple_rnn_step(
    x_t: np.ndarray, h_prev: np.ndarray, weights: CellWeights
) -> np.ndarray:
    """One step of a SimpleRNN cell (activation tanh).

        h_t = tanh(x_t W + h_prev U + b)

    x_t: (batch, n_in), h_prev: (batch, units) -> h_t: (batch, units).
    """
    return np.tanh(
        x_t @ weights.kernel + h_prev @ weights.recurrent_kernel + weights.bias
    )


def lstm_step(
    x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, weights: CellWeights
) -> tuple[np.ndarray, np.ndarray]:
    """One step of an LSTM cell; Keras' gate order in the columns is [i, f, c, o].

        i = σ(x_t W_i + h_prev U_i + b_i)            input gate
        f = σ(x_t W_f + h_prev U_f + b_f)            forget gate
        c_tilde = tanh(x_t W_c + h_prev U_c + b_c)   candidate cell state
        o = σ(x_t W_o + h_prev U_o + b_o)            output gate
        c_t = f ⊙ c_prev + i ⊙ c_tilde
        h_t = o ⊙ tanh(c_t)

    x_t: (batch, n_in), h_prev and c_prev: (batch, units)
    -> (h_t, c_t), each (batch, units).
    """
    pre_activation = (
        x_t @ weights.kernel + h_prev @ weights.recurrent_kernel + weights.bias
    )
    a_i, a_f, a_c, a_o = np.split(pre_activation, 4, axis=-1)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)
    c_tilde = np.tanh(a_c)
    c_t = f * c_prev + i * c_tilde
    h_t = o * np.tanh(c_t)
    return h_t, c_t


def gru_step(x_t: np.ndarray, h_prev: np.ndarray, weights: CellWeights) -> np.ndarray:
    """One step of a GRU cell with reset_after=True (Keras 3's default and cuDNN's).

    Gate order in the columns is [z, r, h]; the bias has two rows, `b_x` added
    to the input part and `b_h` to the recurrent part:

        z = σ(x_t W_z + b_x,z + h_prev U_z + b_h,z)               update gate
        r = σ(x_t W_r + b_x,r + h_prev U_r + b_h,r)               reset gate
        h_tilde = tanh(x_t W_h + b_x,h + r ⊙ (h_prev U_h + b_h,h))  candidate
        h_t = z ⊙ h_prev + (1 - z) ⊙ h_tilde

    "reset after" means `r` multiplies `h_prev U_h + b_h,h`, after the matrix
    product, rather than `h_prev` before it.

    x_t: (batch, n_in), h_prev: (batch, units) -> h_t: (batch, units).
    """
    input_bias, recurrent_bias = weights.bias
    x_z, x_r, x_h = np.split(x_t @ weights.kernel + input_bias, 3, axis=-1)
    h_z, h_r, h_h = np.split(
        h_prev @ weights.recurrent_kernel + recurrent_bias, 3, axis=-1
    )
    z = sigmoid(x_z + h_z)
    r = sigmoid(x_r + h_r)
    h_tilde = np.tanh(x_h + r * h_h)
    return z * h_prev + (1.0 - z) * h_tilde


# --------------------------------------------------------------------------
# Whole layers


def run_recurrent(
    cell: str, weights: CellWeights, x: np.ndarray, return_sequences: bool
) -> np.ndarray:
    """Run one recurrent layer over a sequence, starting from zero state.

    cell: "SimpleRNN", "LSTM" or "GRU". x: (batch, time, n_in) -> the output at
    every step (batch, time, units) when `return_sequences`, else the last
    output (batch, units).

    This computes exactly the step functions above, rearranged for speed (a
    30-day forecast runs 9,000 cell steps one after another, so the cost of
    each NumPy call matters): the input part `x_t W + b` is computed for all
    steps in one matrix product, and since σ(a) = (1 + tanh(a/2)) / 2 the
    gate columns are pre-halved so that one `tanh` call serves every gate.
    `run_recurrent_stepwise` is the plain loop over the step functions;
    the tests check that the two agree.
    """
    units = weights.units
    if cell == "GRU":
        input_bias, recurrent_bias = weights.bias
    else:
        input_bias, recurrent_bias = weights.bias, 0.0
    sigmoid_columns = {"LSTM": [0, 1, 3], "GRU": [0, 1], "SimpleRNN": []}[cell]
    halve = np.ones(weights.kernel.shape[1])
    for block in sigmoid_columns:
        halve[block * units : (block + 1) * units] = 0.5
    projected = (x @ weights.kernel + input_bias) * halve  # (batch, time, k*units)
    recurrent = weights.recurrent_kernel * halve
    recurrent_bias = recurrent_bias * halve
    step = {"LSTM": _lstm_fused, "GRU": _gru_fused, "SimpleRNN": _rnn_fused}[cell]
    return step(projected, recurrent, recurrent_bias, units, return_sequences)


def _lstm_fused(projected, recurrent, _bias, units, return_sequences):
    batch, time = projected.shape[:2]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        activated = np.tanh(projected[:, t] + h @ recurrent)
        gates = activated * 0.5 + 0.5  # σ for the pre-halved i, f, o columns
        i, f = gates[:, :units], gates[:, units : 2 * units]
        c_tilde, o = activated[:, 2 * units : 3 * units], gates[:, 3 * units :]
        c = f * c + i * c_tilde
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def _gru_fused(projected, recurrent, recurrent_bias, units, return_sequences):
    batch, time = projected.shape[:2]
    h = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        x_part = projected[:, t]
        h_part = h @ recurrent + recurrent_bias
        zr = np.tanh(x_part[:, : 2 * units] + h_part[:, : 2 * units]) * 0.5 + 0.5
        z, r = zr[:, :units], zr[:, units:]
        h_tilde = np.tanh(x_part[:, 2 * units :] + r * h_part[:, 2 * units :])
        h = h_tilde + z * (h - h_tilde)  # = z h + (1 - z) h_tilde
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def _rnn_fused(projected, recurrent, _bias, units, return_sequences):
    batch, time = projected.shape[:2]
    h = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        h = np.tanh(projected[:, t] + h @ recurrent)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def run_recurrent_stepwise(
    cell: str, weights: CellWeights, x: np.ndarray, return_sequences: bool
) -> np.ndarray:
    """`run_recurrent` as the plain loop over the step functions (the reference).

    x: (batch, time, n_in) -> (batch, time, units) or (batch, units).
    """
    batch, time = x.shape[:2]
    h = np.zeros((batch, weights.units))
    c = np.zeros((batch, weights.units))  # LSTM cell state; unused otherwise
    outputs = []
    for t in range(time):
        if cell == "LSTM":
            h, c = lstm_step(x[:, t], h, c, weights)
        elif cell == "GRU":
            h = gru_step(x[:, t], h, weights)
        else:
            h = simple_rnn_step(x[:, t], h, weights)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def run_bidirectional(
    cell: str,
    forward: CellWeights,
    backward: CellWeights,
    x: np.ndarray,
    return_sequences: bool,
) -> np.ndarray:
    """Run a `Bidirectional` layer with merge_mode="concat".

    The backward layer reads the window from its last step to its first. With
    `return_sequences` Keras flips its outputs back into time order, so that
    step t of the result joins the forward output after reading x_0..x_t and
    the backward output after reading x_(T-1)..x_t:

        y_t = [h_forward_t, h_backward_t]

    Without `return_sequences` each direction gives its final output (the
    backward one after reading back to x_0) and the two are concatenated.

    x: (batch, time, n_in) -> (batch, time, 2*units) or (batch, 2*units).
    """
    y_forward = run_recurrent(cell, forward, x, return_sequences)
    y_backward = run_recurrent(cell, backward, x[:, ::-1], return_sequences)
    if return_sequences:
        y_backward = y_backward[:, ::-1]
    return np.concatenate([y_forward, y_backward], axis=-1)


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A linear Dense layer, y = x W + b. x: (batch, n_in) -> (batch, n_out)."""
    return x @ kernel + bias


# --------------------------------------------------------------------------
# Layers as loaded from a file


@dataclass(frozen=True)
class RecurrentLayer:
    """A SimpleRNN, LSTM or GRU layer, or a Bidirectional wrapper around one.

    `backward` is None unless the layer is bidirectional. The output has
    `output_size` features: units, or 2*units when bidirectional.
    """

    name: str
    cell: str
    forward: CellWeights
    backward: CellWeights | None
    return_sequences: bool

    @property
    def output_size(self) -> int:
        return self.forward.units * (1 if self.backward is None else 2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, time, n_in) -> (batch, time, out) or (batch, out),
        out = output_size."""
        if self.backward is None:
            return run_recurrent(self.cell, self.forward, x, self.return_sequences)
        return run_bidirectional(
            self.cell, self.forward, self.backward, x, self.return_sequences
        )


@dataclass(frozen=True)
class DenseLayer:
    """A Dense layer with linear activation: kernel (n_in, n_out), bias (n_out,)."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray

    @property
    def output_size(self) -> int:
        return self.kernel.shape[1]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (batch, n_in) -> (batch, n_out)."""
        return dense(x, self.kernel, self.bias)


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
        from forecaster.model.wavefront import stacked_lstm_for

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
        config, weights_bytes = _read_archive(Path(path))
        try:
            with h5py.File(io.BytesIO(weights_bytes), "r") as weights_file:
                return _build(config, weights_file, Path(path))
        except OSError as error:
            raise _damaged(path, f"its weights cannot be read: {error}") from error

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
        if self.move_scale is not None:
            x = move_channel(x, self.move_scale)
        if self.stacked_lstm is not None:
            raw = self.layers[-1](self.stacked_lstm(x))
        else:
            raw = self._through_layers(x)
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


# --------------------------------------------------------------------------
# Reading the archive


def _damaged(path, reason: str) -> BundleError:
    return damaged(path, reason)


def _read_archive(path: Path) -> tuple[dict, bytes]:
    """The parsed config.json and the raw bytes of model.weights.h5."""
    return read_archive(path)


def _build(config: dict, weights_file: h5py.File, path: Path) -> ReferenceModel:
    """Walk the Sequential config, checking each layer and reading its weights."""
    if config.get("class_name") != "Sequential":
        raise UnsupportedModelError(
            f"model class {config.get('class_name')!r} is not supported: the NumPy "
            "reference reads keras.Sequential models only; run it with Keras."
        )
    layer_configs = config.get("config", {}).get("layers")
    if not isinstance(layer_configs, list) or not layer_configs:
        raise _damaged(path, "config.json lists no layers")
    window, n_features = _input_shape(layer_configs, path)
    group_names = _weight_groups(layer_configs)
    layers, size, is_sequence = [], n_features, True
    extras = {"head": spec_from_config(config)}
    for layer_config, group in zip(layer_configs, group_names, strict=True):
        class_name, options = _check_layer(layer_config)
        if class_name in ("InputLayer", "Dropout"):
            continue
        if class_name in HEAD_CLASSES:
            size += _head_layer(class_name, options, weights_file, group, extras)
            continue
        group = _find_group(weights_file, group, options.get("name"), path)
        if class_name == "Dense":
            if is_sequence:
                raise UnsupportedModelError(
                    f"layer {options.get('name')!r} (Dense) receives a sequence: "
                    "the NumPy reference needs return_sequences=False on the last "
                    "recurrent layer; run this model with Keras."
                )
            layer = _dense_layer(options, group, size, path)
        else:
            if not is_sequence:
                raise _damaged(path, f"layer {options.get('name')!r} gets no sequence")
            layer = _recurrent_layer(class_name, options, group, size, path)
            is_sequence = layer.return_sequences
        layers.append(layer)
        size = layer.output_size
    if not layers or is_sequence:
        raise UnsupportedModelError(
            "the model's output is a sequence, not one forecast per window: the "
            "NumPy reference needs a final Dense after return_sequences=False; "
            "run this model with Keras."
        )
    return ReferenceModel(layers, window, n_features, **extras)


def _head_layer(class_name, options, weights_file, group, extras) -> int:
    """Record a head layer's settings in `extras`; the features it adds (0 or 1)."""
    if class_name == "MoveChannel":
        extras["move_scale"] = float(options["move_scale"])
        return 1
    if options.get("kind") == "student-t":
        extras["df_weight"] = float(np.asarray(weights_file[group]["vars/0"]))
    return 0


def _input_shape(layer_configs: list[dict], path: Path) -> tuple[int, int]:
    """(window, n_features) from the InputLayer, or the first layer's build shape."""
    first = layer_configs[0]
    if first.get("class_name") == "InputLayer":
        shape = first.get("config", {}).get("batch_shape")
    else:
        shape = first.get("build_config", {}).get("input_shape")
    if not isinstance(shape, list) or len(shape) != 3:
        raise UnsupportedModelError(
            f"the model's input shape is {shape!r}: the NumPy reference needs "
            "windows shaped (batch, window, n_features); run it with Keras."
        )
    window, n_features = shape[1:]
    if not all(isinstance(size, int) and size > 0 for size in (window, n_features)):
        raise UnsupportedModelError(
            f"the model's input shape is {shape!r}: the NumPy reference needs a "
            "fixed window length and feature count; run it with Keras."
        )
    return window, n_features


def _snake_case(class_name: str) -> str:
    """Keras' `naming.to_snake_case`: "SimpleRNN" -> "simple_rnn"."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _weight_groups(layer_configs: list[dict]) -> list[str]:
    """The h5 group Keras 3 saves each layer's weights under, one per config.

    Keras names them after the class, not the layer ("dense", "dense_1",
    "simple_rnn", ...), counting in the order of `model.layers`, which leaves
    out the InputLayer.
    """
    used: dict[str, int] = {}
    groups = []
    for layer_config in layer_configs:
        base = _snake_case(str(layer_config.get("class_name", "")))
        if layer_config.get("class_name") == "InputLayer":
            groups.append("")
            continue
        count = used.get(base)
        used[base] = 0 if count is None else count + 1
        groups.append(base if count is None else f"{base}_{count + 1}")
    return [f"layers/{group}" if group else "" for group in groups]


def _find_group(weights_file: h5py.File, group: str, name, path: Path) -> h5py.Group:
    """The layer's h5 group: where Keras' own loader looks for it, else by name.

    Keras loads weights by the class-based group name alone. Should that group
    be absent, the group whose `vars` carries the layer's `name` attribute is
    used instead; the shape checks that follow catch weights of another model.
    """
    if group in weights_file:
        return weights_file[group]
    for candidate in weights_file.get("layers", {}).values():
        if _saved_name(candidate) == name:
            return candidate
    raise _damaged(path, f"no weights for layer {name!r} (expected {group})")


def _saved_name(group) -> str | None:
    vars_group = group.get("vars") if isinstance(group, h5py.Group) else None
    if vars_group is None or "name" not in vars_group.attrs:
        return None
    name = vars_group.attrs["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


# --------------------------------------------------------------------------
# Checking layer options


def _check_layer(layer_config: dict) -> tuple[str, dict]:
    """(class name, config) of a supported layer; UnsupportedModelError otherwise."""
    class_name = layer_config.get("class_name")
    options = layer_config.get("config", {})
    name = options.get("name")
    if class_name not in SUPPORTED_CLASSES:
        raise UnsupportedModelError(
            f"layer {name!r} ({class_name}) is not supported by the NumPy reference, "
            f"which runs {', '.join(SUPPORTED_CLASSES)}; run this model with Keras."
        )
    if class_name != "InputLayer":
        _check_dtype(class_name, options)
    if class_name == "Dense":
        _require(class_name, options, activation="linear", use_bias=True)
        for option in ("lora_rank", "quantization_config"):
            if options.get(option):
                _unsupported(class_name, name, option, options[option], None)
    elif class_name == "Bidirectional":
        _require(class_name, options, merge_mode="concat")
        for inner, go_backwards in (("layer", False), ("backward_layer", True)):
            inner_config = options.get(inner)
            if inner_config is not None:
                _check_inner(inner_config, go_backwards, name)
    elif class_name in RECURRENT_CLASSES:
        _check_recurrent(class_name, options, go_backwards=False)
    return class_name, options


def _check_inner(inner_config: dict, go_backwards: bool, wrapper_name) -> None:
    class_name = inner_config.get("class_name")
    if class_name not in RECURRENT_CLASSES:
        raise UnsupportedModelError(
            f"layer {wrapper_name!r} (Bidirectional) wraps a {class_name}: the NumPy "
            f"reference runs only {', '.join(RECURRENT_CLASSES)} inside it; run "
            "this model with Keras."
        )
    _check_dtype(class_name, inner_config.get("config", {}))
    _check_recurrent(class_name, inner_config.get("config", {}), go_backwards)


def _check_recurrent(class_name: str, options: dict, go_backwards: bool) -> None:
    required = {
        "activation": "tanh",
        "use_bias": True,
        "go_backwards": go_backwards,
        "stateful": False,
        "return_state": False,
    }
    if class_name != "SimpleRNN":
        required["recurrent_activation"] = "sigmoid"
    if class_name == "GRU":
        required["reset_after"] = True
    _require(class_name, options, **required)


def _check_dtype(class_name: str, options: dict) -> None:
    dtype = options.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", dtype.get("class_name"))
    if dtype is not None and dtype not in SUPPORTED_DTYPES:
        _unsupported(class_name, options.get("name"), "dtype", dtype, None)


def _require(class_name: str, options: dict, **expected) -> None:
    """Raise UnsupportedModelError unless every option has its expected value.

    An option missing from the config counts as Keras' default, which is the
    expected value in every case here.
    """
    for option, value in expected.items():
        seen = options.get(option, value)
        if seen != value:
            _unsupported(class_name, options.get("name"), option, seen, value)


def _unsupported(class_name, name, option, seen, supported) -> None:
    only = "" if supported is None else f" (only {option}={supported!r} is)"
    raise UnsupportedModelError(
        f"layer {name!r} ({class_name}) has {option}={seen!r}, which the NumPy "
        f"reference does not support{only}; run this model with Keras."
    )


# --------------------------------------------------------------------------
# Reading weights


def _dataset(group: h5py.Group, key: str, shape: tuple, path: Path) -> np.ndarray:
    """`group[key]` as float64, checked to have `shape`."""
    try:
        array = np.asarray(group[key], dtype=np.float64)
    except (KeyError, OSError, TypeError, ValueError) as error:
        raise _damaged(path, f"{group.name}/{key} cannot be read: {error}") from error
    if array.shape != shape:
        raise _damaged(
            path, f"{group.name}/{key} has shape {array.shape}, expected {shape}"
        )
    return array


def _dense_layer(options: dict, group: h5py.Group, n_in: int, path) -> DenseLayer:
    n_out = options.get("units")
    if not isinstance(n_out, int):
        raise _damaged(path, f"Dense layer {options.get('name')!r} has no units")
    return DenseLayer(
        name=options.get("name"),
        kernel=_dataset(group, "vars/0", (n_in, n_out), path),
        bias=_dataset(group, "vars/1", (n_out,), path),
    )


def _cell_weights(
    class_name: str, options: dict, group: h5py.Group, n_in: int, path
) -> CellWeights:
    units = options.get("units")
    if not isinstance(units, int):
        raise _damaged(path, f"{class_name} layer {options.get('name')!r} has no units")
    width = GATE_BLOCKS[class_name] * units
    bias_shape = (2, width) if class_name == "GRU" else (width,)
    return CellWeights(
        kernel=_dataset(group, "cell/vars/0", (n_in, width), path),
        recurrent_kernel=_dataset(group, "cell/vars/1", (units, width), path),
        bias=_dataset(group, "cell/vars/2", bias_shape, path),
    )


def _recurrent_layer(
    class_name: str, options: dict, group: h5py.Group, n_in: int, path
) -> RecurrentLayer:
    if class_name != "Bidirectional":
        return RecurrentLayer(
            name=options.get("name"),
            cell=class_name,
            forward=_cell_weights(class_name, options, group, n_in, path),
            backward=None,
            return_sequences=bool(options.get("return_sequences", False)),
        )
    forward_config = options.get("layer")
    if not isinstance(forward_config, dict):
        raise _damaged(path, f"layer {options.get('name')!r} has no inner layer")
    # Keras 3 always saves the backward layer's config; its weights are enough.
    backward_config = options.get("backward_layer") or forward_config
    cell = forward_config["class_name"]
    if backward_config.get("class_name") != cell:
        raise UnsupportedModelError(
            f"layer {options.get('name')!r} (Bidirectional) runs a "
            f"{cell} forward and a {backward_config.get('class_name')} backward: "
            "the NumPy reference needs the same cell both ways; run it with Keras."
        )
    forward_options = forward_config.get("config", {})
    backward_options = backward_config.get("config", {})
    return_sequences = bool(forward_options.get("return_sequences", False))
    if bool(backward_options.get("return_sequences", False)) != return_sequences:
        raise _damaged(path, f"layer {options.get('name')!r} mixes return_sequences")
    return RecurrentLayer(
        name=options.get("name"),
        cell=cell,
        forward=_cell_weights(
            cell, forward_options, _subgroup(group, "forward_layer", path), n_in, path
        ),
        backward=_cell_weights(
            cell, backward_options, _subgroup(group, "backward_layer", path), n_in, path
        ),
        return_sequences=return_sequences,
    )


def _subgroup(group: h5py.Group, key: str, path) -> h5py.Group:
    if key not in group:
        raise _damaged(path, f"{group.name} has no {key}")
    return group[key]
