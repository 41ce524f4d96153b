"""Atomic writes: a save stopped at every step, recovery, and refused writes."""

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forecaster import io
from forecaster.errors import ForecasterError

ROOT = Path(__file__).resolve().parent.parent

# A tiny writer with no TensorFlow: saves version argv[2] of a directory at argv[1].
WRITER = """
import sys
from pathlib import Path
from forecaster import io
def write(tmp):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp / name).write_text(sys.argv[2] * 3)

io.write_directory_atomically(Path(sys.argv[1]), write, replace=True)
"""


def _save(target, version, env=None, fsize_limit=None):
    """Run WRITER in a fresh process; FORECASTER_* settings come through `env`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    code = WRITER
    if fsize_limit is not None:  # a real refused write, even for root
        code = (
            "import resource, signal\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize_limit}, "
            "resource.RLIM_INFINITY))\n" + code
        )
    return subprocess.run(
        [sys.executable, "-c", code, str(target), version],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _content(directory: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def _version(directory: Path) -> str:
    """'old' or 'new' for a complete directory written by WRITER; fails otherwise."""
    content = _content(directory)
    assert sorted(content) == ["a.txt", "b.txt", "c.txt"], content
    assert len(set(content.values())) == 1, content
    return next(iter(content.values()))[:3]


MODES = {"exchange": {}, "two-renames": {io.NO_EXCHANGE_ENV: "1"}}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("step", io.SWAP_STEPS)
def test_a_save_stopped_at_any_step_leaves_a_complete_directory(tmp_path, mode, step):
    target = tmp_path / "bundle"
    assert _save(target, "old").returncode == 0
    env = {**MODES[mode], io.FAULT_ENV: step}
    stopped = _save(target, "new", env)
    reached = not (mode == "exchange" and step == "moved-aside")  # no such step
    assert stopped.returncode == (io.FAULT_EXIT_CODE if reached else 0)

    io.recover_if_free(target)  # what the next command does first

    before_swap = reached and step in ("tmp-created", "written", "moved-aside")
    assert _version(target) == ("old" if before_swap else "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert _save(target, "two").returncode == 0 and _version(target) == "two"


@pytest.mark.parametrize("step", ["tmp-created", "written"])
def test_a_first_save_stopped_early_leaves_nothing(tmp_path, step):
    target = tmp_path / "bundle"
    assert _save(target, "new", {io.FAULT_ENV: step}).returncode == io.FAULT_EXIT_CODE
    notes = io.recover_if_free(target)
    assert len(notes) == 1 and notes[0].startswith("removed .bundle.tmp-")
    assert list(tmp_path.iterdir()) == []


def test_the_gap_of_the_two_rename_path_is_recovered_with_a_note(tmp_path, caplog):
    target = tmp_path / "bundle"
    assert _save(target, "old").returncode == 0
    env = {io.NO_EXCHANGE_ENV: "1", io.FAULT_ENV: "moved-aside"}
    assert _save(target, "new", env).returncode == io.FAULT_EXIT_CODE
    assert not target.exists()  # the gap: only .bundle.old-* and .bundle.tmp-*
    with caplog.at_level(logging.INFO, logger="forecaster"):
        notes = io.recover_if_free(target, "bundle")
    assert notes[0].startswith(f"restored the bundle {str(target)!r} from .bundle.old-")
    assert notes[1].startswith("removed .bundle.tmp-")
    assert _version(target) == "old" and caplog.text.count("interrupted") == 2


def test_a_stop_at_the_nth_save_counts_saves(tmp_path):
    code = WRITER.replace(
        "io.write_directory_atomically(Path(sys.argv[1]), write, replace=True)",
        "for _ in range(3):\n"
        "    io.write_directory_atomically(Path(sys.argv[1]), write, replace=True)\n"
        "    print('saved', flush=True)",
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{io.FAULT_ENV: "swapped@2"})
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "b"), "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == io.FAULT_EXIT_CODE and done.stdout.split() == ["saved"]


def test_recover_removes_half_removed_leftovers_beside_a_complete_one(tmp_path):
    target = tmp_path / "b"
    target.mkdir()
    (target / "a.txt").write_text("new")
    for stale in (".b.old-0123abcd", ".b.tmp-89abcdef"):
        (tmp_path / stale).mkdir()
        (tmp_path / stale / "x").write_text("partial")
    (tmp_path / ".b.tmp-not-ours").mkdir()  # another name pattern: left alone
    assert len(io.recover(target)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.tmp-not-ours", "b"]


def test_discard_directory_never_leaves_a_half_removed_one(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "state.json").write_text("{}")
    io.discard_directory(target)
    io.discard_directory(target)  # already gone: nothing to do
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------- refused and failed writes


def _fill(version):
    def write(tmp):
        for name in ("a.txt", "b.txt"):
            (tmp / name).write_text(version)

    return write


def _failing(code):
    def write(tmp):
        (tmp / "a.txt").write_text("partial")
        raise OSError(code, os.strerror(code), str(tmp / "a.txt"))

    return write


@pytest.mark.parametrize(
    "code, advice",
    [
        (errno.ENOSPC, "Free some disk space and run again"),
        (errno.EACCES, "Check the permissions there, or write somewhere else"),
        (errno.EROFS, "The file system is read-only: write somewhere else"),
    ],
)
def test_a_write_error_is_one_line_and_changes_nothing(tmp_path, code, advice):
    target = tmp_path / "bundle"
    io.write_directory_atomically(target, _fill("old"))
    with pytest.raises(ForecasterError) as caught:
        io.write_directory_atomically(target, _failing(code), True, what="bundle")
    name = errno.errorcode[code]
    assert str(caught.value) == (
        f"Could not write the bundle {str(target)!r}: {os.strerror(code)} ({name}). "
        f"{advice}; nothing that was there before has changed."
    )
    assert _content(target) == {"a.txt": "old", "b.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_failed_exchange_keeps_the_old_directory(tmp_path, monkeypatch):
    target = tmp_path / "bundle"
    io.write_directory_atomically(target, _fill("old"))

    def refuse(a, b):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(a), None, str(b))

    monkeypatch.setattr(io, "exchange", refuse)
    with pytest.raises(ForecasterError, match=r"Read-only file system \(EROFS\)"):
        io.write_directory_atomically(target, _fill("new"), replace=True)
    assert _content(target) == {"a.txt": "old", "b.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_real_refused_write_even_as_root(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse a write (EFBIG), whoever the user is."""
    target = tmp_path / "bundle"
    assert _save(target, "old").returncode == 0
    before = _content(target)
    done = _save(target, "x" * 5000, fsize_limit=4096)
    assert done.returncode == 1
    assert f"Could not write the directory {str(target)!r}: File too large (EFBIG)" in (
        done.stderr
    )
    assert _content(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root writes through file permissions (the RLIMIT_FSIZE test above "
    "covers a real refused write as root)",
)
def test_a_read_only_directory_for_real(tmp_path):
    target = tmp_path / "parent" / "bundle"
    io.write_directory_atomically(target, _fill("old"))
    target.parent.chmod(0o500)
    try:
        with pytest.raises(ForecasterError, match=r"Permission denied \(EACCES\)"):
            io.write_directory_atomically(target, _fill("new"), replace=True)
    finally:
        target.parent.chmod(0o700)
    assert _content(target) == {"a.txt": "old", "b.txt": "old"}


def test_write_files_atomically_keeps_every_earlier_file(tmp_path):
    first, second = tmp_path / "forecast.csv", tmp_path / "forecast.png"
    io.write_files_atomically(
        {first: lambda t: t.write_text("1"), second: lambda t: t.write_text("2")}
    )

    def full(tmp):
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    with pytest.raises(
        ForecasterError,
        match=rf"^Could not write the file {str(second)!r}: No space left on device "
        r"\(ENOSPC\)\. Free some disk space",
    ):
        io.write_files_atomically({first: lambda t: t.write_text("9"), second: full})
    assert (first.read_text(), second.read_text()) == ("1", "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name]


def test_final_name_reads_through_a_save_s_temporary_directory(tmp_path):
    assert io.final_name(tmp_path / ".AAPL-lstm.tmp-ae7970b8") == "AAPL-lstm"
    assert io.final_name(tmp_path / "AAPL-lstm") == "AAPL-lstm"
    assert io.final_name(tmp_path / ".hidden.tmp-notahex") == ".hidden.tmp-notahex"
