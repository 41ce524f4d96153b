"""Forecast distributions: sample paths, head quantiles, bands and the fan chart."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, tiny_settings, write_csv
from scipy import special, stats

import predict
from forecaster.cli import main as cli
from forecaster.config import PrepSettings
from forecaster.errors import ForecasterError
from forecaster.evaluate.intervals import RESIDUAL_SCALE, scale_of
from forecaster.forecast.future import BAND_LEVELS, forecast_future
from forecaster.model.engines import Engine, NumpyEngine
from forecaster.model.heads import QUANTILES, HeadSpec, quantile_function
from forecaster.model.keras_engine import KerasEngine, load_keras_model
from forecaster.prep.panel import context_part
from forecaster.prep.windows import Scaler, prepare
from forecaster.report.plots import plot_forecast
from forecaster.store.bundle import load_bundle
from forecaster.workflows import runs as pipeline

WINDOW = 10
PRICES = 160  # days of the trained model's series: short, to train fast
FRAME_COLUMNS = ["date", "forecast", "median", *list(BAND_LEVELS)[1:]]


class FixedHead(Engine):
    """An engine whose head gives the same parameters for every window and step.

    `params` (n_params,) or (horizon, n_params): each step's location, scale
    (and df), or its quantiles, in the "delta" representation's units.
    """

    def __init__(self, kind: str, params, horizon: int = 1, quantiles=()):
        super().__init__("delta", WINDOW, horizon)
        self.head = HeadSpec(kind, horizon, 1.0, tuple(quantiles))
        params = np.asarray(params, dtype=np.float64)
        self.params = np.broadcast_to(params, (horizon, params.shape[-1]))

    def _call(self, inputs):
        outputs = np.broadcast_to(self.params, (len(inputs), *self.params.shape))
        return outputs[..., 0] if self.head.kind == "mse" else outputs


def _nested(frame) -> bool:
    order = ["lower_95", "lower_80", "median", "upper_80", "upper_95"]
    return all(
        (frame[a] <= frame[b]).all() for a, b in zip(order, order[1:], strict=False)
    )


def _contexts(rows: int = 2) -> np.ndarray:
    return np.linspace(0.3, 0.6, rows * WINDOW).reshape(rows, WINDOW)


# ------------------------------------------------------------- sample paths


def test_sample_paths_repeat_for_a_seed_and_differ_for_another():
    engine = FixedHead("normal", [0.01, 0.02])
    paths = engine.sample_paths(_contexts(), steps=4, samples=50, seed=7)
    assert paths.shape == (2, 50, 4)
    again = engine.sample_paths(_contexts(), steps=4, samples=50, seed=7)
    np.testing.assert_array_equal(paths, again)
    other = engine.sample_paths(_contexts(), steps=4, samples=50, seed=8)
    assert not np.allclose(paths, other)


@pytest.mark.parametrize(
    "kind, params, standard",
    [
        ("normal", [0.01, 0.02], special.ndtri),
        ("student-t", [0.01, 0.02, 4.0], lambda p: stats.t.ppf(p, 4.0)),
    ],
)
def test_one_step_samples_match_the_head_distribution(kind, params, standard):
    engine = FixedHead(kind, params)
    paths = engine.sample_paths(_contexts(1), steps=1, samples=20_000, seed=0)
    levels = np.array([0.025, 0.1, 0.5, 0.9, 0.975])
    expected = 0.6 + params[0] + params[1] * standard(levels)
    # 0.1 scale is over 3 standard errors of the 2.5% quantile of 20,000 normals
    np.testing.assert_allclose(
        np.quantile(paths[0, :, 0], levels), expected, atol=0.1 * params[1]
    )


def test_two_recursive_normal_moves_add_up():
    """The second value is last + two drawn moves: normal, sqrt(2) x the scale."""
    engine = FixedHead("normal", [0.01, 0.02])
    paths = engine.sample_paths(_contexts(1), steps=2, samples=20_000, seed=1)
    levels = np.array([0.1, 0.5, 0.9])
    expected = 0.6 + 0.02 + np.sqrt(2) * 0.02 * special.ndtri(levels)
    np.testing.assert_allclose(
        np.quantile(paths[0, :, 1], levels), expected, atol=0.1 * 0.02
    )


def test_quantile_head_inverse_cdf_gives_its_own_quantiles():
    values = np.sort(np.random.default_rng(0).normal(size=(2, 3, len(QUANTILES))))
    spec = HeadSpec("quantile", 3, 1.0, QUANTILES)
    np.testing.assert_array_equal(quantile_function(values, spec, QUANTILES), values)
    slope = (values[..., 1] - values[..., 0]) / (QUANTILES[1] - QUANTILES[0])
    tail = quantile_function(values, spec, [0.0125])[..., 0]
    np.testing.assert_allclose(tail, values[..., 0] - 0.0125 * slope)
    middle = quantile_function(values, spec, [0.45])[..., 0]
    np.testing.assert_allclose(middle, (values[..., 5] + values[..., 6]) / 2)


def test_quantile_head_draws_centre_on_its_median_and_repeat():
    engine = FixedHead("quantile", np.linspace(-0.03, 0.03, 13), quantiles=QUANTILES)
    paths = engine.sample_paths(_contexts(1), steps=3, samples=2_000, seed=4)
    one_step = paths[0, :, 0] - 0.6
    assert np.median(one_step) == pytest.approx(0.0, abs=0.003)
    np.testing.assert_array_equal(
        paths, engine.sample_paths(_contexts(1), 3, 2_000, seed=4)
    )


def test_step_quantiles_of_a_direct_head():
    scales = np.array([[0.0, 0.01], [0.0, 0.02], [0.01, 0.03]])
    engine = FixedHead("normal", scales, horizon=3)
    levels = [0.1, 0.5, 0.9]
    got = engine.step_quantiles(_contexts(), 3, levels)
    expected = scales[:, :1] + scales[:, 1:] * special.ndtri(levels)
    last = _contexts()[:, -1, None, None]
    np.testing.assert_allclose(got, last + expected, atol=1e-7)
    with pytest.raises(ForecasterError, match=r"^steps must be at most the model's"):
        engine.step_quantiles(_contexts(), 4, levels)


def test_an_mse_model_cannot_be_sampled():
    with pytest.raises(
        ForecasterError,
        match=r"^sampling paths needs a model with a probabilistic head: .*"
        r"Received: samples=10 for a model trained with loss='mse'$",
    ):
        FixedHead("mse", [0.01]).sample_paths(_contexts(), 3, samples=10, seed=0)


# ------------------------------------------------------------- forecast frame


@pytest.fixture(scope="module")
def values():
    return make_prices(60)


def test_forecast_of_an_mse_model_keeps_its_conformal_bands(values):
    engine = FixedHead("mse", [0.01])
    scaler = Scaler().fit(values.to_numpy())
    intervals = {"scale": RESIDUAL_SCALE, "levels": {"0.8": [1, 2], "0.95": [3, 4]}}
    frame = one_series(engine, values, scaler, 2, 1, intervals)
    assert list(frame.columns) == [
        "date",
        "forecast",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
    ]
    scale = scale_of(values.to_numpy()[-WINDOW:])[0]
    np.testing.assert_allclose(
        frame["upper_95"] - frame["forecast"], [3 * scale, 4 * scale]
    )


def test_direct_forecast_reads_the_bands_from_the_head(values):
    params = np.array([[0.0, 0.01], [0.001, 0.02]])
    engine = FixedHead("normal", params, horizon=2)
    scaler = Scaler().fit(values.to_numpy())
    frame = one_series(engine, values, scaler, 2, 2)
    assert list(frame.columns) == FRAME_COLUMNS
    last = scaler.transform(values.to_numpy()[-1])
    for column, level in BAND_LEVELS.items():
        move = params[:, 0] + params[:, 1] * special.ndtri(level)
        expected = scaler.inverse_transform(last + move)
        np.testing.assert_allclose(frame[column], expected, rtol=1e-6)
    np.testing.assert_allclose(frame["median"], frame["forecast"])


def test_panel_forecast_draws_every_series_in_one_batch(values):
    prep = PrepSettings(window=WINDOW, representation="delta")
    parts = {"A": prepare(values, prep), "B": prepare(make_prices(60, seed=1), prep)}
    engine = FixedHead("student-t", [0.0, 0.01, 5.0])
    frame = forecast_future(engine, parts, 3, 1, {}, samples=300, seed=0)
    assert list(frame.columns) == ["series", *FRAME_COLUMNS]
    assert list(frame["series"]) == ["A"] * 3 + ["B"] * 3 and _nested(frame)


def one_series(engine, values, scaler, days, block, intervals=None, **draws):
    """forecast_future for one series, without its series column."""
    part = context_part(values, scaler, "delta")
    frame = forecast_future(engine, {"x": part}, days, block, {"x": intervals}, **draws)
    return frame.drop(columns="series")


# ---------------------------------------------------- a trained student-t model


@pytest.fixture(scope="module")
def student_t_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("student_t")
    csv = write_csv(root / "WALK.csv", make_prices(PRICES, seed=3))
    settings = tiny_settings(csv, model__loss="student-t", model__layers=1)
    return pipeline.run_training(settings, out=root / "bundle").out


@pytest.mark.slow  # its bundle trains a model
def test_numpy_and_keras_engines_draw_the_same_paths(student_t_bundle):
    bundle = load_bundle(student_t_bundle)
    args = (bundle.representation, bundle.window, bundle.horizon)
    keras_engine = KerasEngine(load_keras_model(bundle.model_path), *args)
    numpy_engine = NumpyEngine(bundle.model_path, *args)
    assert numpy_engine.head.kind == keras_engine.head.kind == "student-t"
    context = _contexts()
    paths = numpy_engine.sample_paths(context, 6, samples=100, seed=5)
    np.testing.assert_allclose(
        keras_engine.sample_paths(context, 6, samples=100, seed=5), paths, atol=1e-5
    )


@pytest.mark.slow  # its bundle trains a model
def test_student_t_forecast_has_a_median_inside_nested_bands(student_t_bundle):
    bundle = load_bundle(student_t_bundle)
    args = (bundle.representation, bundle.window, bundle.horizon)
    engine = NumpyEngine(bundle.model_path, *args)
    values = make_prices(PRICES, seed=3)
    frame = one_series(engine, values, bundle.scaler, 8, 1, samples=300, seed=2)
    assert list(frame.columns) == FRAME_COLUMNS and _nested(frame)
    widths = frame["upper_95"] - frame["lower_95"]
    assert widths.iloc[-1] > widths.iloc[0]  # uncertainty grows with the steps


@pytest.mark.slow  # its bundle trains a model; test_scripts checks predict's fast
def test_run_forecast_writes_the_median_and_the_fan(student_t_bundle, tmp_path):
    report = pipeline.run_forecast(
        str(student_t_bundle), days=5, out=tmp_path, samples=200, seed=1
    )
    frame = pd.read_csv(report.csv)
    assert list(frame.columns) == FRAME_COLUMNS and _nested(frame)
    assert report.png.stat().st_size > 10_000
    again = pipeline.run_forecast(
        str(student_t_bundle), days=5, out=tmp_path, samples=200, seed=1
    )
    pd.testing.assert_frame_equal(pd.read_csv(again.csv), frame)


# ------------------------------------------------------- command line and plot


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--samples", "0"],
            "error: --samples must be at least 1. Received: samples=0",
        ),
        (["--seed", "-1"], "error: --seed must be at least 0. Received: seed=-1"),
    ],
)
def test_bad_samples_or_seed_is_a_one_line_error(flags, message, capsys):
    assert cli.run(predict.main, flags) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]


def test_predict_and_train_both_take_their_own_seed():
    predict_args = cli.predict_parser("t").parse_args(["--samples", "5", "--seed", "3"])
    assert (predict_args.samples, predict_args.seed) == (5, 3)
    assert cli.train_parser("t").parse_args(["--seed", "9"]).seed == 9


def _lines_and_bands(frame):
    history = make_prices(30)
    ax = plot_forecast(history, frame, "test").axes[0]
    return [line.get_label() for line in ax.get_lines()], len(ax.collections)


def test_plot_draws_a_fan_with_the_median_only_when_the_frame_has_one():
    dates = pd.bdate_range("2020-03-01", periods=3).strftime("%Y-%m-%d")
    frame = pd.DataFrame({"date": dates, "forecast": [1.0, 1.1, 1.2]})
    bands = {"lower_95": -2, "lower_80": -1, "upper_80": 1, "upper_95": 2}
    for column, offset in bands.items():
        frame[column] = frame["forecast"] + offset
    lines, bands = _lines_and_bands(frame)
    assert "median" not in lines and bands == 2
    lines, bands = _lines_and_bands(frame.assign(median=frame["forecast"] + 0.05))
    assert "median" in lines and bands == 2
