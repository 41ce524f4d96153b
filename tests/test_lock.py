"""One writer per bundle: a second run is refused, a dead run's lock taken over."""

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_settings

import train
from forecaster import lock
from forecaster.cli import main as cli
from forecaster.lock import LockHeldError, hold, lock_path
from forecaster.workflows import runs as pipeline

ROOT = Path(__file__).resolve().parent.parent

# Holds the lock of argv[1] until its stdin is closed: no timers, a handshake.
HOLDER = """
import sys
from forecaster.lock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def held(tmp_path):
    """A bundle path whose lock another live process holds; yields (path, pid)."""
    target = tmp_path / "bundle"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield target, proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_second_writer_is_refused_at_once_naming_the_holder(held):
    target, pid = held
    with pytest.raises(LockHeldError) as caught:
        with hold(target):
            pass
    message = str(caught.value)
    assert message.startswith(
        f"The bundle {str(target)!r} is being written by another run (process {pid} "
        f"on host {socket.gethostname()!r} since "
    )
    assert message.endswith("wait for it to finish, or choose another out path.")
    assert "\n" not in message


def test_training_on_a_locked_out_is_refused_before_any_work(held, prices_csv, capsys):
    target, pid = held
    with pytest.raises(LockHeldError, match=f"process {pid}"):
        pipeline.run_training(tiny_settings(prices_csv), out=target, force=True)
    args = ["--csv", prices_csv, "--out", str(target), "--force", "--quiet"]
    assert cli.run(train.main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: The bundle") and f"process {pid}" in err[-1]
    assert err[-1].endswith("or choose another --out.")  # the CLI names the flag
    assert not target.exists()


def test_the_lock_is_free_again_when_its_holder_ends(tmp_path, caplog):
    target = tmp_path / "bundle"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert not lock_path(target).exists()
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        with hold(target):
            assert json.loads(lock_path(target).read_text())["pid"] == os.getpid()
            with hold(target):  # re-entrant within one process
                pass
            assert lock_path(target).exists()
    assert not lock_path(target).exists() and caplog.text == ""


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path, caplog):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid names no live process now
    target = tmp_path / "bundle"
    left = {"pid": proc.pid, "host": socket.gethostname(), "since": "earlier"}
    lock_path(target).write_text(json.dumps(left))
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        with hold(target):
            pass
    assert (
        f"took over the lock {str(lock_path(target))!r} left by process "
        f"{proc.pid}, which is no longer running"
    ) in caplog.text
    assert not lock_path(target).exists()


def test_a_lock_from_another_machine_is_not_taken_over(tmp_path):
    target = tmp_path / "bundle"
    left = {"pid": 1234, "host": "elsewhere.example", "since": "2026-01-01"}
    lock_path(target).write_text(json.dumps(left))
    with pytest.raises(
        LockHeldError, match=r"process 1234 on host 'elsewhere.example'.*delete"
    ):
        with hold(target):
            pass
    assert json.loads(lock_path(target).read_text()) == left


def test_an_unreadable_lock_file_content_is_replaced(tmp_path):
    target = tmp_path / "bundle"
    lock_path(target).write_text("{not json")
    with hold(target):
        assert json.loads(lock_path(target).read_text())["pid"] == os.getpid()


def test_no_lock_is_held_after_an_error_inside(tmp_path):
    target = tmp_path / "bundle"
    with pytest.raises(RuntimeError):
        with hold(target):
            raise RuntimeError("boom")
    assert lock._held == {} and not lock_path(target).exists()


def test_a_run_that_writes_nothing_leaves_no_new_folders(tmp_path):
    target = tmp_path / "models" / "deep" / "bundle"
    with hold(target):
        assert lock_path(target).exists()
    assert list(tmp_path.iterdir()) == []
    with hold(target):
        target.mkdir()  # the run wrote its bundle: its folders stay
    assert [p.name for p in target.parent.iterdir()] == ["bundle"]
