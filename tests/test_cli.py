"""The command line: parsers from the settings dataclasses, subcommands, flag names."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forecaster.cli import flags as cli_flags
from forecaster.cli import main as cli
from forecaster.config import (
    DataSettings,
    ForecastSettings,
    ModelSettings,
    PrepSettings,
    TrainSettings,
)

ROOT = Path(__file__).resolve().parent.parent


def flags_of(parser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


@pytest.mark.parametrize(
    "cls", [DataSettings, PrepSettings, ModelSettings, TrainSettings]
)
def test_every_training_setting_has_a_flag_with_help(cls):
    parser = cli.train_parser("test")
    helps = {a.dest: a.help for a in parser._actions if a.option_strings and a.help}
    for field in dataclasses.fields(cls):
        if field.name in cli_flags.NOT_FLAGS:
            continue
        flag = "--" + cli_flags.FLAG_NAMES.get(field.name, field.name).replace("_", "-")
        assert flag in flags_of(parser), flag
        assert len(helps[field.name]) > 10, field.name  # the field's comment


def test_help_texts_come_from_the_comments():
    comments = cli_flags.field_comments(PrepSettings)
    assert comments["window"] == "input steps per window"
    # a comment continued on "#   " lines is joined
    assert comments["representation"].endswith("(BENCHMARKS.md)")
    assert cli_flags.field_comments(ForecastSettings)["method"].endswith(
        "(direct when it was trained with --horizon > 1)"
    )


def test_defaults_and_types_come_from_the_dataclasses():
    args = cli.train_parser("test").parse_args(["--units", "8", "--bidirectional"])
    settings = cli.train_settings(args)
    assert settings.model.units == 8 and settings.model.bidirectional is True
    assert settings.prep.window == PrepSettings().window
    assert settings.train.verbose == 1
    quiet = cli.train_settings(cli.train_parser("t").parse_args(["--quiet"]))
    assert quiet.train.verbose == 0


def test_predict_flags():
    flags = flags_of(cli.predict_parser("test"))
    assert {"--model", "--days", "--method", "--horizon", "--engine", "--out"} <= flags
    assert {"--csv", "--ticker", "--column"} <= flags
    assert "--start" not in flags


def test_library_argument_names_become_flags():
    cli.train_parser("test")
    cli.predict_parser("test")
    assert cli_flags.as_flags("days must be at least 1. Received: days=0") == (
        "--days must be at least 1. Received: days=0"
    )
    assert cli_flags.as_flags("cell is odd").startswith("--model is odd")
    assert cli_flags.as_flags("batch_size must be").startswith("--batch-size must be")
    assert cli_flags.as_flags("Unknown cell 'x'") == "Unknown cell 'x'"


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "forecaster", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_version_and_subcommands():
    from forecaster.version import __version__

    done = run_module("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"forecaster {__version__}"
    done = run_module("--help")
    assert done.returncode == 0
    for command in ("train", "predict", "backtest"):
        assert command in done.stdout
    for command in ("train", "predict", "backtest"):
        helped = run_module(command, "--help")
        assert helped.returncode == 0 and "--help" in helped.stdout


def test_module_errors_are_one_line_with_the_flag(tmp_path):
    done = run_module("predict", "--days", "0", "--model", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == "error: --days must be at least 1. Received: days=0\n"
