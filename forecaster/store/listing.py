"""The table of saved models: every bundle under a directory, one row each.

`forecaster list [DIR] [--sort COLUMN]` prints it. A bundle that cannot be
read is listed as damaged, with the reason below the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
from pathlib import Path

import pandas as pd

from forecaster.errors import BundleError, ForecasterError
from forecaster.store.bundle import (
    METADATA_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SCALER_FILE,
    load_bundle,
)

COLUMNS = (
    "bundle",  # its path under the listed directory
    "series",  # ticker, or the source CSV's name
    "cell",
    "representation",
    "first",  # first and last date of the training data
    "last",
    "test_ratio",  # test RMSE / naive RMSE (below 1: better than naive); for a
    #   direction model, its Brier score / the base rate's
    "coverage_80",  # share of test days inside the 80% and 95% bands
    "coverage_95",
    "age",  # time since training
    "status",  # ok or damaged
)
BUNDLE_FILES = (MODEL_FILE, METADATA_FILE, SCALER_FILE, METRICS_FILE)


def list_bundles(root: str | os.PathLike = "models") -> pd.DataFrame:
    """One row per bundle under `root` (any depth), sorted by path; see COLUMNS.

    A directory counts as a bundle when it holds any bundle file; hidden
    directories (checkpoints, half-written saves) are skipped. Damaged
    bundles get status "damaged" and the reason in a `problem` column.
    """
    root = Path(root)
    if not root.is_dir():
        raise ForecasterError(
            f"No directory {str(root)!r} to list bundles from: give the directory "
            "that holds them (default: models), or train one first."
        )
    now = dt.datetime.now(dt.timezone.utc)
    rows = [_row(path, root, now) for path in _bundle_dirs(root)]
    return pd.DataFrame(rows, columns=[*COLUMNS, "problem"])


def _bundle_dirs(root: Path) -> list[Path]:
    found = []
    for folder, names, files in os.walk(root):
        names[:] = sorted(n for n in names if not n.startswith("."))
        if any(name in files for name in BUNDLE_FILES):
            found.append(Path(folder))
    return found


def _row(path: Path, root: Path, now: dt.datetime) -> dict:
    row = {"bundle": str(path.relative_to(root)) if path != root else "."}
    try:
        bundle = load_bundle(path)
    except (BundleError, OSError) as err:  # unreadable files too: never a crash
        return {**row, "status": "damaged", "problem": str(err)}
    meta, metrics = bundle.metadata, bundle.metrics
    if "panel" in meta:
        return {**row, **_panel_row(bundle), "age": _age(meta.get("created"), now)}
    source = meta.get("source", {})
    coverage = metrics.get("interval_coverage_one_step", {})
    direction = bundle.settings.model.objective == "direction"
    return {
        **row,
        "series": source.get("ticker") or Path(source.get("path") or "?").stem,
        "cell": bundle.settings.model.cell + (" P(up)" if direction else ""),
        "representation": bundle.representation,
        "first": meta.get("date_range", {}).get("first"),
        "last": meta.get("date_range", {}).get("last"),
        "test_ratio": _test_ratio(metrics, direction),
        "coverage_80": coverage.get("0.8", math.nan),
        "coverage_95": coverage.get("0.95", math.nan),
        "age": _age(meta.get("created"), now),
        "status": "ok",
        "problem": "",
    }


def _test_ratio(metrics: dict, direction: bool) -> float:
    """RMSE / naive, or for a direction model Brier score / the base rate's."""
    if direction:
        return metrics.get("direction", {}).get("brier_ratio", math.nan)
    return metrics.get("rmse_ratio_to_naive", math.nan)


def _panel_row(bundle) -> dict:
    """A panel bundle's row: its series, and the means over them."""
    names = bundle.metadata["panel"]["series"]
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    per = bundle.metrics.get("series", {})
    cover = [m.get("interval_coverage_one_step", {}) for m in per.values()]
    recent = bundle.metadata["panel"].get("cutoff")

    def mean(values) -> float:
        values = [v for v in values if v is not None]
        return float(sum(values) / len(values)) if values else math.nan

    return {
        "series": shown,
        "cell": bundle.settings.model.cell,
        "representation": bundle.representation,
        "first": None,
        "last": recent and f"cut {recent}",
        "test_ratio": bundle.metrics.get("panel", {}).get("mean_ratio", math.nan),
        "coverage_80": mean(c.get("0.8") for c in cover),
        "coverage_95": mean(c.get("0.95") for c in cover),
        "status": "ok",
        "problem": "",
    }


def _age(created: str | None, now: dt.datetime) -> pd.Timedelta:
    try:
        return pd.Timedelta(now - dt.datetime.fromisoformat(created))
    except (TypeError, ValueError):
        return pd.NaT


def sort_listing(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`frame` sorted by `column` (ascending; age: newest first), blanks last."""
    if column not in COLUMNS:
        raise ForecasterError(
            f"--sort: unknown column {column!r}: choose one of {', '.join(COLUMNS)}."
        )
    return frame.sort_values(column, na_position="last", kind="stable")


def format_listing(frame: pd.DataFrame) -> str:
    """The listing as text: a table, then one line per damaged bundle."""
    if frame.empty:
        return "no bundles"
    shown = frame[list(COLUMNS)].astype(object).where(frame[list(COLUMNS)].notna(), "")
    formats = {
        "test_ratio": lambda v: "" if v == "" else f"{v:.3f}",
        "coverage_80": _percent,
        "coverage_95": _percent,
        "age": _human_age,
    }
    text = shown.to_string(index=False, formatters=formats)
    problems = [
        f"  {row.bundle}: {row.problem}"
        for row in frame.itertuples()
        if row.status == "damaged"
    ]
    if problems:
        text += "\n\ndamaged:\n" + "\n".join(problems)
    return text


def _percent(value) -> str:
    return "" if value == "" else f"{value:.1%}"


def _human_age(value) -> str:
    if value == "":
        return ""
    seconds = value.total_seconds()
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forecaster list",
        description="List the saved bundles: series, cell, dates, test scores, age.",
    )
    p.add_argument(
        "directory",
        nargs="?",
        default="models",
        metavar="DIR",
        help="where the bundles are (default: models)",
    )
    p.add_argument(
        "--sort",
        metavar="COLUMN",
        default="bundle",
        help=f"sort by one of: {', '.join(COLUMNS)} (default: bundle)",
    )
    return p
