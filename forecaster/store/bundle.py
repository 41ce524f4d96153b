"""The saved-model bundle, its one writer and reader: file names, metadata, versions.

A bundle is written into a temporary directory beside its target and swapped
into place only when complete (forecaster.io), so a failed or killed save
never leaves a half-written bundle and never damages the previous one. Its
last file, manifest.json (forecaster.store.manifest), holds the size and
sha256 of every other file, and loading checks them.

One series is a panel of one. A bundle of one series keeps the layout of
forecaster 0.1 (scaler.json is the scaler, recent_prices.csv, rmse_by_step.csv);
a panel's keys its scalers by series and keeps recent_panel.csv. Both are
written by `write_bundle` and read by `load_bundle` and `prepared_from_bundle`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy
import pandas as pd

from forecaster.config import DataSettings, Settings
from forecaster.data import load_prices, read_price_csv
from forecaster.errors import BundleError, ForecasterError
from forecaster.io import recover_if_free, write_json
from forecaster.model.keras_file import check_model_archive
from forecaster.prep.panel import PreparedPanel, context_part
from forecaster.prep.windows import Scaler
from forecaster.store.manifest import (
    MANIFEST_FILE,
    check_manifest,
    write_manifest,
)
from forecaster.store.outputs import write_optional_outputs
from forecaster.version import __version__

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
LOSS_PLOT = "loss.png"
TEST_PLOT = "test_predictions.png"
RELIABILITY_PLOT = "reliability.png"  # a direction model's, instead of TEST_PLOT
REQUIRED = (MODEL_FILE, SCALER_FILE, METADATA_FILE)
FORMAT_VERSION = 1  # bumped when the bundle layout changes incompatibly


def library_versions() -> dict:
    """Versions of the libraries a bundle depends on (imported ones only)."""
    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
    }
    for name in ("tensorflow", "keras", "sklearn"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    versions["forecaster"] = __version__
    return versions


# ---------------------------------------------------------------- writing


@dataclass
class BundleParts:
    """What a fitted model saves: one series is a panel of one.

    `single` says which layout the files take (one series, or a panel keyed
    by series); everything else is per series in `prepared` and
    `predictions`, whatever the layout.
    """

    model: object  # the Keras model: model.keras
    prepared: PreparedPanel  # each series' scalers and last days
    single: bool
    metadata: dict
    metrics: dict
    intervals: dict | None  # None for a model with no price bands (direction)
    predictions: dict  # {name: that series' test-day predictions (DataFrame)}
    by_step: pd.DataFrame | None  # one series' RMSE by step; None for a panel
    history: pd.DataFrame  # loss per epoch


def write_bundle(
    tmp: Path, parts: BundleParts, outputs: dict[str, Callable[[Path], None]]
) -> None:
    """Write a bundle's files into the (temporary) directory `tmp`, manifest last.

    `outputs` {file name: write(path)} are the plots and the report, drawn
    by the layers above from the files already written.
    """
    window = parts.metadata["settings"]["prep"]["window"]
    parts.model.save(tmp / MODEL_FILE)
    write_json(tmp / SCALER_FILE, scaler_json(parts.prepared, parts.single))
    # load_bundle requires manifest.json (written last) of a bundle saying so
    write_json(tmp / METADATA_FILE, {**parts.metadata, "manifest": MANIFEST_FILE})
    write_json(tmp / METRICS_FILE, parts.metrics)
    if parts.intervals is not None:
        write_json(tmp / INTERVALS_FILE, parts.intervals)
    long = long_frame(parts.predictions)
    (long.drop(columns="series") if parts.single else long).to_csv(
        tmp / PREDICTIONS_FILE, index=False
    )
    if parts.single and parts.by_step is not None:
        parts.by_step.to_csv(tmp / BY_STEP_FILE, index=False)
    parts.history.to_csv(tmp / HISTORY_FILE, index=False)
    recent = recent_rows(parts.prepared, window)
    if parts.single:
        recent.set_index("date")["price"].to_csv(
            tmp / RECENT_FILE, index_label="date", date_format="%Y-%m-%d"
        )
    else:
        recent.to_csv(tmp / PANEL_RECENT_FILE, index=False)
    write_optional_outputs(tmp, outputs)
    write_manifest(tmp)  # last: it lists every file written above


def scaler_json(prepared: PreparedPanel, single: bool) -> dict:
    """scaler.json: one series' scaler, or {"series": {name: scaler + features}}."""
    if single:
        return next(iter(prepared.parts.values())).scaler.to_dict()
    return {
        "series": {
            name: {
                **part.scaler.to_dict(),
                "features": [s.to_dict() for s in part.extra_scalers],
            }
            for name, part in prepared.parts.items()
        }
    }


def long_frame(frames: dict) -> pd.DataFrame:
    """{name: DataFrame} as one long frame whose first column is `series`."""
    long = pd.concat(
        [frame.assign(series=name) for name, frame in frames.items()],
        ignore_index=True,
    )
    return long[["series", *[c for c in long.columns if c != "series"]]]


