"""The saved-model bundle: model, scaler, settings, metrics and plots in one directory.

A bundle is written into a temporary directory beside its target and moved
into place only when complete, so a failed or killed save never leaves a
half-written bundle and never damages the previous one.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forecaster.config import Settings
from forecaster.errors import BundleError, ForecasterError
from forecaster.windows import Scaler

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
FORMAT_VERSION = 1  # bumped when the bundle layout changes incompatibly


def write_directory_atomically(
    target: str | os.PathLike, write: Callable[[Path], None], replace: bool = False
) -> Path:
    """Call `write(tmp)` on a fresh directory beside `target`, then move it into place.

    If `target` exists and `replace` is false, nothing is written. If `write`
    raises, the temporary directory is removed and `target` is untouched. The
    old directory is moved aside only once the new one is complete, and
    deleted only after the new one is in place.
    """
    target = Path(target)
    if target.exists() and not replace:
        raise ForecasterError(
            f"{str(target)!r} already exists: add --force to replace it (the old one "
            "is kept until the new one is complete), or choose another --out."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = target.with_name(f".{target.name}.tmp-{tag}")
    old = target.with_name(f".{target.name}.old-{tag}")
    tmp.mkdir()
    try:
        write(tmp)
        if target.exists():
            os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            if old.exists():
                os.rename(old, target)
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    return target


def write_file_atomically(
    path: str | os.PathLike, write: Callable[[Path], None]
) -> Path:
    """Call `write(tmp_path)`, then replace `path` with it in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_files_atomically(writers: dict) -> list[Path]:
    """Write several files so that either all are replaced or none is.

    `writers` maps each final path to a function that writes a given temporary
    path. Every file is written beside its target first; only when all have
    been written are they renamed into place.
    """
    tag = uuid.uuid4().hex[:8]
    staged = {}
    try:
        for path, write in writers.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.tmp-{tag}{path.suffix}")
            staged[path] = tmp
            write(tmp)
        for path, tmp in staged.items():
            os.replace(tmp, path)
    finally:
        for tmp in staged.values():
            if tmp.exists():
                tmp.unlink()
    return list(staged)


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


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


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
    """
    model.save(tmp / MODEL_FILE)
    write_json(tmp / SCALER_FILE, scaler)
    write_json(tmp / METADATA_FILE, metadata)
    write_json(tmp / METRICS_FILE, metrics)
    write_json(tmp / INTERVALS_FILE, intervals)
    predictions.to_csv(tmp / PREDICTIONS_FILE, index=False)
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
    if not path.is_dir():
        raise BundleError(
            f"No bundle at {str(path)!r}: it is not a directory. Train one with "
            "`python train.py`, or pass --model with a bundle directory."
        )
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise BundleError(
            f"{str(path)!r} is not a complete bundle (missing {', '.join(missing)}): "
            "the bundle is damaged or incompatible, retrain it with train.py."
        )
    metadata = _read_json(path / METADATA_FILE, path)
    scaler_raw = _read_json(path / SCALER_FILE, path)
    try:
        settings = Settings.from_dict(metadata["settings"]).validate()
        scaler = _read_scalers(scaler_raw, metadata)
    except (KeyError, TypeError, AttributeError, ForecasterError) as err:
        raise BundleError(
            f"Bundle {str(path)!r} has unusable metadata or scaler ({err}): the bundle "
            "is damaged or incompatible, retrain it with train.py."
        ) from None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"Bundle {str(path)!r} has format_version="
            f"{metadata.get('format_version')!r}, "
            f"this forecaster reads {FORMAT_VERSION}: retrain it with train.py."
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
    return Bundle(path, settings, scaler, metadata, metrics, intervals)


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
            "the bundle is damaged or incompatible, retrain it with train.py."
        ) from None


def _check_model_archive(file: Path, settings: Settings) -> None:
    """Check model.keras is a whole archive whose input/output match the settings."""
    try:
        with zipfile.ZipFile(file) as archive:
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("a member fails its checksum")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise BundleError(
            f"{str(file)!r} is not a readable Keras model ({err}): the bundle is "
            "damaged "
            "or incompatible, retrain it with train.py."
        ) from None
    layers = config.get("config", {}).get("layers", [])
    shape = _input_shape(config, layers)
    units = next(
        (
            layer.get("config", {}).get("units")
            for layer in reversed(layers)
            if layer.get("class_name") == "Dense"
        ),
        None,
    )
    expected = (settings.prep.window, settings.prep.horizon)
    if shape is None or units is None or (shape[1], units) != expected:
        raise BundleError(
            f"The model in {str(file)!r} takes window {shape and shape[1]} and "
            "predicts "
            f"{units} step(s), but metadata.json says window={expected[0]}, "
            f"horizon={expected[1]}: the bundle is damaged or incompatible, retrain it."
        )


def _input_shape(config: dict, layers: list) -> list | None:
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            cfg = layer.get("config", {})
            return cfg.get("batch_shape") or cfg.get("batch_input_shape")
    build = config.get("build_config", {}).get("input_shape")
    return build


def load_keras_model(file: str | os.PathLike):
    """Load model.keras with Keras' safe mode on (no arbitrary code, no pickle)."""
    import keras

    try:
        return keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many kinds for a damaged archive
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise BundleError(
            f"Cannot load the model in {str(file)!r} ({first}): the bundle is damaged "
            "or incompatible, retrain it with train.py."
        ) from None


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
            "bundle is damaged, retrain it with train.py."
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
        return DataSettings(csv=source.get("path"), column=column)
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
    write_json(tmp / METADATA_FILE, metadata)
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
