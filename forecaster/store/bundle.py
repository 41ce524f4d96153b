"""The saved-model bundle: model, scaler, settings, metrics and plots in one directory.

A bundle is written into a temporary directory beside its target and swapped
into place only when complete (forecaster.io), so a failed or killed save
never leaves a half-written bundle and never damages the previous one. Its
last file, manifest.json, holds the size and sha256 of every other file, and
loading checks them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from forecaster.config import Settings
from forecaster.errors import BundleError, ForecasterError
from forecaster.io import (  # noqa: F401  (re-exported: imported from here elsewhere)
    _jsonable,
    recover_if_free,
    write_directory_atomically,
    write_file_atomically,
    write_files_atomically,
    write_json,
)
from forecaster.prep.windows import Scaler

log = logging.getLogger("forecaster")

MODEL_FILE = "model.keras"
SCALER_FILE = "scaler.json"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
INTERVALS_FILE = "intervals.json"
PREDICTIONS_FILE = "test_predictions.csv"
BY_STEP_FILE = "rmse_by_step.csv"
HISTORY_FILE = "history.csv"
RECENT_FILE = "recent_prices.csv"  # the last `window` prices: enough to forecast
PANEL_RECENT_FILE = "recent_panel.csv"  # a panel's: series, date, price, features
REQUIRED = (MODEL_FILE, SCALER_FILE, METADATA_FILE)
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1  # bumped when the bundle layout changes incompatibly
# Written into a bundle by predict.py after it was saved, so not in its manifest.
OUTPUT_FILES = ("forecast.csv", "forecast.png", "report.html")


def library_versions() -> dict:
    """Versions of the libraries a bundle depends on (imported ones only)."""
    import sys

    import numpy
    import pandas

    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }
    for name in ("tensorflow", "keras", "sklearn"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    from forecaster import __version__

    versions["forecaster"] = __version__
    return versions


def write_parts(
    tmp: Path,
    model,
    scaler: dict,
    metadata: dict,
    metrics: dict,
    intervals: dict,
    predictions,
    by_step,
    history,
    recent,
) -> None:
    """Write a bundle's files into the (temporary) directory `tmp`.

    `model` is the Keras model; `predictions`, `by_step` and `history` are
    DataFrames; `recent` the Series of the last prices a forecast starts from.
    `intervals` and `by_step` are None for a model with no price forecast
    (objective="direction"): their files are left out.
    """
    model.save(tmp / MODEL_FILE)
    write_json(tmp / SCALER_FILE, scaler)
    # load_bundle requires manifest.json (written last) of a bundle saying so
    write_json(tmp / METADATA_FILE, {**metadata, "manifest": MANIFEST_FILE})
    write_json(tmp / METRICS_FILE, metrics)
    if intervals is not None:
        write_json(tmp / INTERVALS_FILE, intervals)
    predictions.to_csv(tmp / PREDICTIONS_FILE, index=False)
    if by_step is not None:
        by_step.to_csv(tmp / BY_STEP_FILE, index=False)
    history.to_csv(tmp / HISTORY_FILE, index=False)
    recent.rename("price").to_csv(
        tmp / RECENT_FILE, index_label="date", date_format="%Y-%m-%d"
    )


@dataclass
class Bundle:
    """A loaded bundle: everything needed to rebuild the trained pipeline."""

    path: Path
    settings: Settings
    scaler: Scaler | dict  # for a panel bundle: {series name: Scaler}
    metadata: dict
    metrics: dict
    intervals: dict | None
    notes: list[str] = field(default_factory=list)  # e.g. files the manifest lacks

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def window(self) -> int:
        return self.settings.prep.window

    @property
    def horizon(self) -> int:
        return self.settings.prep.horizon

    @property
    def representation(self) -> str:
        return self.settings.prep.representation


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read a bundle's JSON parts and check them; the model itself loads lazily."""
    path = Path(path)
    recover_if_free(path, "bundle")
    if not path.is_dir():
        raise BundleError(
            f"No bundle at {str(path)!r}: it is not a directory. Train one first, "
            "or give the path of a bundle directory."
        )
    notes, verified = check_manifest(path)
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise BundleError(
            f"{str(path)!r} is not a complete bundle (missing {', '.join(missing)}): "
            "the bundle is damaged or incompatible, train it again."
        )
    metadata = _read_json(path / METADATA_FILE, path)
    if not verified and metadata.get("manifest"):
        raise BundleError(
            f"Bundle {str(path)!r} has no {MANIFEST_FILE} although its metadata.json "
            "says it was saved with one (a partial copy?): the bundle is damaged or "
            "incompatible, train it again (or copy it again)."
        )
    scaler_raw = _read_json(path / SCALER_FILE, path)
    try:
        settings = Settings.from_dict(metadata["settings"]).validate()
        scaler = _read_scalers(scaler_raw, metadata)
    except (KeyError, TypeError, AttributeError, ForecasterError) as err:
        raise BundleError(
            f"Bundle {str(path)!r} has unusable metadata or scaler ({err}): the bundle "
            "is damaged or incompatible, train it again."
        ) from None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"Bundle {str(path)!r} has format_version="
            f"{metadata.get('format_version')!r}, "
            f"this forecaster reads {FORMAT_VERSION}: train it again."
        )
    scalers = scaler.values() if isinstance(scaler, dict) else [scaler]
    if any(one.log != (settings.prep.representation == "log-delta") for one in scalers):
        raise BundleError(
            f"Bundle {str(path)!r}: the scaler does not match representation "
            f"{settings.prep.representation!r}; the bundle is damaged, retrain it."
        )
    _check_model_archive(path / MODEL_FILE, settings)
    metrics = (
        _read_json(path / METRICS_FILE, path) if (path / METRICS_FILE).exists() else {}
    )
    intervals = (
        _read_json(path / INTERVALS_FILE, path)
        if (path / INTERVALS_FILE).exists()
        else None
    )
    for note in notes:
        log.warning(note)
    return Bundle(path, settings, scaler, metadata, metrics, intervals, notes)