def recent_rows(prepared: PreparedPanel, window: int) -> pd.DataFrame:
    """Each series' last `window` days: series, date, price and the raw features."""
    frames = []
    for name, part in prepared.parts.items():
        rows = pd.DataFrame(
            {
                "series": name,
                "date": part.dates[-window:],
                "price": part.prices[-window:],
            }
        )
        for k, feature in enumerate(part.extra_names):
            scaled = part.extra[-window:, k]
            rows[feature] = part.extra_scalers[k].inverse_transform(scaled)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def metadata_for(
    settings: Settings, panel, prepared: PreparedPanel, result, single: bool, method
) -> dict:
    """metadata.json of a model trained on `panel` (`result`: train.fit.TrainResult).

    One series' (`single`) names its source, dates and row counts; a panel's
    its series, cut-off, inputs and each series' source. `method` is the
    forecast method a loaded model uses by default.
    """
    shape = _series_shape if single else _panel_shape
    return {
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **shape(panel, prepared),
        "settings": settings.to_dict(),
        "training": {
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "resumed_from_epoch": result.resumed_from,
            "runtime": result.runtime,
        },
        "versions": library_versions(),
        "default_method": method,
    }


def _panel_shape(panel, prepared: PreparedPanel) -> dict:
    names = list(prepared.parts)
    return {
        "source": {"kind": "panel", "series": names},
        "panel": {
            "series": names,
            "cutoff": f"{prepared.cutoff:%Y-%m-%d}",
            "features": list(prepared.features),
            "inputs": next(iter(prepared.parts.values())).extra_names,
            "sources": {name: panel[name].source for name in names},
        },
    }


def _series_shape(panel, prepared: PreparedPanel) -> dict:
    [(name, part)] = prepared.parts.items()
    source, split, dates = panel[name].source, part.split, part.dates
    return {
        "source": source,
        "column": source.get("column", panel[name].values.name),
        "date_range": {
            "first": f"{dates[0]:%Y-%m-%d}",
            "last": f"{dates[-1]:%Y-%m-%d}",
            "train_end": f"{dates[split.n_train - 1]:%Y-%m-%d}",
            "test_start": f"{dates[split.n_train]:%Y-%m-%d}",
        },
        "rows": {
            "total": split.n,
            "train": split.n_train,
            "fit_windows": split.n_fit,
            "validation_windows": split.n_val,
            "test_windows": split.n_test,
        },
    }


# ---------------------------------------------------------------- reading


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
    def single(self) -> bool:
        """Whether it holds one series (0.1's layout), not a panel keyed by series."""
        return "panel" not in self.metadata

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
    check_model_archive(path / MODEL_FILE, settings.prep.window, settings.prep.horizon)
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


def read_history(bundle: Bundle):
    """The bundle's loss per epoch as a DataFrame (empty if the file is missing)."""
    file = bundle.path / HISTORY_FILE
    if not file.exists():
        return pd.DataFrame(columns=["epoch", "loss", "val_loss"])
    return pd.read_csv(file)


def read_recent_prices(bundle: Bundle):
    """The last prices saved with the model (a Series), or None in older bundles."""
    file = bundle.path / RECENT_FILE
    if not file.exists():
        return None
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


def read_panel_recent(bundle: Bundle):
    """A panel bundle's last `window` days per series: series, date, price, features."""
    file = bundle.path / PANEL_RECENT_FILE
    try:
        frame = pd.read_csv(file, parse_dates=["date"])
    except (OSError, ValueError, KeyError) as err:
        raise BundleError(
            f"Cannot read {PANEL_RECENT_FILE} in bundle {str(bundle.path)!r} "
            f"({type(err).__name__}): the bundle is damaged, retrain it."
        ) from None
    return frame


def read_predictions(bundle: Bundle) -> pd.DataFrame | None:
    """The test-day predictions saved with the model, or None if there are none."""
    file = bundle.path / PREDICTIONS_FILE
    return pd.read_csv(file) if file.exists() else None


def prepared_from_bundle(bundle: Bundle, name: str, prices=None) -> PreparedPanel:
    """The days a loaded bundle forecasts from, as a PreparedPanel (no split).

    A panel's series from its recent_panel.csv; one series (called `name`)
    from `prices` if given, else its recent_prices.csv, else (0.1's bundles,
    which kept none) its own source read again.
    """
    representation = bundle.representation
    if bundle.single:
        if prices is None:
            prices = read_recent_prices(bundle)
        if prices is None:
            prices = source_prices(bundle)
        part = context_part(prices, bundle.scaler, representation)
        return PreparedPanel(pd.Timestamp(prices.index[-1]), ("close",), {name: part})
    panel = bundle.metadata["panel"]
    inputs = panel.get("inputs") or [f for f in panel["features"] if f != "close"]
    raw = _read_json(bundle.path / SCALER_FILE, bundle.path)["series"]
    recent = read_panel_recent(bundle)
    parts = {}
    for series in panel["series"]:
        rows = recent[recent["series"] == series].set_index("date")
        extra_scalers = [Scaler.from_dict(one) for one in raw[series]["features"]]
        parts[series] = context_part(
            rows["price"],
            bundle.scaler[series],
            representation,
            rows[inputs] if inputs else None,
            extra_scalers,
        )
    return PreparedPanel(pd.Timestamp(panel["cutoff"]), tuple(panel["features"]), parts)


def is_panel_bundle(directory) -> bool:
    """Whether the bundle directory holds a panel (keyed by series), not one series."""
    return (Path(directory) / PANEL_RECENT_FILE).is_file()


def read_part(directory, name: str):
    """One JSON or CSV file of a bundle directory, for a report that shows what it can.

    Returns (its content: a dict, or a DataFrame with rows; None and why it
    is missing: "no NAME", "NAME unreadable: Error" or "NAME has no rows").
    """
    path = Path(directory) / name
    if not path.is_file():
        return None, f"no {name}"
    try:
        if name.endswith(".json"):
            return json.loads(path.read_text()), None
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        return None, f"{name} unreadable: {type(err).__name__}"
    if frame.empty:
        return None, f"{name} has no rows"
    return frame, None
