"""The bundles a server reads: safe names, whole reads, a retrain picked up at once.

A model is named by a directory directly under MODELS_DIR. A name is a plain
file name (letters, digits, `.`, `_`, `-`, not starting with a dot); its real
path, symlinks followed, must lie directly under MODELS_DIR, and a bundle that
holds a symlink is refused, so no request reads anything outside MODELS_DIR.

A retrain swaps a bundle directory whole (forecaster.io), but the server reads
a bundle's files one by one by path, and a swap between two reads would mix
two models. So `BundleShelf` takes a snapshot of the directory (its inode, and
the inode, size and modification time of each file, read through one open
directory) before and after it reads everything a bundle serves into memory,
and keeps the result only when the two agree; otherwise it reads again.

A request looks at the disk at most every CHECK_SECONDS per bundle (one
snapshot, tens of microseconds). When the bundle changed, one background
thread reads and verifies the new version (the sha256 of every file, once per
swap) and computes its default answer (`warm`), while requests keep getting
the version in memory; the new one is served once it is whole and verified.
Only a bundle never read yet, or one found damaged, is read while its request
waits.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forecaster.api import Forecaster, load
from forecaster.errors import BundleError, ForecasterError
from forecaster.store.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    PANEL_RECENT_FILE,
    RECENT_FILE,
)
from forecaster.store.manifest import MANIFEST_FILE, REPORT_FILE

log = logging.getLogger("forecaster.serve")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
LOAD_ATTEMPTS = 10  # reads of a bundle that keeps changing before giving up
CACHED_ANSWERS = 64  # answers kept per bundle version (forecasts are deterministic)
CHECK_SECONDS = 0.1  # a bundle's directory is looked at no more often than this


class NotFoundError(ForecasterError):
    """No bundle of that name directly under MODELS_DIR (HTTP 404)."""


class BusyError(ForecasterError):
    """A bundle changed during every read (a retrain writing it): HTTP 503."""


@dataclass
class LoadedBundle:
    """A bundle read whole into memory: the model, its description, its report."""

    name: str
    snapshot: tuple  # what the directory looked like while it was read
    model: Forecaster  # forecasts with the NumPy engine, already loaded
    version: str  # first 16 hex digits of the sha256 of its manifest
    summary: dict  # what GET /models shows of it
    report: bytes | None  # its report.html, if it has one
    can_forecast: bool  # whether it keeps the recent prices a GET forecast needs
    answers: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict = field(default_factory=dict)  # answers being computed (the loop's)
    checked: float = field(default_factory=time.monotonic)  # last look at the disk

    def answer(self, key: tuple, compute: Callable[[], bytes]) -> bytes:
        """The cached answer for `key`, else `compute()`, kept (CACHED_ANSWERS)."""
        with self.lock:
            if key in self.answers:
                self.answers.move_to_end(key)
                return self.answers[key]
        body = compute()
        with self.lock:
            self.answers[key] = body
            while len(self.answers) > CACHED_ANSWERS:
                self.answers.popitem(last=False)
        return body


@dataclass
class DamagedBundle:
    """A bundle that failed its checks, and why; kept until its files change."""

    name: str
    snapshot: tuple
    reason: str
    checked: float = field(default_factory=time.monotonic)


def snapshot(path: Path) -> tuple:
    """`directory_snapshot` of the directory now at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return directory_snapshot(fd, path.name)
    finally:
        os.close(fd)


def directory_snapshot(fd: int, name: str) -> tuple:
    """(device, inode) of the open directory `fd` and each entry's identity.

    An entry's identity is its name, inode, size, modification and change
    times: a copy keeps the modification time (shutil.copy2) and may reuse a
    freed inode, but gets a new change time. A symlink inside is refused.
    """
    own = os.fstat(fd)
    entries = []
    with os.scandir(fd) as listing:
        for entry in listing:
            if entry.is_symlink():
                raise BundleError(
                    f"Bundle {name!r} holds a symbolic link ({entry.name}): the "
                    "server reads only files inside MODELS_DIR; copy the file in "
                    "instead."
                )
            info = entry.stat(follow_symlinks=False)
            entries.append(
                (entry.name, info.st_ino, info.st_size)
                + (info.st_mtime_ns, info.st_ctime_ns)
            )
    return (own.st_dev, own.st_ino, tuple(sorted(entries)))


