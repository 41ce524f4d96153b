"""Tests for forecasting: engines agree, in-graph loop = step by step, dates, bands."""

import numpy as np
import pandas as pd
import pytest
from conftest import garch_pool, make_prices, tiny_settings, write_csv

from forecaster.config import DataSettings
from forecaster.errors import ForecasterError
from forecaster.forecast.future import forecast_future, future_dates
from forecaster.model.choose import make_engine
from forecaster.model.engines import Engine, NumpyEngine
from forecaster.model.keras_engine import KerasEngine, load_keras_model
from forecaster.prep.panel import context_part
from forecaster.store.bundle import load_bundle
from forecaster.workflows import runs as pipeline
from forecaster.workflows.runs import run_forecast


def _engines(bundle):
    model = load_keras_model(bundle.model_path)
    args = (bundle.representation, bundle.window, bundle.horizon)
    return KerasEngine(model, *args), NumpyEngine(bundle.model_path, *args)


def _step_by_step(model, context, steps, representation):
    """The tutorial's loop: one model.predict call per day (the reference)."""
    ctx, out = context.astype(np.float32).copy(), []
    for _ in range(steps):
        last = ctx[:, -1:]
        x = ctx - last if representation != "level" else ctx
        y = model.predict(x[:, :, None], verbose=0)
        y = (y[..., 0] if y.ndim == 3 else y)[:, :1]  # a head's location
        y = y + last if representation != "level" else y
        out.append(y)
        ctx = np.concatenate([ctx[:, 1:], y], axis=1)
    return np.concatenate(out, axis=1)


def test_in_graph_loop_matches_step_by_step_and_numpy(trained_bundle):
    bundle = load_bundle(trained_bundle)
    keras_engine, numpy_engine = _engines(bundle)
    rng = np.random.default_rng(0)
    context = np.cumsum(rng.normal(0, 0.01, size=(3, bundle.window)), axis=1) + 0.5
    fast = keras_engine.forecast(context, 12)
    slow = _step_by_step(keras_engine.model, context, 12, bundle.representation)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    np.testing.assert_allclose(numpy_engine.forecast(context, 12), fast, atol=1e-5)
    generic = Engine.forecast(keras_engine, context, 12)  # the plain Python loop
    np.testing.assert_allclose(generic, fast, atol=1e-5)


@pytest.fixture(scope="module")
def direct_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("direct")
    csv = write_csv(root / "WALK.csv", make_prices(seed=2))
    return pipeline.run_training(
        tiny_settings(csv, prep__horizon=3), out=root / "bundle"
    ).out


def test_direct_multi_step_bundle(direct_bundle):
    bundle = load_bundle(direct_bundle)
    assert bundle.horizon == 3 and bundle.metadata["default_method"] == "direct"
    keras_engine, numpy_engine = _engines(bundle)
    context = np.linspace(0.4, 0.6, bundle.window)[None, :]
    direct = keras_engine.forecast(context, 7, block=3)
    np.testing.assert_allclose(
        numpy_engine.forecast(context, 7, block=3), direct, atol=1e-5
    )
    first_call = keras_engine.predict(context)
    np.testing.assert_allclose(direct[:, :3], first_call, atol=1e-5)
    steps = pd.read_csv(direct_bundle / "rmse_by_step.csv")
    # "undamped": the raw recursive path, beside it when its drift is damped
    assert list(steps.columns) in (
        ["step", "recursive", "direct", "naive"],
        ["step", "recursive", "undamped", "direct", "naive"],
    )
    assert steps["naive"].iloc[-1] > steps["naive"].iloc[0]


def test_run_forecast_both_methods(direct_bundle, tmp_path):
    for method in ("recursive", "direct"):
        report = run_forecast(str(direct_bundle), days=5, method=method, out=tmp_path)
        assert report.method == method
        frame = pd.read_csv(report.csv)
        assert list(frame.columns) == [
            "date",
            "forecast",
            "median",
            "lower_80",
            "upper_80",
            "lower_95",
            "upper_95",
        ]
        assert (frame["lower_95"] <= frame["lower_80"]).all()
        assert (frame["lower_80"] < frame["forecast"]).all()
        assert (frame["forecast"] < frame["upper_80"]).all()


def test_horizon_larger_than_bundle_is_refused(direct_bundle, tmp_path):
    with pytest.raises(
        ForecasterError,
        match=r"^horizon 5 is larger than the model "
        r"was trained for \(3\)",
    ):
        run_forecast(str(direct_bundle), days=5, method="direct", block=5, out=tmp_path)


def test_forecast_dates_skip_weekends():
    dates = future_dates(pd.Timestamp("2024-05-03"), 3)  # a Friday
    assert [d.strftime("%a %d") for d in dates] == ["Mon 06", "Tue 07", "Wed 08"]


