"""One writer per bundle: a lock file beside it, held with flock while it is written.

The lock for `models/AAPL-lstm` is `models/.AAPL-lstm.lock`. Its holder keeps
an exclusive flock on it (released by the kernel when the process ends, even
on kill -9) and writes its process id, host and start time into it, so that a
refused run can name the holder and a lock left by a dead run is recognised
and taken over. Locks are re-entrant within one process; they do not guard
threads of one process against each other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from forecaster.errors import ForecasterError, write_error

log = logging.getLogger("forecaster")

_held: dict[str, list] = {}  # lock path -> [file descriptor, depth]


class LockHeldError(ForecasterError):
    """Another live process is writing the same bundle or checkpoint."""


def lock_path(target: str | os.PathLike) -> Path:
    """Where the lock of `target` lives: .NAME.lock in the same parent directory."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def hold(target: str | os.PathLike, what: str = "bundle"):
    """Hold `target`'s lock for the `with` block; refuse at once if a live run has it.

    Raises LockHeldError naming the holder (process id and host). A lock whose
    holder died on this host is taken over with a warning.
    """
    path = lock_path(target)
    key = os.path.abspath(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield path
        finally:
            _held[key][1] -= 1
        return
    created: list[Path] = []
    try:
        created = _make_parents(path.parent)
        fd = _acquire(path, Path(target), what)
    except BaseException as err:
        _remove_empty(created)
        if isinstance(err, OSError):
            raise write_error(err, f"lock file for the {what}", path) from None
        raise
    _held[key] = [fd, 1]
    try:
        yield path
    finally:
        del _held[key]
        _release(path, fd)
        _remove_empty(created)  # a run that wrote nothing leaves no new folders


def _make_parents(directory: Path) -> list[Path]:
    """Create `directory` and its missing parents; the ones created, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (the run wrote into it), or already gone
            return


def _acquire(path: Path, target: Path, what: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise LockHeldError(
                f"The {what} {str(target)!r} is being written by another run "
                f"({holder}; lock file {str(path)!r}): wait for it to finish, or "
                "choose another out path."
            ) from None
        if _is_current(fd, path):
            break
        os.close(fd)  # its holder removed it between our open and our lock: again
    try:
        _take_over(_read_holder(fd), path, target, what)
        _write_holder(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_current(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (not one unlinked by its holder)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _take_over(previous: dict | None, path: Path, target: Path, what: str) -> None:
    """Check what a lock we could flock says about its last holder."""
    if not previous:
        return
    pid, host = previous.get("pid"), previous.get("host")
    if host != socket.gethostname():
        # flock may not reach across machines (network file systems): trust
        # the content, and let a person clear it.
        raise LockHeldError(
            f"The {what} {str(target)!r} is locked by {_describe(previous)}, another "
            f"machine: if that run has ended, delete {str(path)!r} and run again."
        )
    if pid == os.getpid():
        return
    state = "is no longer running" if not _alive(pid) else "no longer holds it"
    log.warning(
        f"took over the lock {str(path)!r} left by process {pid}, which {state}"
    )


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> dict | None:
    try:
        raw = os.pread(fd, 4096, 0)
        holder = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    data = (json.dumps(holder) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _describe(holder: dict | None) -> str:
    if not holder:
        return "a process that has not yet written its id"
    return (
        f"process {holder.get('pid')} on host {holder.get('host')!r} since "
        f"{holder.get('since')}"
    )


def _release(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then let go."""
    try:
        if _is_current(fd, path):
            path.unlink()
    except OSError:  # a read-only or vanished directory: the flock still ends
        pass
    finally:
        os.close(fd)