class BundleShelf:
    """Every bundle directly under `root`, read on first use and again once changed."""

    def __init__(
        self,
        root: str | os.PathLike,
        warm: Callable[[LoadedBundle], None] | None = None,
    ):
        if not Path(root).is_dir():
            raise ForecasterError(
                f"MODELS_DIR {str(root)!r} is not a directory: give the directory "
                "that holds the bundles (train one first with `python train.py`)."
            )
        self.root = Path(os.path.realpath(root))
        self._entries: dict[str, LoadedBundle | DamagedBundle] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._refreshing: set[str] = set()
        self._warm = warm  # run on a new version before it is served
        self._guard = threading.Lock()

    def path_of(self, name: str) -> Path:
        """The real path of bundle `name`, or NotFoundError; nothing is read."""
        if not NAME_PATTERN.fullmatch(name) or ".." in name:
            raise NotFoundError(
                f"No model named {name!r}: a model is named by a directory directly "
                "under MODELS_DIR (letters, digits, '.', '_', '-'); GET /models lists "
                "them."
            )
        real = Path(os.path.realpath(self.root / name))
        if real.parent != self.root or not real.is_dir():
            raise NotFoundError(
                f"No model named {name!r} under MODELS_DIR: GET /models lists them."
            )
        return real

    def names(self) -> list[str]:
        """The bundles' names: directories under `root` holding a model or metadata."""
        found = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            try:
                path = self.path_of(entry.name)
            except NotFoundError:
                continue
            if (path / MODEL_FILE).exists() or (path / METADATA_FILE).exists():
                found.append(entry.name)
        return found

    def current(self, name: str) -> LoadedBundle | None:
        """Bundle `name` from memory, or None when it must be read first.

        Looks at the disk at most every CHECK_SECONDS: a changed bundle is
        read again in the background (`refresh_later`) and the one in memory
        answers meanwhile. A damaged bundle still damaged raises BundleError;
        one that changed is read again at once (None).
        """
        entry = self._entries.get(name)
        if entry is None:
            self.path_of(name)  # NotFoundError before anything else
            return None
        now = time.monotonic()
        if now - entry.checked >= CHECK_SECONDS:
            entry.checked = now
            try:
                same = self.unchanged(name, entry)
            except NotFoundError:  # removed (or now a symlink out): forgotten
                self._entries.pop(name, None)
                raise
            if not same:
                if isinstance(entry, DamagedBundle):  # read again now, by whoever asks
                    self._entries.pop(name, None)
                    return None
                self.refresh_later(name)
        if isinstance(entry, DamagedBundle):
            raise BundleError(entry.reason)
        return entry

    def unchanged(self, name: str, entry) -> bool:
        """Whether bundle `name` on disk is still the one `entry` was read from."""
        try:
            return snapshot(self.path_of(name)) == entry.snapshot
        except (FileNotFoundError, BundleError):
            return False

    def refresh_later(self, name: str) -> None:
        """Read bundle `name` again in one background thread (none if one runs)."""
        with self._guard:
            if name in self._refreshing:
                return
            self._refreshing.add(name)
        thread = threading.Thread(
            target=self.refresh, args=(name,), name=f"read {name}", daemon=True
        )
        thread.start()

    def refresh(self, name: str) -> None:
        """Read bundle `name` as on disk now and serve it from then on (a thread)."""
        try:
            self.get(name)
        except NotFoundError:  # removed: the next request answers 404
            self._entries.pop(name, None)
        except ForecasterError:  # damaged (kept as such) or busy (tried again later)
            pass
        finally:
            with self._guard:
                self._refreshing.discard(name)

    def get(self, name: str) -> LoadedBundle:
        """Bundle `name` as on disk now; NotFoundError, BundleError, BusyError."""
        path = self.path_of(name)
        for _ in range(LOAD_ATTEMPTS):
            try:
                before = snapshot(path)
            except FileNotFoundError:  # between the two renames of a fallback swap
                time.sleep(0.01)
                continue
            entry = self._entries.get(name)
            if entry is None or entry.snapshot != before:
                with self._lock_for(name):  # one reader per bundle; others wait
                    entry = self._entries.get(name)
                    if entry is None or entry.snapshot != before:
                        entry, current = read_whole(name, path, before)
                        if entry is None:
                            continue  # it changed before it could be read: again
                        if current:  # still the bundle under its name: kept
                            self.prepare(entry)
                            self._entries[name] = entry
            if isinstance(entry, DamagedBundle):
                raise BundleError(entry.reason)
            return entry
        raise BusyError(
            f"Model {name!r} changed during each of {LOAD_ATTEMPTS} reads (a retrain "
            "is writing it?): try again in a moment."
        )

    def prepare(self, entry) -> None:
        """Run `warm` on a bundle read whole, before it is served (best effort)."""
        if self._warm is not None and isinstance(entry, LoadedBundle):
            try:
                self._warm(entry)
            except ForecasterError as err:  # e.g. no saved prices: said on request
                log.info("no default answer for %s: %s", entry.name, err)

    def _lock_for(self, name: str) -> threading.Lock:
        with self._guard:
            return self._loading.setdefault(name, threading.Lock())


