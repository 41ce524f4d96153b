"""The manifest: the size and sha256 of every file of a bundle, written last.

A bundle whose manifest lists a file that is missing or differs is refused
with the name of that file; files it does not list are ignored (the forecast
outputs silently, anything else with a note).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from forecaster.errors import BundleError
from forecaster.io import write_json

MANIFEST_FILE = "manifest.json"
FORECAST_FILE = "forecast.csv"
FORECAST_PLOT = "forecast.png"  # a panel's further pages: forecast-2.png ...
REPORT_FILE = "report.html"
# Written into a bundle by predict.py after it was saved, so not in its manifest.
OUTPUT_FILES = (FORECAST_FILE, FORECAST_PLOT, REPORT_FILE)


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
            files[name] = {"size": file.stat().st_size, "sha256": sha256(file)}
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
    listed = read_manifest_files(path)
    for name, entry in listed.items():
        check_listed_file(path, name, entry)
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


def read_manifest_files(path: Path) -> dict:
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


def check_listed_file(path: Path, name: str, entry: dict) -> None:
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
    if sha256(file) != entry["sha256"]:
        raise BundleError(
            f"Bundle {str(path)!r}: {name} does not match its sha256 in "
            f"{MANIFEST_FILE} (the file was changed): the bundle is damaged or "
            "incompatible, train it again (or copy it again)."
        )


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
