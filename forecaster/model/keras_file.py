"""The one reader of model.keras: a zip archive of config.json and model.weights.h5.

Used by the bundle's checks and by the NumPy engine, neither of which imports
TensorFlow: the archive is read with `zipfile` and `json` only.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from forecaster.errors import BundleError


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
