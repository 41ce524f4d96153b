"""Atomic writes: files and directories swapped into place whole, or not at all.

A directory is written under a temporary name beside its target and then
exchanged with the old one in a single step (Linux renameat2 RENAME_EXCHANGE),
so that at every instant the name holds either the old complete directory or
the new complete one. Where the exchange is unsupported, the old directory is
renamed aside first; a save killed between the two renames is undone by
`recover`, which every writer and reader of a bundle runs first.

Setting FORECASTER_FAULT_AT=<step>[@n] makes the process exit hard (status
FAULT_EXIT_CODE) the n-th time it reaches that step of a save (see
SWAP_STEPS), so tests can stop a save at every step without racing a timer.
FORECASTER_NO_EXCHANGE=1 forces the two-rename path.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from forecaster.errors import ForecasterError, write_error
from forecaster.lock import LockHeldError, hold

log = logging.getLogger("forecaster")

FAULT_ENV = "FORECASTER_FAULT_AT"
NO_EXCHANGE_ENV = "FORECASTER_NO_EXCHANGE"
FAULT_EXIT_CODE = 86  # the status of a process stopped by FORECASTER_FAULT_AT
SWAP_STEPS = (
    "tmp-created",  # the temporary directory exists, still empty
    "written",  # the new directory is complete under its temporary name
    "moved-aside",  # (two-rename path) the old one renamed to .NAME.old-*
    "swapped",  # the new one is under the name; the old one not yet removed
    "cleaning",  # the old one partly removed
)
_reached: dict[str, int] = {}


def fault_point(step: str) -> None:
    """Exit at once, with no cleanup, when FORECASTER_FAULT_AT names this step."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    _reached[step] = _reached.get(step, 0) + 1
    name, _, nth = wanted.partition("@")
    if name == step and _reached[step] == int(nth or 1):
        os._exit(FAULT_EXIT_CODE)


# ------------------------------------------------------------- directories


def write_directory_atomically(
    target: str | os.PathLike,
    write: Callable[[Path], None],
    replace: bool = False,
    what: str = "directory",
) -> Path:
    """Call `write(tmp)` on a fresh directory beside `target`, then swap it in.

    If `target` exists and `replace` is false, nothing is written. If `write`
    raises, the temporary directory is removed and `target` is untouched. The
    process holds `target`'s lock throughout and first recovers what a killed
    save left behind. An OSError becomes a one-line ForecasterError naming
    `what` (e.g. "bundle") and the path.
    """
    target = Path(target)
    try:
        with hold(target, what):
            recover(target, what)
            if target.exists() and not replace:
                raise ForecasterError(
                    f"{str(target)!r} already exists: pass force=True to replace it "
                    "(the old one is kept until the new one is complete), or choose "
                    "another out path."
                )
            _swap_in(target, write)
    except OSError as err:
        raise write_error(err, what, target) from None
    return target


def _swap_in(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _leftover(target, "tmp")
    tmp.mkdir()
    try:
        fault_point("tmp-created")
        write(tmp)
        fault_point("written")
        _place(tmp, target)
    finally:
        # The failed new directory, or the old one after an exchange.
        _remove_tree(tmp)


def _place(tmp: Path, target: Path) -> None:
    """Put `tmp` under `target`'s name; an old `target` ends up under `tmp`."""
    if not target.exists():
        os.rename(tmp, target)
        fault_point("swapped")
        return
    if exchange(tmp, target):
        fault_point("swapped")
        return
    old = _leftover(target, "old")
    os.rename(target, old)
    fault_point("moved-aside")
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)
        raise
    fault_point("swapped")
    _remove_tree(old)


def _leftover(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:8]}")


def _remove_tree(path: Path) -> None:
    """Remove a directory; a kill part way leaves a hidden leftover `recover` clears."""
    if not path.exists():
        return
    # One file first, then the rest: the "cleaning" fault point stops here with
    # the directory half removed, as a kill during rmtree would leave it.
    for child in path.iterdir():
        if child.is_file():
            child.unlink()
            fault_point("cleaning")
            break
    shutil.rmtree(path, ignore_errors=True)