def read_whole(name: str, path: Path, before: tuple) -> tuple:
    """(LoadedBundle or DamagedBundle, whether it is still under `path`), or
    (None, False) when the directory changed before it could be read.

    Every file is read through one open directory (/proc/self/fd/N on
    Linux), so all come from the same bundle even if a retrain swaps another
    in meanwhile: a bundle read whole answers the request that asked for it,
    and is kept only if it is still the one under `path` afterwards.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None, False
    try:
        if directory_snapshot(fd, name) != before:
            return None, False
        where = Path(f"/proc/self/fd/{fd}")
        if not where.is_dir():  # no /proc: by name, checked again below
            where = path
        loaded, reason = read_or_why(name, where, before)
        if directory_snapshot(fd, name) != before:  # e.g. removed after a swap
            return None, False
    except BundleError:
        return None, False
    finally:
        os.close(fd)
    try:
        current = snapshot(path) == before
    except (FileNotFoundError, BundleError):
        current = False
    if loaded is None:  # damaged where it was read
        return DamagedBundle(name, before, reason), current
    loaded.model.bundle_.path = path  # its name, not the descriptor, from now on
    if where == path and not current:
        return None, False  # read by name across a swap: not whole
    return loaded, current


def read_or_why(name: str, where: Path, before: tuple):
    """(LoadedBundle, None), or (None, why it cannot be served: one line)."""
    try:
        return load_served(name, where, before), None
    except ForecasterError as err:
        reason = str(err).splitlines()[0]
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
    return None, reason.replace(str(where), name)  # the bundle's name, not /proc


def load_served(name: str, path: Path, before: tuple) -> LoadedBundle:
    """Everything the server needs of a bundle, read now: checks, weights, prices.

    A one-series bundle forecasts from its recent_prices.csv and a panel's
    from recent_panel.csv; the server never reads a bundle's source again
    (a CSV elsewhere, or a ticker over the network).
    """
    model = load(path)  # checks the manifest: sizes and sha256 of every file
    model.get_engine("numpy")  # reads the weights; never imports TensorFlow
    recent = RECENT_FILE if model.single_ else PANEL_RECENT_FILE
    can_forecast = (path / recent).is_file()
    if can_forecast:
        model.panel_  # noqa: B018 (reads the recent prices now, inside the snapshot)
    report = path / REPORT_FILE
    manifest = path / MANIFEST_FILE
    if manifest.is_file():
        version = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    else:
        version = hashlib.sha256(repr(before).encode()).hexdigest()[:16]
    return LoadedBundle(
        name=name,
        snapshot=before,
        model=model,
        version=version,
        summary=summarise(name, model, version, can_forecast),
        report=report.read_bytes() if report.is_file() else None,
        can_forecast=can_forecast,
    )


def summarise(name: str, model: Forecaster, version: str, can_forecast: bool) -> dict:
    """What GET /models shows of a bundle: model, series, dates, headline scores."""
    settings, meta = model.settings, model.metadata_
    panel = meta.get("panel")
    return {
        "name": name,
        "status": "ok",
        "version": version,
        "created": meta.get("created"),
        "cell": settings.model.cell,
        "loss": model.get_engine("numpy").head.kind,  # the saved head's, resolved
        "objective": settings.model.objective,
        "representation": settings.prep.representation,
        "window": settings.prep.window,
        "horizon": settings.prep.horizon,
        "series": panel["series"] if panel else [model.name],
        "trained_on": {"cutoff": panel.get("cutoff")}
        if panel
        else meta.get("date_range", {}),
        "scores": headline_scores(model.metrics_ or {}, bool(panel)),
        "forecasts_from_saved_prices": can_forecast,
    }


def headline_scores(metrics: dict, panel: bool) -> dict:
    """The test scores beside their anchors: naive for prices, GARCH & co. for bands."""
    if panel:
        return finite(metrics.get("panel", {}))
    if "direction" in metrics:
        return finite(metrics["direction"])
    coverage = metrics.get("interval_coverage_one_step", {})
    crps = {
        one.get("label", key): one.get("crps")
        for key, one in metrics.get("distribution", {}).get("methods", {}).items()
    }
    return finite(
        {
            "test_days": metrics.get("test_days"),
            "rmse": metrics.get("model", {}).get("rmse"),
            "naive_rmse": metrics.get("naive", {}).get("rmse"),
            "rmse_ratio_to_naive": metrics.get("rmse_ratio_to_naive"),
            "coverage_80": coverage.get("0.8"),
            "coverage_95": coverage.get("0.95"),
            "crps_by_method": finite(crps) or None,
        }
    )


def finite(values: dict) -> dict:
    """`values` without NaN, infinities and None (JSON has no NaN)."""
    return {
        key: value
        for key, value in values.items()
        if value is not None
        and not (isinstance(value, float) and not math.isfinite(value))
    }
