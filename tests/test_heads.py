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


def _tiny_model(loss, objective, horizon=2, n_features=1, scales=(0.02, 0.01)):
    import keras

    from forecaster.model.factory import build_model

    keras.utils.set_random_seed(3)
    settings = ModelSettings(units=5, layers=2, loss=loss, objective=objective)
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
