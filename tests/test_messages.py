"""The advice of whole runs, in both faces: arguments from Python, flags on the CLI.

A run called from Python says "pass force=True" and "choose another out
path"; the same run from train.py says "add --force" and "choose another
--out" (forecaster.cli.flags.as_flags, applied to errors and log lines).
"""

import logging
import re

import pytest
from conftest import make_prices, tiny_settings

import train
from forecaster.cli import main as cli
from forecaster.cli.flags import as_flags
from forecaster.errors import ForecasterError
from forecaster.io import write_directory_atomically
from forecaster.workflows import runs

FLAG = re.compile(r"(?<![\w-])--[a-z]")  # a command-line flag in a message


def _library_message(call) -> str:
    with pytest.raises(ForecasterError) as caught:
        call()
    return str(caught.value)


def _full(directory):
    directory.mkdir(parents=True)
    (directory / "file.txt").write_text("kept")
    return directory


def test_an_existing_bundle_in_both_faces(prices_csv, tmp_path, capsys):
    out = _full(tmp_path / "bundle")
    library = _library_message(
        lambda: runs.run_training(tiny_settings(prices_csv), out=out)
    )
    assert "already exists: pass force=True to replace it" in library
    assert library.endswith("or choose another out path.")
    assert not FLAG.search(library)
    args = ["--csv", prices_csv, "--out", str(out), "--quiet"]
    assert cli.run(train.main, args) == 2
    shown = capsys.readouterr().err.strip().splitlines()[-1]
    assert "already exists: add --force to replace it" in shown
    assert shown.endswith("or choose another --out.")
    assert "=True" not in shown and "out path" not in shown


def test_an_existing_directory_in_both_faces(tmp_path):
    out = _full(tmp_path / "made")
    library = _library_message(
        lambda: write_directory_atomically(out, lambda tmp: None, what="backtest")
    )
    assert "pass force=True" in library and not FLAG.search(library)
    assert "add --force" in as_flags(library)
    assert as_flags(library).endswith("or choose another --out.")


def test_an_existing_fan_out_in_both_faces(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install .[ray]")
    from forecaster.distributed.fanout import train_per_series

    out = _full(tmp_path / "many")
    library = _library_message(
        lambda: train_per_series([("AAA", make_prices())], tiny_settings(), out)
    )
    assert "pass resume=True to skip the series already trained there" in library
    assert "force=True to retrain them all" in library
    assert not FLAG.search(library)
    assert as_flags(library).endswith(
        "add --resume to skip the series already trained there, --force to retrain "
        "them all, or choose another --out."
    )


def test_an_existing_search_in_both_faces(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install .[ray]")
    from forecaster.distributed.tune import run_search

    out = _full(tmp_path / "search")
    library = _library_message(
        lambda: run_search(make_prices(), tiny_settings(), out, trials=1)
    )
    assert "pass resume=True to continue its search, force=True" in library
    assert not FLAG.search(library)
    assert as_flags(library).endswith(
        "add --resume to continue its search, --force to start a new one there, or "
        "choose another --out."
    )


def test_asking_for_prices_in_both_faces():
    assert not FLAG.search(runs.PASS_DATA)
    assert as_flags(runs.PASS_DATA) == "pass --csv or --ticker"


@pytest.mark.slow
def test_a_replaced_checkpoint_warns_in_both_faces(prices_csv, tmp_path, caplog):
    out = tmp_path / "bundle"
    settings = tiny_settings(prices_csv, train__epochs=1)

    def warnings() -> list[str]:
        return [
            r.getMessage() for r in caplog.records if "checkpoint at" in r.getMessage()
        ]

    _full(runs.checkpoint_dir_for(out))
    with caplog.at_level(logging.INFO, logger="forecaster"):
        runs.run_training(settings, out=out)
    [library] = warnings()
    assert "pass resume=True to continue a killed run instead" in library
    assert not FLAG.search(library)

    caplog.clear()
    _full(runs.checkpoint_dir_for(out))
    args = ["--csv", prices_csv, "--out", str(out), "--force", "--epochs", "1"]
    args += ["--window", "10", "--units", "4", "--layers", "2", "--quiet"]
    with caplog.at_level(logging.INFO, logger="forecaster"):
        assert cli.run(train.main, args) == 0
    [shown] = warnings()
    assert "use --resume to continue" not in shown  # the old wording
    assert "add --resume to continue a killed run instead" in shown
    assert "=True" not in shown
    # the CLI's translation ends with its run: the library speaks Python again
    assert logging.getLogger("forecaster").filters == []
