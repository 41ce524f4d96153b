"""Tests for readable logs: plain epoch lines off a terminal, progress lines, resume."""

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_FLAGS, make_prices, tiny_settings, write_csv

from forecaster.train.progress import (
    EpochLine,
    Progress,
    format_epoch,
    keras_display,
    progress_line,
)

ROOT = Path(__file__).resolve().parent.parent


class _Clock:
    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_epoch_line_is_plain_text():
    line = format_epoch(3, 50, {"loss": 1.1539e-4, "val_loss": 1.8562e-4}, 1.44)
    assert line == "epoch 3/50  loss 1.1539e-04  val_loss 1.8562e-04  1.4 s"


def test_epoch_line_writes_and_times_each_epoch():
    out = io.StringIO()
    lines = EpochLine(out, clock=_Clock(0.0, 10.0, 12.5))
    lines.begin()
    lines.end(1, 2, {"loss": 0.5, "val_loss": 0.25})
    assert out.getvalue() == "epoch 1/2  loss 5.0000e-01  val_loss 2.5000e-01  2.5 s\n"


def test_display_is_the_bar_on_a_terminal_and_lines_elsewhere():
    assert keras_display(1, _Terminal()) == ([], 1)
    callbacks, verbose = keras_display(1, io.StringIO())
    assert verbose == 0 and len(callbacks) == 1
    assert keras_display(0, io.StringIO()) == ([], 0)


def test_progress_line_counts_and_estimates_time_left():
    assert progress_line("series 3/10 (AAPL)", 3, 10, 6.0) == (
        "series 3/10 (AAPL): 3 done, 7 left, about 14 s left"
    )
    assert progress_line("trial 0/4", 0, 4, 0.0) == "trial 0/4: 0 done, 4 left"
    assert progress_line("trial 4/4", 4, 4, 7200.0) == (
        "trial 4/4: 4 done, 0 left, took 2.0 h"
    )


@pytest.mark.parametrize(
    "done, total, message",
    [(1, 0, "total=0"), (5, 4, "done=5"), (-1, 4, "done=-1")],
)
def test_progress_line_rejects_impossible_counts(done, total, message):
    with pytest.raises(ValueError, match=message):
        progress_line("x", done, total, 1.0)


def test_progress_writes_one_line_per_item():
    written = []
    progress = Progress(3, "series", written.append, clock=_Clock(0.0, 60.0, 240.0))
    progress.done("AAPL")
    progress.done()
    assert written == [
        "series 1/3 (AAPL): 1 done, 2 left, about 2 min left",
        "series 2/3: 2 done, 1 left, about 2 min left",
    ]


@pytest.mark.slow
def test_train_into_a_file_writes_one_plain_line_per_epoch(tmp_path):
    csv = write_csv(tmp_path / "W.csv", make_prices())
    flags = [f for f in TINY_FLAGS if f != "--quiet"]
    done = subprocess.run(
        [sys.executable, "train.py", "--csv", csv, "--out", str(tmp_path / "b")]
        + flags,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    epochs = [line for line in done.stdout.splitlines() if line.startswith("epoch")]
    pattern = r"epoch [12]/2  loss \S+  val_loss \S+  \d+\.\d s"
    assert len(epochs) == 2 and all(re.fullmatch(pattern, e) for e in epochs)
    assert "\x1b" not in done.stdout and "\r" not in done.stdout
    assert "━" not in done.stdout


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_resume_logs_what_it_found(tmp_path, caplog):
    from forecaster.prep.windows import prepare
    from forecaster.train.fit import fit_model

    settings = tiny_settings(train__patience=0)
    prepared = prepare(make_prices(), settings.prep)
    fit_model(prepared, settings, checkpoint_dir=tmp_path / "ckpt")
    settings.train.epochs = 3
    with caplog.at_level(logging.INFO, logger="forecaster"):
        result = fit_model(prepared, settings, tmp_path / "ckpt", resume=True)
    assert result.resumed_from == 2 and len(result.history) == 3
    assert re.search(
        r"--resume: found 2 finished epochs in .*ckpt' \(best val_loss \S+ at epoch "
        r"[12], [01] epochs without improvement\); resuming at epoch 3 of 3",
        caplog.text,
    )
