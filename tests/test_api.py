"""The Python API: Forecaster's fit/evaluate/forecast/plot/save, load, read_prices."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, write_csv

import forecaster as fc
from forecaster.errors import BundleError, ForecasterError

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(window=10, units=4, layers=2, epochs=2, batch_size=32, verbose=0)


@pytest.fixture(scope="module")
def fitted():
    return fc.Forecaster(**TINY).fit(make_prices())


def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_import_loads_no_tensorflow():
    done = run_python(
        """
        import sys
        import forecaster as fc
        fc.Forecaster(cell="gru")
        print(sorted(m for m in ("tensorflow", "keras", "sklearn") if m in sys.modules))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_unknown_keyword_lists_the_valid_ones():
    with pytest.raises(ForecasterError, match=r"Unknown keyword argument\(s\) cels: "):
        fc.Forecaster(cels="gru")
    with pytest.raises(ForecasterError, match=r"valid ones are .*cell, .*window"):
        fc.Forecaster(cels="gru")


def test_keywords_are_validated_with_argument_names():
    with pytest.raises(ForecasterError, match=r"^window must be at least 1\. "):
        fc.Forecaster(window=0)
    with pytest.raises(ForecasterError, match=r"Unknown cell 'cnn'"):
        fc.Forecaster(cell="cnn")


def test_keywords_map_onto_the_settings():
    model = fc.Forecaster(cell="gru", window=60, epochs=3, learning_rate=0.01)
    s = model.settings
    assert (s.model.cell, s.prep.window, s.train.epochs) == ("gru", 60, 3)
    assert s.model.learning_rate == 0.01
    assert model.get_params(changed_only=True) == {
        "window": 60,
        "cell": "gru",
        "learning_rate": 0.01,
        "epochs": 3,
    }
    assert repr(model).endswith("# not fitted")


def test_fit_sets_the_learned_state(fitted):
    assert fitted.scaler_.data_min_ is not None
    assert list(fitted.history_.columns) == ["epoch", "loss", "val_loss"]
    assert len(fitted.history_) == 2
    assert fitted.metrics_["test_days"] > 0
    assert set(fitted.intervals_) == {"recursive"}
    n_train = fitted.metadata_["rows"]["train"]
    # log-delta (the default) scales log prices
    expected = np.log(make_prices()[:n_train].max())
    assert fitted.scaler_.data_max_ == pytest.approx(expected)


def test_evaluate_is_the_table_beside_naive(fitted):
    table = fitted.evaluate()
    assert list(table.index) == ["rmse", "mae", "mape", "directional_accuracy"]
    assert list(table.columns) == ["model", "naive", "model/naive"]
    m, n = fitted.metrics_["model"]["rmse"], fitted.metrics_["naive"]["rmse"]
    assert table.loc["rmse", "model"] == m and table.loc["rmse", "naive"] == n
    assert table.loc["rmse", "model/naive"] == pytest.approx(m / n)


def test_forecast_dates_and_bands(fitted):
    frame = fitted.forecast(5)
    assert list(frame.columns) == [
        "date",
        "forecast",
        "median",  # the default Student-t head's own distribution
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    ]
    assert len(frame) == 5
    assert pd.Timestamp(frame["date"].iloc[0]) > make_prices().index[-1]
    assert (frame["lower_95"] < frame["lower_80"]).all()
    assert (frame["upper_80"] < frame["upper_95"]).all()


def test_forecast_from_newer_prices(fitted):
    longer = make_prices(n=300)
    frame = fitted.forecast(3, prices=longer)
    assert pd.Timestamp(frame["date"].iloc[0]) > longer.index[-1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [1.0, 2.0, 3.0],
            r"prices must be a pandas Series .* Received: prices of type "
            r"list\.",
        ),
        (
            "data/AAPL.csv",
            r"Received: prices of type str\. To read a file or a ticker, "
            r"call forecaster\.read_prices\(path\) first\.",
        ),
        (
            pd.DataFrame({"Close": [1.0, 2.0]}, index=["a", "b"]),
            r"prices must have dates: .* Received: an index of Index",
        ),
        (
            pd.DataFrame(
                {"Open": [1.0, 2.0]}, index=pd.bdate_range("2020-01-01", periods=2)
            ),
            r"No price column in the frame: found columns \['Open'\]",
        ),
    ],
)
def test_fit_refuses_what_it_cannot_read(data, message):
    with pytest.raises(ForecasterError, match=message):
        fc.Forecaster(**TINY).fit(data)


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_nan_and_non_positive_prices_get_the_csv_messages(caplog):
    prices = make_prices()
    prices.iloc[5] = -1.0
    with pytest.raises(
        ForecasterError,
        match=r"^Prices must be positive and finite: "
        r"-1\.0 on 2020-01-08 in the prices passed in \('Close'\)",
    ):
        fc.Forecaster(**TINY).fit(prices)
    with_gap = make_prices()
    with_gap.iloc[5] = np.nan
    model = fc.Forecaster(**TINY).fit(with_gap)
    assert any("dropped 1 row(s) with no price" in n for n in model.notes_)


