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
from forecaster.cli import main as cli
from forecaster.io import recover

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


@pytest.mark.slow
def test_ticker_path_through_the_scripts(tmp_path, monkeypatch, capsys):
    import yfinance

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(yfinance, "download", _fake_download(make_prices(seed=4)))
    assert cli.run(train.main, ["--ticker", "msft", *TINY_FLAGS]) == 0
    assert (tmp_path / "models/MSFT-lstm/model.keras").exists()
    assert (tmp_path / "data/cache/MSFT.csv").exists()
    assert cli.run(predict.main, ["--model", "models/MSFT-lstm", "--days", "3"]) == 0
    assert "wrote models/MSFT-lstm/forecast.csv" in capsys.readouterr().out


@pytest.mark.slow
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
    checkpoint = out.with_name(".bundle.resume")
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if _epochs_done(checkpoint) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never checkpointed 3 epochs")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The checkpoint is swapped in by an atomic exchange, so it is never missing;
    # where the OS lacks one, the next command restores it (done here by hand).
    recover(checkpoint, "checkpoint")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    state = checkpoint / "state.json"
    done_epochs = json.loads(state.read_text())["epochs_done"]
    resumed = _run("train.py", *flags, "--epochs", str(done_epochs + 2), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["resumed_from_epoch"] == done_epochs
    assert meta["training"]["epochs_run"] == done_epochs + 2
    assert not state.parent.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["W.csv", "bundle"]


def _epochs_done(checkpoint: Path) -> int:
    """Epochs in the checkpoint; 0 before the first (never a half-written one)."""
    try:
        return json.loads((checkpoint / "state.json").read_text())["epochs_done"]
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_eight_forecasts_from_one_bundle_at_once(bundle_copy, tmp_path):
    before = {p.name: p.read_bytes() for p in bundle_copy.iterdir()}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outs = [tmp_path / f"out{k}" for k in range(8)]
    procs = [
        subprocess.Popen(
            [sys.executable, "predict.py", "--model", str(bundle_copy)]
            + ["--days", "5", "--engine", "numpy", "--out", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, errors
    files = [{p.name: p.read_bytes() for p in out.iterdir()} for out in outs]
    assert {"forecast.csv", "forecast.png"} <= set(files[0])
    assert all(f == files[0] for f in files[1:])  # report.html too, where written
    assert len(pd.read_csv(outs[0] / "forecast.csv")) == 5
    assert {p.name: p.read_bytes() for p in bundle_copy.iterdir()} == before


@pytest.mark.slow
def test_decimal_comma_csv_through_both_scripts(tmp_path, capsys):
    prices = make_prices(seed=8)
    lines = ["Datum;Schluss"] + [
        f"{day:%d.%m.%Y};" + f"{value:.2f}".replace(".", ",")
        for day, value in prices.items()
    ]
    csv = tmp_path / "kurse.csv"
    csv.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    out = str(tmp_path / "b")
    args = ["--csv", str(csv), "--out", out, *TINY_FLAGS]
    assert cli.run(train.main, [*args, "--column", "Schluss"]) == 2
    assert "pass --decimal , to read it" in capsys.readouterr().err
    assert cli.run(train.main, [*args, "--decimal", ","]) == 0
    meta = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert meta["source"]["decimal"] == "," and meta["column"] == "Schluss"
    assert cli.run(predict.main, ["--model", out, "--days", "3"]) == 0
    assert len(pd.read_csv(tmp_path / "b" / "forecast.csv")) == 3