# --------------------------------------------------------------- manifest


def write_manifest(directory: str | os.PathLike) -> Path:
    """Write manifest.json: the size and sha256 of every other file, written last.

    OUTPUT_FILES are left out even when the save writes them: predict.py
    rewrites them in place later.
    """
    directory = Path(directory)
    files = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = file.relative_to(directory).as_posix()
        if name != MANIFEST_FILE and name not in OUTPUT_FILES:
            files[name] = {"size": file.stat().st_size, "sha256": _sha256(file)}
    manifest = {"manifest_version": 1, "algorithm": "sha256", "files": files}
    write_json(directory / MANIFEST_FILE, manifest)
    return directory / MANIFEST_FILE


def check_manifest(path: Path) -> tuple[list[str], bool]:
    """Check every file listed in the manifest: (notes, whether there was one).

    Raises BundleError naming the first file that is missing or differs.
    Files not listed are ignored: the forecast outputs (OUTPUT_FILES) and
    hidden temporary files silently, anything else with a note.
    """
    if not (path / MANIFEST_FILE).is_file():
        return [
            f"bundle {str(path)!r} has no {MANIFEST_FILE} (saved before bundles "
            "had checksums): its files are not verified; retrain it to add one"
        ], False
    listed = _read_manifest(path)
    for name, entry in listed.items():
        _check_listed_file(path, name, entry)
    extra = sorted(
        name
        for name in (
            p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()
        )
        if name not in listed
        and name != MANIFEST_FILE
        and name not in OUTPUT_FILES
        and not (name.startswith(".") and ".tmp-" in name)
    )
    if not extra:
        return [], True
    shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if extra[5:] else "")
    return [
        f"ignored file(s) not in the manifest of bundle {str(path)!r}: {shown}"
    ], True


