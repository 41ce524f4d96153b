"""Probabilistic and direction heads: losses, safe_mode round trip, NumPy agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from forecaster.config import ModelSettings
from forecaster.errors import ForecasterError
from forecaster.evaluate import scores
from forecaster.model import heads
from forecaster.model.engines import NumpyEngine
from forecaster.model.heads import QUANTILES, HeadSpec
from forecaster.model.keras_engine import KerasEngine, load_keras_model

KINDS = [("normal", "price"), ("student-t", "price"), ("quantile", "price")]
KINDS += [(None, "direction"), ("mse", "price")]


def _tiny_model(
    loss, objective, horizon=2, n_features=1, scales=(0.02, 0.01), df_gain=1.0
):
    import keras

    from forecaster.model.factory import build_model

    keras.utils.set_random_seed(3)
    settings = ModelSettings(
        units=5, layers=2, loss=loss, objective=objective, df_gain=df_gain
    )
    model = build_model(settings, 12, horizon, n_features, scales=scales)
    for weight in model.weights:  # move every weight off its initial value
        noise = np.random.default_rng(len(weight.path)).normal(0, 0.3, weight.shape)
        weight.assign(np.asarray(weight.numpy() + noise, dtype="float32"))
    return model


@pytest.mark.parametrize("loss, objective", KINDS)
def test_saved_heads_load_in_safe_mode_and_numpy_matches_keras(
    tmp_path, loss, objective
):
    model = _tiny_model(loss, objective, n_features=2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_keras_model(path)  # safe_mode=True
    windows = np.random.default_rng(0).normal(0.5, 0.1, (7, 12)).cumsum(1) / 10
    extra = np.random.default_rng(1).normal(0, 1, (7, 12, 1))
    keras_out = KerasEngine(loaded, "log-delta", 12, 2).predict_head(windows, extra)
    numpy_out = NumpyEngine(path, "log-delta", 12, 2).predict_head(windows, extra)
    expected = {"normal": (7, 2, 2), "student-t": (7, 2, 3), "quantile": (7, 2, 13)}
    assert keras_out.shape == expected.get(loss, (7, 2))
    np.testing.assert_allclose(numpy_out, keras_out, atol=1e-5, rtol=1e-5)


def test_numpy_matches_keras_with_a_df_gain(tmp_path):
    model = _tiny_model("student-t", "price", df_gain=heads.DF_GAIN)
    path = tmp_path / "model.keras"
    model.save(path)
    windows = np.linspace(0.2, 0.4, 24).reshape(2, 12)
    keras_out = KerasEngine(load_keras_model(path), "delta", 12, 2).predict_head(
        windows
    )
    numpy_out = NumpyEngine(path, "delta", 12, 2).predict_head(windows)
    np.testing.assert_allclose(numpy_out, keras_out, atol=1e-5, rtol=1e-5)
    weight = float(model.get_layer("head").df_weight.numpy())
    df = heads.MIN_DF + heads.softplus(heads.DF_GAIN * weight)
    np.testing.assert_allclose(keras_out[..., 2], df, rtol=1e-5)


def test_head_spec_is_read_from_the_saved_config(tmp_path):
    model = _tiny_model("student-t", "price")
    path = tmp_path / "model.keras"
    model.save(path)
    engine = NumpyEngine(path, "delta", 12, 2)
    assert engine.head == HeadSpec("student-t", 2, 0.02, ())
    assert engine.head.point_index == 0
    assert NumpyEngine(path, "delta", 12, 2).model.df_weight != 0.0


def test_point_forecast_is_the_location_or_median(tmp_path):
    for loss in ("normal", "quantile"):
        model = _tiny_model(loss, "price")
        engine = KerasEngine(model, "delta", 12, 2)
        windows = np.linspace(0.2, 0.4, 24).reshape(2, 12)
        out = engine.predict_head(windows)
        index = 0 if loss == "normal" else QUANTILES.index(0.5)
        expected = windows[:, -1:] + out[..., index]
        np.testing.assert_allclose(engine.predict(windows), expected, atol=1e-6)


def test_quantiles_never_cross_even_for_wild_outputs():
    raw = np.random.default_rng(0).normal(0, 50, (100, 3, len(QUANTILES)))
    values = heads.quantile_stack(raw, QUANTILES.index(0.5), 0.01)
    assert np.all(np.diff(values, axis=-1) >= 0)


def test_move_channel_adds_scaled_daily_moves():
    x = np.array([[[1.0], [3.0], [6.0]]])
    out = heads.move_channel(x, 2.0)
    np.testing.assert_allclose(out[0, :, 1], [0.0, 1.0, 1.5])


def _loss(kind, y_true, y_pred):
    from forecaster.model.keras_heads import HeadLoss

    loss = HeadLoss(kind, list(QUANTILES) if kind == "quantile" else None)
    return float(loss(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")))


def test_likelihood_losses_are_the_exact_negative_log_densities():
    y = np.array([[0.01], [-0.02], [0.005]])
    loc, scale, df = np.array([0.0, 0.001, -0.003]), np.array([0.01, 0.02, 0.015]), 4.5
    normal = np.stack([loc, scale], -1)[:, None, :]
    expected = -stats.norm.logpdf(y[:, 0], loc, scale).mean()
    assert _loss("normal", y, normal) == pytest.approx(expected, rel=1e-5)
    t = np.stack([loc, scale, np.full(3, df)], -1)[:, None, :]
    expected = -stats.t.logpdf(y[:, 0], df, loc, scale).mean()
    assert _loss("student-t", y, t) == pytest.approx(expected, rel=1e-5)


def test_pinball_loss_matches_the_scores_module():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, (20, 1))
    q = np.sort(rng.normal(0, 1, (20, 1, len(QUANTILES))), axis=-1)
    expected = scores.pinball_loss(y[:, 0], q[:, 0], np.array(QUANTILES)).mean()
    assert _loss("quantile", y, q) == pytest.approx(expected, rel=1e-5)


def test_direction_loss_is_cross_entropy_against_the_sign_of_the_move():
    y = np.array([[0.3], [-0.1], [0.2]])
    p = np.array([[0.9], [0.2], [0.4]])
    expected = -np.mean([math.log(0.9), math.log(0.8), math.log(0.4)])
    assert _loss("direction", y, p) == pytest.approx(expected, rel=1e-5)


def test_unknown_loss_and_mixed_objective_are_refused():
    with pytest.raises(ForecasterError, match="Unknown loss 'mae': choose one of"):
        ModelSettings(loss="mae").validate()
    with pytest.raises(ForecasterError, match="leave loss unset"):
        ModelSettings(loss="student-t", objective="direction").validate()
    with pytest.raises(ForecasterError, match="Unknown objective 'up'"):
        ModelSettings(objective="up").validate()


def test_direction_models_refuse_price_forecasts():
    engine = KerasEngine(_tiny_model(None, "direction"), "delta", 12, 2)
    windows = np.linspace(0.2, 0.4, 12)[None]
    assert np.all(
        (engine.predict_head(windows) > 0) & (engine.predict_head(windows) < 1)
    )
    with pytest.raises(ForecasterError, match="direction of the next move"):
        engine.predict(windows)


def _df_after_training(gain: float, steps: int = 150) -> float:
    """The t head's df after `steps` Adam steps on moves drawn from a t(3)."""
    import keras

    from forecaster.model.keras_heads import DistributionHead, HeadLoss

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    inputs = rng.normal(0, 1, (64 * steps, 2)).astype("float32")
    moves = (0.02 * rng.standard_t(3, (64 * steps, 1))).astype("float32")
    head = DistributionHead("student-t", 1, 0.02, df_gain=gain)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), head])
    model.compile(keras.optimizers.Adam(1e-3), HeadLoss("student-t"))
    model.fit(inputs, moves, batch_size=64, epochs=1, verbose=0, shuffle=False)
    return float(heads.MIN_DF + heads.softplus(gain * head.df_weight.numpy()))