@pytest.mark.slow
def test_fit_takes_an_ohlcv_frame_with_a_date_column_and_a_dict(tmp_path):
    prices = make_prices()
    csv = write_csv(tmp_path / "WALK.csv", prices)
    frame = pd.read_csv(csv)  # Date as a column, Adj Close among OHLCV
    model = fc.Forecaster(**TINY).fit(frame)
    assert model.metadata_["column"] == "Adj Close"
    by_dict = fc.Forecaster(**TINY).fit({"WALK": prices})
    assert by_dict.name == "WALK"


@pytest.mark.parametrize("call", ["forecast", "save", "evaluate", "plot"])
def test_use_before_fit_is_refused(call, tmp_path):
    model = fc.Forecaster()
    args = (tmp_path / "x",) if call == "save" else ()
    with pytest.raises(
        ForecasterError,
        match=rf"not fitted yet: call fit\(prices\) "
        rf"before {call}\(\)",
    ):
        getattr(model, call)(*args)


def test_plots_take_an_axes_and_write_only_when_asked(fitted, tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert fitted.plot("loss", ax=ax) is fig
    before = set(tmp_path.iterdir())
    own = fitted.plot("forecast", days=5)
    assert isinstance(own, Figure) and own is not fig
    assert set(tmp_path.iterdir()) == before  # nothing written
    fitted.plot("test", path=tmp_path / "test.png")
    assert (tmp_path / "test.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ForecasterError, match=r"kind must be one of forecast, test"):
        fitted.plot("candles")


def test_save_load_round_trip_without_source(fitted, tmp_path):
    path = fitted.save(tmp_path / "bundle")
    with pytest.raises(ForecasterError, match=r"already exists: pass force=True"):
        fitted.save(path)
    loaded = fc.load(path)
    assert repr(loaded).endswith("# fitted")
    expected = fitted.forecast(7)
    got = loaded.forecast(7)
    assert (got["date"] == expected["date"]).all()
    np.testing.assert_allclose(got["forecast"], expected["forecast"], rtol=1e-5)
    np.testing.assert_allclose(got["upper_95"], expected["upper_95"], rtol=1e-5)
    pd.testing.assert_frame_equal(loaded.evaluate(), fitted.evaluate())


def test_loaded_model_forecasts_without_tensorflow(fitted, tmp_path):
    path = fitted.save(tmp_path / "bundle")
    done = run_python(
        f"""
        import sys
        import forecaster as fc
        frame = fc.load({str(path)!r}).forecast(4)
        print(len(frame), "tensorflow" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "False"]


def test_load_of_a_non_bundle_is_the_predict_message(tmp_path):
    with pytest.raises(BundleError, match=r"^No bundle at .*: it is not a directory"):
        fc.load(tmp_path / "missing")


def test_read_prices_csv_keeps_its_source():
    series = fc.read_prices(ROOT / "data" / "AAPL.csv")
    assert series.name == "Adj Close" and len(series) == 3270
    assert series.attrs["source"]["kind"] == "csv"
    model = fc.Forecaster(**TINY)
    assert model.settings.data.csv is None  # data settings are not model keywords


@pytest.mark.slow
def test_backtest_scores_folds_beside_naive(fitted):
    table = fitted.backtest(2)
    assert list(table["fold"]) == [1, 2, "mean"]
    assert (table["naive_rmse"].iloc[:2] > 0).all()
    with pytest.raises(ForecasterError, match=r"^folds must be at least 1"):
        fitted.backtest(0)


class _EngineChosen(Exception):
    """Raised by the patched engine builder: the choice is all these tests need."""


@pytest.mark.parametrize(
    "days, jit_compile, chosen",
    [
        (260, None, False),  # 65 test days: XLA's compile costs more than it saves
        (8100, None, True),  # 2,025 test days: it may repay its compile
        (260, True, True),  # an explicit choice overrides
        (8100, False, False),
    ],
)
def test_the_test_day_evaluation_uses_xla_only_over_a_long_test_part(
    monkeypatch, days, jit_compile, chosen
):
    from types import SimpleNamespace

    from forecaster.data.frames import panel_from_pandas
    from forecaster.prep.panel import prepare_panel

    built = []

    def record(self, model, jit_compile):
        built.append(jit_compile)
        raise _EngineChosen

    monkeypatch.setattr(fc.Forecaster, "_keras_engine", record)
    model = fc.Forecaster(**TINY)
    panel = panel_from_pandas(make_prices(days))
    prepared = prepare_panel(panel, model.settings.prep)
    with pytest.raises(_EngineChosen):
        model.adopt(panel, prepared, SimpleNamespace(model=None), True, jit_compile)
    assert built == [chosen]