def _read_manifest(path: Path) -> dict:
    """The manifest's files: {name: {"size": int, "sha256": str}}, checked."""
    try:
        raw = json.loads((path / MANIFEST_FILE).read_text())
        files = raw["files"]
        for name, entry in files.items():
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts or not parts:
                raise ValueError(f"unsafe name {name!r}")
            int(entry["size"]), str(entry["sha256"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise BundleError(
            f"Bundle {str(path)!r} has a damaged {MANIFEST_FILE} "
            f"({type(err).__name__}): the bundle is damaged or incompatible, train "
            "it again (or copy it again)."
        ) from None
    return files


def _check_listed_file(path: Path, name: str, entry: dict) -> None:
    file = path / name
    if not file.is_file():
        raise BundleError(
            f"{str(path)!r} is not a complete bundle (missing {name}, listed in "
            f"{MANIFEST_FILE}): the bundle is damaged or incompatible, train it "
            "again (or copy it again)."
        )
    size = file.stat().st_size
    if size != int(entry["size"]):
        raise BundleError(
            f"Bundle {str(path)!r}: {name} has {size} bytes but {MANIFEST_FILE} says "
            f"{entry['size']} (truncated or changed): the bundle is damaged or "
            "incompatible, train it again (or copy it again)."
        )
    if _sha256(file) != entry["sha256"]:
        raise BundleError(
            f"Bundle {str(path)!r}: {name} does not match its sha256 in "
            f"{MANIFEST_FILE} (the file was changed): the bundle is damaged or "
            "incompatible, train it again (or copy it again)."
        )


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_scalers(raw: dict, metadata: dict):
    """The target's Scaler, or for a panel bundle {series name: Scaler}."""
    if "panel" in metadata:
        return {name: Scaler.from_dict(one) for name, one in raw["series"].items()}
    return Scaler.from_dict(raw)


def _read_json(file: Path, bundle: Path):
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise BundleError(
            f"Cannot read {file.name} in bundle {str(bundle)!r} "
            f"({type(err).__name__}): "
            "the bundle is damaged or incompatible, train it again."
        ) from None


def _check_model_archive(file: Path, settings: Settings) -> None:
    """Check model.keras is a whole archive whose input/output match the settings."""
    from forecaster.model.heads import spec_from_config
    from forecaster.model.keras_file import read_archive

    config, _ = read_archive(file, verify=True)
    layers = config.get("config", {}).get("layers", [])
    shape = _input_shape(config, layers)
    has_dense = any(layer.get("class_name") == "Dense" for layer in layers)
    # a head's Dense layer has steps x parameters units: count steps by the head
    steps = spec_from_config(config).horizon if has_dense else None
    expected = (settings.prep.window, settings.prep.horizon)
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


def read_history(bundle: Bundle):
    """The bundle's loss per epoch as a DataFrame (empty if the file is missing)."""
    import pandas as pd

    file = bundle.path / HISTORY_FILE
    if not file.exists():
        return pd.DataFrame(columns=["epoch", "loss", "val_loss"])
    return pd.read_csv(file)


def read_recent_prices(bundle: Bundle):
    """The last prices saved with the model (a Series), or None in older bundles."""
    file = bundle.path / RECENT_FILE
    if not file.exists():
        return None
    from forecaster.data import read_price_csv

    try:
        prices = read_price_csv(file, column="price").values
    except ForecasterError as err:
        raise BundleError(
            f"Cannot read {RECENT_FILE} in bundle {str(bundle.path)!r} ({err}): the "
            "bundle is damaged, train it again."
        ) from None
    return prices.rename(bundle.metadata.get("column") or "price")


def source_settings(bundle: Bundle, cache_dir: str | None = None):
    """DataSettings that read the bundle's own source again (a ticker up to today).

    None when the model was fitted on prices passed in memory.
    """
    from forecaster.config import DataSettings

    source = bundle.metadata.get("source", {})
    column = source.get("column")
    cache_dir = cache_dir or DataSettings().cache_dir
    if source.get("kind") == "ticker":
        return DataSettings(
            ticker=source["ticker"],
            start=source.get("start"),
            column=column,
            cache_dir=cache_dir,
        )
    if source.get("kind") == "csv":
        return DataSettings(
            csv=source.get("path"), column=column, decimal=source.get("decimal", ".")
        )
    return None


def source_prices(bundle: Bundle):
    """The newest prices of the bundle's own source, or its saved recent prices."""
    from forecaster.data import load_prices

    settings = source_settings(bundle)
    if settings is not None:
        return load_prices(settings).values
    recent = read_recent_prices(bundle)
    if recent is None:
        raise BundleError(
            f"Bundle {str(bundle.path)!r} keeps no prices to forecast from: pass "
            "prices= (or --csv / --ticker)."
        )
    return recent


def write_panel_parts(
    tmp: Path,
    model,
    scalers: dict,
    metadata: dict,
    metrics: dict,
    intervals: dict,
    predictions,
    history,
    recent,
) -> None:
    """Write a panel bundle's files into `tmp`: the same names, keyed by series.

    `scalers`: {name: {target scaler dict, "features": [feature scaler dicts]}};
    `predictions` and `recent` are long DataFrames with a `series` column.
    """
    model.save(tmp / MODEL_FILE)
    write_json(tmp / SCALER_FILE, {"series": scalers})
    write_json(tmp / METADATA_FILE, {**metadata, "manifest": MANIFEST_FILE})
    write_json(tmp / METRICS_FILE, metrics)
    write_json(tmp / INTERVALS_FILE, intervals)
    predictions.to_csv(tmp / PREDICTIONS_FILE, index=False)
    history.to_csv(tmp / HISTORY_FILE, index=False)
    recent.to_csv(tmp / PANEL_RECENT_FILE, index=False)


def read_panel_recent(bundle: Bundle):
    """A panel bundle's last `window` days per series: series, date, price, features."""
    import pandas as pd

    file = bundle.path / PANEL_RECENT_FILE
    try:
        frame = pd.read_csv(file, parse_dates=["date"])
    except (OSError, ValueError, KeyError) as err:
        raise BundleError(
            f"Cannot read {PANEL_RECENT_FILE} in bundle {str(bundle.path)!r} "
            f"({type(err).__name__}): the bundle is damaged, retrain it."
        ) from None
    return frame
