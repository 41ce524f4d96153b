"""The one reader of model.keras: a zip archive of config.json and model.weights.h5.

Used by the bundle's checks and by the NumPy engine, neither of which imports
TensorFlow: the archive is read with `zipfile` and `json` only.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from forecaster.errors import BundleError
from forecaster.model.heads import spec_from_config


def damaged(path, reason: str) -> BundleError:
    """The error for a model file that cannot be used, with the reason."""
    return BundleError(
        f"model file {str(path)!r} is damaged or incompatible ({reason}); train "
        "the model again to write a new one."
    )


def read_archive(path, verify: bool = False) -> tuple[dict, bytes]:
    """The parsed config.json and the raw bytes of model.weights.h5.

    With `verify`, every member's CRC is checked first (a truncated or
    flipped archive is refused before anything is parsed).
    """
    path = Path(path)
    if not path.is_file():
        raise damaged(path, "no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            if verify and archive.testzip() is not None:
                raise damaged(path, "a member fails its checksum")
            names = set(archive.namelist())
            for member in ("config.json", "model.weights.h5"):
                if member not in names:
                    raise damaged(path, f"the archive has no {member}")
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        if isinstance(error, BundleError):
            raise
        raise damaged(path, f"not a readable .keras zip archive: {error}") from None
    if not isinstance(config, dict):
        raise damaged(path, "config.json does not hold a JSON object")
    return config, weights


def check_model_archive(file: Path, window: int, horizon: int) -> None:
    """Check model.keras is a whole archive that takes `window` steps and predicts
    `horizon`, as the bundle's metadata.json says."""
    config, _ = read_archive(file, verify=True)
    layers = config.get("config", {}).get("layers", [])
    shape = _input_shape(config, layers)
    has_dense = any(layer.get("class_name") == "Dense" for layer in layers)
    # a head's Dense layer has steps x parameters units: count steps by the head
    steps = spec_from_config(config).horizon if has_dense else None
    expected = (window, horizon)
    if shape is None or steps is None or (shape[1], steps) != expected:
        raise BundleError(
            f"The model in {str(file)!r} takes window {shape and shape[1]} and "
            "predicts "
            f"{steps} step(s), but metadata.json says window={expected[0]}, "
            f"horizon={expected[1]}: the bundle is damaged or incompatible, retrain it."
        )


def _input_shape(config: dict, layers: list) -> list | None:
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            cfg = layer.get("config", {})
            return cfg.get("batch_shape") or cfg.get("batch_input_shape")
    build = config.get("build_config", {}).get("input_shape")
    return build