def test_degrees_of_freedom_train_with_the_gain():
    # ModelSettings.df_gain = DF_GAIN: 150 steps of t(3) moves take df from 6 to < 4.5
    assert _df_after_training(heads.DF_GAIN) < 4.5


@pytest.mark.slow
def test_degrees_of_freedom_stay_put_without_the_gain():
    # the default's gain of 1: Adam moves the one df weight by ~ the learning
    # rate a step, so after the same 150 steps df is still within 0.2 of 6
    assert abs(_df_after_training(1.0) - heads.INITIAL_DF) < 0.2


def test_a_model_saved_before_the_df_gain_reads_with_a_gain_of_one(tmp_path):
    import json
    import zipfile

    model = _tiny_model("student-t", "price")
    path, old = tmp_path / "model.keras", tmp_path / "old.keras"
    model.save(path)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.namelist():
            data = source.read(item)
            if item == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    layer["config"].pop("df_gain", None)
                data = json.dumps(config).encode()
            target.writestr(item, data)
    weight = float(model.get_layer("head").df_weight.numpy())
    keras_out = KerasEngine(load_keras_model(old), "delta", 12, 2).predict_head(
        np.linspace(0.2, 0.4, 24).reshape(2, 12)
    )
    numpy_model = NumpyEngine(old, "delta", 12, 2).model
    assert numpy_model.df_weight == pytest.approx(weight)
    df = heads.MIN_DF + heads.softplus(weight)
    np.testing.assert_allclose(keras_out[..., 2], df, rtol=1e-5)
