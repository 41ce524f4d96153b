"""End to end through train.py and predict.py: errors, kill -9 and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_FLAGS, make_prices, write_csv

import predict
import train
from forecaster import cli

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_train_then_predict_through_the_scripts(tmp_path, prices_csv):
    out = tmp_path / "bundle"
    done = _run("train.py", "--csv", prices_csv, "--out", str(out), *TINY_FLAGS)
    assert done.returncode == 0, done.stderr
    assert "RMSE" in done.stdout and "naive" in done.stdout
    assert "80% band covers" in done.stdout and "RMSE by step" in done.stdout
    code = (
        "import sys, predict; rc = predict.main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; "
        "sys.exit(rc)"
    )
    done = _run("-c", code, "--model", str(out), "--days", "7")
    assert done.returncode == 0, done.stderr
    assert "numpy engine" in done.stdout
    frame = pd.read_csv(out / "forecast.csv")
    assert len(frame) == 7 and frame["forecast"].notna().all()
    assert (out / "forecast.png").stat().st_size > 10_000
    numpy_forecast = frame["forecast"].to_numpy()
    done = _run(
        "predict.py",
        "--model",
        str(out),
        "--days",
        "7",
        "--engine",
        "keras",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    keras_forecast = pd.read_csv(tmp_path / "forecast.csv")["forecast"].to_numpy()
    np.testing.assert_allclose(numpy_forecast, keras_forecast, rtol=1e-5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--window", "0"], "window must be at least 1. Received: window=0"),
        (["--train-fraction", "1.5"], "train_fraction=1.5"),
        (["--model", "cnn"], "Unknown cell 'cnn': choose one of lstm, gru, rnn"),
        (["--csv", "no/such/file.csv"], "CSV file not found: 'no/such/file.csv'"),
        (["--window", "300"], "need at least"),
    ],
)
def test_bad_train_flags_are_one_line_errors(
    flags, message, capsys, prices_csv, tmp_path
):
    args = ["--csv", prices_csv, "--out", str(tmp_path / "b"), *TINY_FLAGS, *flags]
    assert cli.run(train.main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--days", "-3"], "days=-3"),
        (["--model", "nowhere"], "No bundle at 'nowhere'"),
    ],
)
def test_bad_predict_flags_are_one_line_errors(flags, message, capsys):
    assert cli.run(predict.main, flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_error_exit_code_and_no_traceback_in_a_real_process(tmp_path):
    done = _run("predict.py", "--model", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _fake_download(prices):
    def download(tickers, start=None, end=None, **kwargs):
        frame = pd.DataFrame(
            {
                "Close": prices,
                "High": prices,
                "Low": prices,
                "Open": prices,
                "Volume": 1,
            },
            index=prices.index,
        )
        frame.index.name = "Date"
        frame.columns = pd.MultiIndex.from_product(
            [frame.columns, [tickers]], names=["Price", "Ticker"]
        )
        return frame

    return download


def test_ticker_path_through_the_scripts(tmp_path, monkeypatch, capsys):
    import yfinance

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(yfinance, "download", _fake_download(make_prices(seed=4)))
    assert cli.run(train.main, ["--ticker", "msft", *TINY_FLAGS]) == 0
    assert (tmp_path / "models/MSFT-lstm/model.keras").exists()
    assert (tmp_path / "data/cache/MSFT.csv").exists()
    assert cli.run(predict.main, ["--model", "models/MSFT-lstm", "--days", "3"]) == 0
    assert "wrote models/MSFT-lstm/forecast.csv" in capsys.readouterr().out


def test_kill_9_mid_training_then_resume(tmp_path):
    csv = write_csv(tmp_path / "W.csv", make_prices(seed=6))
    out = tmp_path / "bundle"
    flags = [
        "--csv",
        csv,
        "--out",
        str(out),
        "--window",
        "10",
        "--units",
        "4",
        "--layers",
        "1",
        "--batch-size",
        "32",
        "--patience",
        "0",
        "--quiet",
    ]
    first = _run("train.py", *flags, "--epochs", "2")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "train.py", *flags, "--epochs", "100000", "--force"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = out.with_name(".bundle.resume") / "state.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if state.exists() and json.loads(state.read_text())["epochs_done"] >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never checkpointed 3 epochs")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    done_epochs = json.loads(state.read_text())["epochs_done"]
    resumed = _run("train.py", *flags, "--epochs", str(done_epochs + 2), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["resumed_from_epoch"] == done_epochs
    assert meta["training"]["epochs_run"] == done_epochs + 2
    assert not state.parent.exists()
