"""Reading a saved model.keras into the layers of the NumPy reference.

The Sequential config is walked layer by layer: each layer's options are
checked against what forecaster.model.cells implements (UnsupportedModelError
otherwise, so that the caller can run the model with Keras) and its weights
are read from `model.weights.h5` with h5py, shape-checked (BundleError for a
damaged file).

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
from pathlib import Path

import h5py
import numpy as np

from forecaster.errors import UnsupportedModelError
from forecaster.model.cells import GATE_BLOCKS, CellWeights, DenseLayer, RecurrentLayer
from forecaster.model.heads import spec_from_config
from forecaster.model.keras_file import damaged, read_archive

RECURRENT_CLASSES = ("SimpleRNN", "LSTM", "GRU")
HEAD_CLASSES = ("MoveChannel", "DistributionHead")  # forecaster.model.keras_heads
SUPPORTED_CLASSES = ("InputLayer", "Dropout", "Dense", "Bidirectional")
SUPPORTED_CLASSES += RECURRENT_CLASSES + HEAD_CLASSES
SUPPORTED_DTYPES = ("float32", "float64")


def read_saved_model(path: str | Path) -> tuple[list, int, int, dict]:
    """(layers, window, n_features, extras) of a `model.keras` written by Keras 3.

    `layers`: the RecurrentLayer and DenseLayer objects in order (Dropout
    left out); `extras`: the head settings (`head`, and `move_scale` and
    `df_weight` when the model has them), as ReferenceModel takes them.
    Raises BundleError when the file is missing, damaged or not a Keras 3
    archive, and UnsupportedModelError when it holds a layer or a layer
    option the reference does not implement.
    """
    config, weights_bytes = read_archive(Path(path))
    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as weights_file:
            return _build(config, weights_file, Path(path))
    except OSError as error:
        raise damaged(path, f"its weights cannot be read: {error}") from error


def _build(config: dict, weights_file: h5py.File, path: Path) -> tuple:
    """Walk the Sequential config, checking each layer and reading its weights."""
    if config.get("class_name") != "Sequential":
        raise UnsupportedModelError(
            f"model class {config.get('class_name')!r} is not supported: the NumPy "
            "reference reads keras.Sequential models only; run it with Keras."
        )
    layer_configs = config.get("config", {}).get("layers")
    if not isinstance(layer_configs, list) or not layer_configs:
        raise damaged(path, "config.json lists no layers")
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
                raise damaged(path, f"layer {options.get('name')!r} gets no sequence")
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
    return layers, window, n_features, extras


def _head_layer(class_name, options, weights_file, group, extras) -> int:
    """Record a head layer's settings in `extras`; the features it adds (0 or 1)."""
    if class_name == "MoveChannel":
        extras["move_scale"] = float(options["move_scale"])
        return 1
    if options.get("kind") == "student-t":
        gain = float(options.get("df_gain", 1.0))  # 1 before the gain existed
        extras["df_weight"] = gain * float(np.asarray(weights_file[group]["vars/0"]))
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
    raise damaged(path, f"no weights for layer {name!r} (expected {group})")


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
        raise damaged(path, f"{group.name}/{key} cannot be read: {error}") from error
    if array.shape != shape:
        raise damaged(
            path, f"{group.name}/{key} has shape {array.shape}, expected {shape}"
        )
    return array


def _dense_layer(options: dict, group: h5py.Group, n_in: int, path) -> DenseLayer:
    n_out = options.get("units")
    if not isinstance(n_out, int):
        raise damaged(path, f"Dense layer {options.get('name')!r} has no units")
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
        raise damaged(path, f"{class_name} layer {options.get('name')!r} has no units")
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
        raise damaged(path, f"layer {options.get('name')!r} has no inner layer")
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
        raise damaged(path, f"layer {options.get('name')!r} mixes return_sequences")
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
        raise damaged(path, f"{group.name} has no {key}")
    return group[key]
