"""A direction model end to end: train.py's bundle, its scores, predict.py, refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, tiny_settings, write_csv

import forecaster as fc
import predict
from forecaster.cli import main as cli
from forecaster.errors import ForecasterError
from forecaster.evaluate.backtest import walk_forward
from forecaster.store import listing
from forecaster.workflows.runs import default_out, run_forecast, run_training

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_FILES = {
    "history.csv",
    "loss.png",
    "manifest.json",
    "metadata.json",
    "metrics.json",
    "model.keras",
    "recent_prices.csv",
    "reliability.png",
    "report.html",
    "scaler.json",
    "test_predictions.csv",
}


def unmoved_prices() -> pd.Series:
    """A generated walk in which every 7th day repeats the price before it."""
    prices = make_prices(300, seed=3)
    values = prices.to_numpy().copy()
    for day in range(6, len(values), 7):
        values[day] = values[day - 1]
    return pd.Series(values, index=prices.index, name=prices.name)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny direction model trained through run_training, as train.py does."""
    root = tmp_path_factory.mktemp("direction")
    prices = unmoved_prices()
    csv = write_csv(root / "WALK.csv", prices)
    settings = tiny_settings(csv, model__objective="direction", train__epochs=1)
    report = run_training(settings, out=root / "bundle")
    return report, prices


def test_the_bundle_holds_p_up_files_and_no_price_plots(run):
    report, _ = run
    assert {p.name for p in report.out.iterdir()} == BUNDLE_FILES
    assert (report.out / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_metrics_are_strict_json_with_the_direction_scores(run):
    report, _ = run

    def refuse(name):
        raise AssertionError(f"metrics.json holds {name}")

    text = (report.out / "metrics.json").read_text()
    metrics = json.loads(text, parse_constant=refuse)
    scores = metrics["direction"]
    for key in ("brier", "brier_base_rate", "log_loss", "accuracy", "dm_p_value"):
        assert isinstance(scores[key], float)
    assert scores["brier_difference_lower"] <= scores["brier_difference_upper"]
    assert scores["days"] + scores["unmoved_days"] == metrics["test_days"]
    assert scores["unmoved_days"] > 0
    assert sum(row["count"] for row in metrics["reliability"]) == scores["days"]
    assert "model" not in metrics and "rmse_by_step" not in metrics


def test_the_base_rate_is_the_up_share_of_moved_training_days(run):
    report, prices = run
    n_train = int(len(prices) * 0.75)
    moves = np.diff(prices.to_numpy()[:n_train])
    expected = np.sum(moves > 0) / np.sum(moves != 0)
    whole = np.diff(prices.to_numpy())
    assert report.metrics["direction"]["base_rate"] == pytest.approx(expected, 1e-12)
    assert expected != pytest.approx(np.sum(whole > 0) / np.sum(whole != 0))


def test_test_predictions_give_p_up_and_leave_unmoved_days_unlabelled(run):
    report, _ = run
    frame = pd.read_csv(report.out / "test_predictions.csv")
    assert list(frame.columns) == ["date", "actual", "previous", "p_up", "up"]
    assert len(frame) == report.metrics["test_days"]
    assert frame["p_up"].between(0, 1).all()
    unmoved = frame["actual"] == frame["previous"]
    assert frame["up"].isna().equals(unmoved)
    moved = frame[~unmoved]
    assert (moved["up"] == (moved["actual"] > moved["previous"])).all()


def test_train_prints_the_direction_table_not_rmse(run):
    text = run[0].summary()
    assert "Brier" in text and "base rate" in text and "P(up) bin" in text
    assert "RMSE" not in text and "band covers" not in text


def test_predict_writes_the_next_p_up_with_the_numpy_engine(run, tmp_path, capsys):
    bundle = run[0].out
    assert cli.run(predict.main, ["--model", str(bundle)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("P(up) on ") and line.endswith("; numpy engine)")
    frame = pd.read_csv(bundle / "forecast.csv")
    assert list(frame.columns) == ["date", "p_up"] and len(frame) == 1
    assert 0 <= frame["p_up"].iloc[0] <= 1
    assert not (bundle / "forecast.png").exists()
    keras = run_forecast(str(bundle), engine="keras", out=str(tmp_path))
    assert keras.frame["p_up"].iloc[0] == pytest.approx(frame["p_up"].iloc[0], 1e-5)
    assert "P(up) beside the base rate" in (bundle / "report.html").read_text()


def test_a_loaded_direction_model_through_the_api(run):
    model = fc.load(run[0].out)
    table = model.evaluate()
    assert list(table.index) == ["brier", "log_loss", "accuracy"]
    assert table.loc["brier", "model"] == model.metrics_["direction"]["brier"]
    assert list(model.forecast(10).columns) == ["date", "p_up"]
    assert model.plot("reliability") is not None
    with pytest.raises(ForecasterError, match=r"forecasts P\(up\), not prices"):
        model.plot("test")


def test_forecaster_list_shows_the_brier_ratio(run):
    frame = listing.list_bundles(run[0].out.parent)
    row = frame.iloc[0]
    assert row["cell"] == "lstm P(up)" and row["status"] == "ok"
    assert row["test_ratio"] == run[0].metrics["direction"]["brier_ratio"]


def test_the_default_bundle_of_a_direction_model_ends_in_up():
    settings = tiny_settings(None, model__objective="direction")
    assert default_out(settings) == Path("models/AAPL-lstm-up")


# ----------------------------------------------------------------- refusals


def test_student_t_direction_is_one_line_and_exit_2_from_the_script(tmp_path):
    csv = write_csv(tmp_path / "WALK.csv", make_prices())
    out = tmp_path / "bundle"
    done = subprocess.run(
        [sys.executable, "train.py", "--csv", csv, "--out", str(out)]
        + ["--objective", "direction", "--loss", "student-t"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --objective='direction' trains its own head (P(up), binary "
        "cross-entropy): leave loss unset. Received: loss='student-t'"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "keywords, message",
    [
        (
            {"representation": "level"},
            r"representation='level' gives it price levels: use delta or log-delta",
        ),
        (
            {"features": "close,volume"},
            r"one series of closing prices: .* Received: features='close,volume'$",
        ),
    ],
)
def test_direction_settings_that_cannot_work_are_refused(keywords, message):
    with pytest.raises(ForecasterError, match=message):
        fc.Forecaster(objective="direction", **keywords)


def test_a_panel_and_a_backtest_are_refused_before_training():
    prices = make_prices()
    model = fc.Forecaster(objective="direction")
    with pytest.raises(ForecasterError, match=r"Received: prices holding several"):
        model.fit({"A": prices, "B": prices})
    with pytest.raises(ForecasterError, match=r"^backtest scores price forecasts"):
        walk_forward(prices, model.settings, 2)