def test_forecast_needs_a_full_window(trained_bundle):
    bundle = load_bundle(trained_bundle)
    engine = make_engine(
        bundle.model_path, bundle.representation, bundle.window, bundle.horizon
    )
    short = make_prices(5)
    with pytest.raises(ForecasterError, match="need at least 10 prices .* got 5"):
        part = context_part(short, bundle.scaler, bundle.representation)
        forecast_future(engine, {"short": part}, 3, 1, {})


@pytest.mark.parametrize("days", [0, -3])
def test_days_must_be_positive(trained_bundle, days):
    with pytest.raises(ForecasterError, match=f"days={days}"):
        run_forecast(str(trained_bundle), days=days)


def test_reuse_on_new_data(trained_bundle, tmp_path):
    other = write_csv(tmp_path / "OTHER.csv", make_prices(150, seed=9, start=40.0))
    report = run_forecast(
        str(trained_bundle), days=4, data=DataSettings(csv=other), out=tmp_path
    )
    assert report.last_date == make_prices(150).index[-1].strftime("%Y-%m-%d")
    assert report.frame["forecast"].between(20, 80).all()


def test_unknown_engine(trained_bundle):
    bundle = load_bundle(trained_bundle)
    where = (bundle.model_path, bundle.representation, bundle.window, bundle.horizon)
    with pytest.raises(ForecasterError, match="choose one of auto, numpy, keras"):
        make_engine(*where, "torch")


def test_failed_forecast_keeps_the_earlier_one(trained_bundle, tmp_path, monkeypatch):
    run_forecast(str(trained_bundle), days=3, out=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_plot(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("forecaster.report.plots.plot_forecast", broken_plot)
    with pytest.raises(
        ForecasterError,
        match=r"^Could not write the file .*forecast\.png'\: disk full \(simulated\)",
    ):
        run_forecast(str(trained_bundle), days=5, out=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_future_point_path_takes_the_evaluated_drift_weight(trained_bundle):
    """The "forecast" column is the zero-drift path the evaluation scored."""
    import forecaster as fc

    model = fc.load(trained_bundle)
    assert model.metrics_["drift"]["weight"] == 0.0  # what the evaluation used
    frame = model.forecast(6, method="recursive")
    last = model.panel_.parts[model.name].prices[-1]
    np.testing.assert_allclose(frame["forecast"], last)
    model.metrics_ = {k: v for k, v in model.metrics_.items() if k != "drift"}
    raw = model.forecast(6, method="recursive")  # a bundle with no record: raw
    assert not np.allclose(raw["forecast"], last)
    np.testing.assert_allclose(raw["lower_80"], frame["lower_80"])


def test_forecast_bands_are_the_pool_validation_chose(bundle_copy):
    """With the pool recorded, the bands average the network's and the anchor's."""
    import forecaster as fc
    from forecaster.evaluate.anchor_paths import AnchorState, simulate_returns
    from forecaster.forecast.future import POOL_SIMULATIONS

    model = fc.load(bundle_copy)
    part = model.panel_.parts[model.name]
    pool = garch_pool(part, 0.25)
    future = pool["future"]
    model.metrics_["distribution"].pop("combination", None)  # the network alone
    own = model.forecast(5)
    assert own.attrs["bands"] is None
    model.metrics_["distribution"]["combination"] = pool
    pooled = model.forecast(5)
    assert pooled.attrs["bands"] == (
        "bands: the pool chosen on validation, 25% network + 75% GARCH(1,1)-t"
    )
    drawn = simulate_returns(
        AnchorState.from_record(future["state"]), 5, POOL_SIMULATIONS
    )
    upper = part.prices[-1] * np.exp(np.quantile(drawn[0].sum(axis=1), 0.975) / 100)
    assert pooled["upper_95"].iloc[-1] == pytest.approx(
        0.25 * own["upper_95"].iloc[-1] + 0.75 * upper
    )
    np.testing.assert_allclose(pooled["forecast"], own["forecast"])
    future["weight_model"] = 0.0  # the anchor's bands alone: no path is drawn
    engine = model.get_engine("auto")
    engine.sample_paths = None  # calling it would fail
    alone = model.forecast(5)
    assert alone["upper_95"].iloc[-1] == pytest.approx(upper)
    assert alone[["median", "lower_95", "upper_95"]].notna().all().all()
    np.testing.assert_allclose(alone["forecast"], own["forecast"])
    del engine.sample_paths
    older = make_prices()[:-1]  # the series the bundle was trained on, a day short
    elsewhere = model.forecast(5, prices=older)  # not the day the state is for
    assert elsewhere.attrs["bands"].startswith("bands: the network's own")
    model.metrics_["distribution"].pop("combination")
    np.testing.assert_allclose(
        elsewhere["upper_95"], model.forecast(5, prices=older)["upper_95"]
    )