def discard_directory(target: str | os.PathLike) -> None:
    """Remove `target` in one step: renamed to a leftover name first, then deleted."""
    target = Path(target)
    if target.exists():
        trash = _leftover(target, "tmp")
        os.rename(target, trash)
        _remove_tree(trash)


# --------------------------------------------------------------- exchange

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
_renameat2 = None  # looked up on first use; False where libc has none


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the OS cannot."""
    global _renameat2
    if os.environ.get(NO_EXCHANGE_ENV) or not sys.platform.startswith("linux"):
        return False
    if _renameat2 is None:
        _renameat2 = _find_renameat2()
    if not _renameat2:
        return False
    if (
        _renameat2(
            _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
        )
        == 0
    ):
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:  # an older kernel, or a file system without it
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _find_renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # libc before glibc 2.28, or not glibc
        return False
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


# --------------------------------------------------------------- recovery


def final_name(directory: str | os.PathLike) -> str:
    """The name `directory` will have once saved: NAME for a .NAME.tmp-* temporary.

    What is written inside a save's temporary directory (a report's title)
    names the bundle it becomes, never the temporary.
    """
    name = Path(directory).name
    found = re.fullmatch(r"\.(.+)\.tmp-[0-9a-f]{8}", name)
    return found.group(1) if found else name


def leftovers(target: str | os.PathLike) -> list[Path]:
    """The .NAME.tmp-* and .NAME.old-* directories a save of `target` left behind."""
    target = Path(target)
    pattern = re.compile(re.escape(f".{target.name}.") + r"(tmp|old)-[0-9a-f]{8}")
    try:
        found = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:  # no parent directory, or not readable: nothing to recover
        return []
    return sorted(p for p in found if p.is_dir())


def recover(target: str | os.PathLike, what: str = "directory") -> list[str]:
    """Undo a killed save of `target`: restore a set-aside old one, drop temporaries.

    A .NAME.old-* with no NAME is the complete previous directory (a save was
    killed between its two renames) and is renamed back; every other leftover
    is removed. Returns the notes, also logged. Call it holding the lock.
    """
    target = Path(target)
    found = leftovers(target)
    notes = []
    olds = sorted(
        (p for p in found if ".old-" in p.name), key=lambda p: p.stat().st_mtime
    )
    if olds and not target.exists():
        os.rename(olds[-1], target)
        found.remove(olds[-1])
        notes.append(
            f"restored the {what} {str(target)!r} from {olds[-1].name}, set aside "
            "by a save that was interrupted"
        )
        log.warning(notes[-1])
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
        notes.append(f"removed {path.name}, left by an interrupted save of {what}")
        log.info(notes[-1])
    return notes


def recover_if_free(target: str | os.PathLike, what: str = "directory") -> list[str]:
    """`recover` for readers: only when there are leftovers and no writer is busy."""
    if not leftovers(target):
        return []
    try:
        with hold(target, what):
            return recover(target, what)
    except (LockHeldError, OSError):  # a writer will recover it; or read-only
        return []


# ------------------------------------------------------------------ files


def write_file_atomically(
    path: str | os.PathLike, write: Callable[[Path], None]
) -> Path:
    """Call `write(tmp_path)`, then replace `path` with it in one rename.

    An OSError propagates (callers name what failed); the temporary file is
    removed either way.
    """
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
    been written are they renamed into place. An OSError becomes a one-line
    ForecasterError naming the file.
    """
    tag = uuid.uuid4().hex[:8]
    staged = {}
    path = None
    try:
        for path, write in writers.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.tmp-{tag}{path.suffix}")
            staged[path] = tmp
            write(tmp)
        for path, tmp in staged.items():
            os.replace(tmp, path)
    except OSError as err:
        raise write_error(err, "file", path) from None
    finally:
        for tmp in staged.values():
            if tmp.exists():
                tmp.unlink()
    return list(staged)


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
