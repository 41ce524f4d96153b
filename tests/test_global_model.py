"""One global model over a panel: shared cut-off, per-series scalers, windows that
never cross two series, extra input features, per-series scores and forecasts.

The panels here are generated random walks with volatility clustering
(tests/panel_fakes.py), not market data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import garch_pool
from panel_fakes import random_walk_ohlcv

import forecaster as fc
from forecaster.config import PrepSettings
from forecaster.data.frames import panel_from_pandas
from forecaster.errors import ForecasterError
from forecaster.prep.panel import prepare_panel
from forecaster.train.fit import training_windows

TINY = dict(window=10, units=4, layers=1, epochs=2, batch_size=32, verbose=0)


def generated_panel() -> dict:
    return {
        "AAA": random_walk_ohlcv(260, seed=1),
        "BBB": random_walk_ohlcv(200, seed=2, start="2020-03-02"),
        "CCC": random_walk_ohlcv(240, seed=3),
    }


@pytest.fixture(scope="module")
def global_model():
    model = fc.Forecaster(features="close,range,volume", horizon=2, **TINY)
    return model.fit(generated_panel())


def test_every_series_is_cut_at_one_date_and_scaled_on_its_own_train_rows():
    prep = PrepSettings(window=10, features="close,range")
    prepared = prepare_panel(panel_from_pandas(generated_panel()), prep, "close,range")
    cutoff = prepared.cutoff
    for part in prepared.parts.values():
        n_train = part.split.n_train
        assert part.dates[n_train - 1] < cutoff <= part.dates[n_train]
        # log-delta (the default) scales log prices
        assert part.scaler.data_max_ == pytest.approx(
            np.log(part.prices[:n_train].max())
        )
        train_range = part.extra[:n_train, 0]
        assert train_range.min() == pytest.approx(0) and train_range.max() == (
            pytest.approx(1)
        )
        assert part.n_features == 2 and part.extra_names == ["range"]


def test_no_window_crosses_two_series():
    prep = PrepSettings(window=10)
    prepared = prepare_panel(panel_from_pandas(generated_panel()), prep)
    parts = list(prepared.parts.values())
    scaled, extra, targets = training_windows(parts, "fit")
    assert extra is None and len(scaled) == sum(len(p.scaled) for p in parts)
    starts = np.cumsum([0] + [len(p.scaled) for p in parts])
    owner = np.searchsorted(starts, targets, side="right") - 1
    # every window's inputs t-window..t-1 and target t lie inside one series
    assert (targets - prep.window >= starts[owner]).all()
    assert (targets < starts[owner + 1]).all()
    expected = sum(p.split.n_fit for p in parts)
    assert len(targets) == len(np.unique(targets)) == expected


def test_global_model_scores_every_series_beside_naive(global_model):
    table = global_model.evaluate()
    assert list(table["series"]) == ["AAA", "BBB", "CCC"]
    assert {"model_rmse", "naive_rmse", "ratio", "coverage_80"} <= set(table.columns)
    ratios = table["ratio"].to_numpy()
    np.testing.assert_allclose(ratios, table["model_rmse"] / table["naive_rmse"])
    summary = global_model.metrics_["panel"]
    assert summary["mean_ratio"] == pytest.approx(ratios.mean())
    assert summary["worst_ratio"] == pytest.approx(ratios.max())
    assert global_model.default_method_ == "direct"
    assert set(global_model.metrics_["series"]["AAA"]["rmse_by_step"]) == {
        "step",
        "direct",
        "naive",
    }


def test_global_model_forecasts_every_series_in_one_long_frame(global_model):
    frame = global_model.forecast(2)
    assert list(frame.columns[:3]) == ["series", "date", "forecast"]
    assert list(frame["series"]) == ["AAA", "AAA", "BBB", "BBB", "CCC", "CCC"]
    assert (frame["lower_95"] < frame["forecast"]).all()
    last = generated_panel()["BBB"].index[-1]
    assert pd.Timestamp(frame.loc[frame["series"] == "BBB", "date"].iloc[0]) > last


def test_a_global_model_plots_its_forecast_as_a_grid(global_model, tmp_path):
    fig = global_model.plot("forecast", days=2, path=tmp_path / "grid.png")
    titled = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 3 and titled == ["AAA", "BBB", "CCC"]
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_features_refuse_a_forecast_past_the_horizon(global_model):
    with pytest.raises(
        ForecasterError,
        match=r"^days must be at most the model's "
        r"horizon 2 when it takes input features other than the price",
    ):
        global_model.forecast(5)


def test_numpy_engine_takes_the_extra_features(global_model, tmp_path):
    from forecaster.model.engines import NumpyEngine
    from forecaster.model.keras_engine import KerasEngine

    path = tmp_path / "model.keras"
    global_model.model_.save(path)
    part = global_model.panel_.parts["AAA"]
    contexts = np.stack([part.scaled[-10:], part.scaled[-11:-1]])
    extra = np.stack([part.extra[-10:], part.extra[-11:-1]])
    args = ("delta", 10, 2)
    keras_out = KerasEngine(global_model.model_, *args).predict(contexts, extra)
    numpy_out = NumpyEngine(path, *args).predict(contexts, extra)
    np.testing.assert_allclose(numpy_out, keras_out, atol=1e-5)


@pytest.mark.slow
def test_a_long_frame_is_a_panel():
    rows = [
        frame.reset_index().assign(ticker=name)
        for name, frame in generated_panel().items()
    ]
    long = pd.concat(rows, ignore_index=True)
    model = fc.Forecaster(**TINY).fit(long)
    assert list(model.evaluate()["series"]) == ["AAA", "BBB", "CCC"]
    frame = model.forecast(3)  # close only: the recursive loop is allowed
    assert len(frame) == 9


def test_unknown_feature_lists_the_valid_ones():
    with pytest.raises(
        ForecasterError,
        match=r"Unknown feature 'rsi': valid features "
        r"are close, range, gap, volume, return",
    ):
        fc.Forecaster(features="close,rsi")


def test_a_saved_global_model_forecasts_the_same_after_load(global_model, tmp_path):
    path = global_model.save(tmp_path / "panel")
    meta = (path / "metadata.json").read_text()
    assert '"cutoff"' in meta and '"features"' in meta
    loaded = fc.load(path)
    assert loaded.is_panel
    pd.testing.assert_frame_equal(loaded.evaluate(), global_model.evaluate())
    expected, got = global_model.forecast(2), loaded.forecast(2)
    assert list(got["series"]) == list(expected["series"])
    assert (got["date"] == expected["date"]).all()
    np.testing.assert_allclose(got["forecast"], expected["forecast"], rtol=1e-5)
    np.testing.assert_allclose(got["upper_95"], expected["upper_95"], rtol=1e-5)


def test_every_series_validates_from_the_same_date():
    prep = PrepSettings(window=10)
    prepared = prepare_panel(panel_from_pandas(generated_panel()), prep)
    firsts = {
        name: part.dates[part.split.val_targets[0]]
        for name, part in prepared.parts.items()
    }
    assert len(set(firsts.values())) == 1
    first = next(iter(firsts.values()))
    # about the newest 10% of the panel's training days, all before the cut-off
    for part in prepared.parts.values():
        val_start, val_stop = part.split.val_targets
        assert part.dates[val_stop - 1] < prepared.cutoff <= part.dates[val_stop]
        assert part.split.n_fit >= 20 and val_stop > val_start
    assert first < prepared.cutoff


@pytest.mark.slow
def test_walk_forward_over_a_panel_scores_each_fold_and_series():
    from forecaster.api import settings_from_keywords
    from forecaster.evaluate.backtest import walk_forward

    panel = panel_from_pandas(generated_panel())
    table = walk_forward(panel, settings_from_keywords(**TINY), 2, single=False)
    assert list(table["fold"]) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert list(table["series"]) == ["AAA", "BBB", "CCC", "mean"] * 2
    fold1 = table[(table["fold"] == 1) & (table["series"] != "mean")]
    assert table.loc[3, "rmse_ratio"] == pytest.approx(fold1["rmse_ratio"].mean())
    assert (table["test_days"].dropna() > 0).all()


def covariate(n=300, seed=9, start="2019-12-02"):
    return random_walk_ohlcv(n, seed=seed, start=start)["Close"].rename("Close")


def test_no_covariate_value_from_after_a_day_reaches_it():
    from forecaster.prep.covariates import align_covariates

    index = generated_panel()["AAA"].index
    base = covariate()
    later = base.copy()
    cut = index[150]
    later[later.index > cut] *= 1.5  # change only what comes after `cut`
    before = align_covariates(index, {"cov_X": base}, "AAA")
    after = align_covariates(index, {"cov_X": later}, "AAA")
    pd.testing.assert_frame_equal(before.loc[:cut], after.loc[:cut])
    assert not before.loc[cut:].iloc[1:].equals(after.loc[cut:].iloc[1:])


def test_covariate_gaps_fill_three_days_then_are_refused():
    from forecaster.prep.covariates import align_covariates

    index = generated_panel()["AAA"].index
    values = covariate()
    gap3 = values.drop(index[40:43])
    filled = align_covariates(index, {"cov_X": gap3}, "AAA")
    assert filled.loc[index[40:43], "cov_X"].eq(0).all()  # last value stands in
    gap4 = values.drop(index[40:44])
    with pytest.raises(
        ForecasterError,
        match=r"^covariate 'X' does not cover AAA: "
        r"no value within 3 days before 2020-03-02",
    ):
        align_covariates(index, {"cov_X": gap4}, "AAA")
    late = covariate(start="2020-06-01")
    with pytest.raises(
        ForecasterError,
        match=r"^covariate 'X' does not cover AAA: "
        r"no value within 3 days before 2020-01-01",
    ):
        align_covariates(index, {"cov_X": late}, "AAA")


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_a_global_model_with_a_covariate_saves_and_forecasts(tmp_path):
    model = fc.Forecaster(horizon=2, **TINY)
    model.fit(generated_panel(), covariates={"IDX": covariate()})
    part = model.panel_.parts["AAA"]
    assert part.extra_names == ["cov_IDX"] and part.n_features == 2
    loaded = fc.load(model.save(tmp_path / "bundle"))
    np.testing.assert_allclose(
        loaded.forecast(2)["forecast"], model.forecast(2)["forecast"], rtol=1e-5
    )


def test_a_series_pooled_at_network_weight_0_draws_no_paths():
    """Its bands are the anchor's alone; the other series' stay as they were."""
    panel = {name: frame["Close"] for name, frame in generated_panel().items()}
    model = fc.Forecaster(window=10, units=4, layers=1, epochs=1, verbose=0)
    model.fit(panel)
    for one in model.metrics_["series"].values():
        one["distribution"].pop("combination", None)  # the network's own bands
    own = model.forecast(5)
    part = model.panel_.parts["AAA"]
    pool = garch_pool(part, 0.0)
    model.metrics_["series"]["AAA"]["distribution"]["combination"] = pool
    engine, sampled = model.get_engine("auto"), []
    draw = engine.sample_paths
    engine.sample_paths = lambda context, *args: (
        sampled.append(len(context)) or draw(context, *args)
    )
    pooled = model.forecast(5)
    del engine.sample_paths
    assert sampled == [2]  # BBB and CCC only
    others = pooled["series"] != "AAA"
    pd.testing.assert_frame_equal(pooled[others], own[others])
    aaa = pooled[~others]
    assert aaa[["median", "lower_95", "upper_95"]].notna().all().all()
    assert not np.allclose(aaa["upper_95"], own.loc[~others, "upper_95"])
    assert "0% network + 100% GARCH(1,1)-t" in pooled.attrs["bands"]
