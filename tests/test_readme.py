"""The README's shown outputs still match what its commands print.

The README shows the output of `python train.py`, `python predict.py` and
`forecaster list`. These tests run the same commands on the shipped sample
(a tiny model, three epochs, in a temporary directory) and compare what will
not change with the numbers: each line's label. A line's label is its first
column when it is a table row (cells set apart by two or more spaces), else
the line up to its first ": ", with every number replaced by "#". The README's
labels must appear in the output in the same order; rows the output has and
the README does not show (a new baseline row, say) are allowed, so a README
line whose row was renamed, moved or dropped is what fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?", re.IGNORECASE)
TINY = ["--window", "10", "--units", "4", "--layers", "1", "--epochs", "3"]


def label(line: str) -> str:
    """What of a shown line survives new numbers and new columns (see above)."""
    text = NUMBER.sub("#", line.strip())
    first = re.split(r"\s{2,}", text)[0]
    return first.split(": ", 1)[0].strip()


def labels(lines: list[str]) -> list[str]:
    """The labels of an output, less elisions ("...") and blank lines."""
    return [label(line) for line in lines if line.strip() not in ("", "...")]


def shown_output(command: str) -> list[str]:
    """The lines the README shows after `$ COMMAND`, up to the next `$ ` line."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), re.M | re.S)
    for block in blocks:
        lines = block.splitlines()
        if f"$ {command}" in lines:
            start = lines.index(f"$ {command}") + 1
            rest = lines[start:]
            end = next((i for i, x in enumerate(rest) if x.startswith("$ ")), None)
            return rest[:end]
    raise AssertionError(f"the README shows no output of {command!r}")


def in_order(wanted: list[str], found: list[str]) -> list[str]:
    """The wanted labels not found in `found` in the same order (empty: all are)."""
    remaining = iter(found)
    return [item for item in wanted if item not in remaining]


def run(args: list[str], cwd: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """train.py, predict.py and `forecaster list` as the README runs them, tiny."""
    where = tmp_path_factory.mktemp("readme")
    (where / "data").mkdir()
    for name in ("AAPL.csv",):
        (where / "data" / name).write_bytes((ROOT / "data" / name).read_bytes())
    return {
        "python train.py": run([str(ROOT / "train.py"), *TINY], where),
        "python predict.py": run([str(ROOT / "predict.py")], where),
        "forecaster list --sort test_ratio": run(
            ["-m", "forecaster", "list", "--sort", "test_ratio"], where
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize("command", ["python train.py", "python predict.py"])
def test_the_readme_shows_what_the_command_prints(sample_run, command):
    shown = labels(shown_output(command))
    printed = labels(sample_run[command])
    assert len(shown) >= 3
    assert in_order(shown, printed) == [], "\n".join(printed)


@pytest.mark.slow
def test_the_readme_shows_the_columns_forecaster_list_prints(sample_run):
    """Its rows are the README author's bundles; its header is the command's."""
    [header, *_] = shown_output("forecaster list --sort test_ratio")
    printed = sample_run["forecaster list --sort test_ratio"]
    assert header.split() == printed[0].split()


def test_the_headline_lines_are_compared():
    """The labels that these tests compare, as the README shows them."""
    shown = labels(shown_output("python train.py"))
    for headline in (
        "epoch #/#",
        "test",
        "RMSE",
        "Direction",
        "(naive = tomorrow's price is today's; its direction = always up)",
        "RMSE by step",
        "prediction intervals on the test days (one step ahead)",
        "one-step forecast distribution on the test days (lower is better; cov = "
        "share inside the # / # interval)",
        "CRPS",
        "model",
        "GARCH-t",
        "DM point vs naive squared error",
        "next",
    ):
        assert headline in shown
    assert labels(shown_output("python predict.py"))[:2] == [
        "#-day recursive forecast after ### (numpy engine):",
        "date",
    ]
    assert in_order(["b", "a"], ["a", "b"]) == ["a"]  # order matters
