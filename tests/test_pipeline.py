"""Tests for training runs and bundles: round trip, metrics, atomic saves, resume."""

import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, tiny_settings, write_csv

from forecaster.data import read_price_csv
from forecaster.errors import BundleError, ForecasterError
from forecaster.evaluate.baselines import REGISTRY
from forecaster.io import write_directory_atomically
from forecaster.model.engines import NumpyEngine
from forecaster.model.keras_engine import KerasEngine, load_keras_model
from forecaster.prep.windows import prepare
from forecaster.report.tables import format_backtest
from forecaster.store.bundle import load_bundle
from forecaster.workflows import runs as pipeline

BUNDLE_FILES = {
    "model.keras",
    "scaler.json",
    "metadata.json",
    "metrics.json",
    "intervals.json",
    "test_predictions.csv",
    "history.csv",
    "rmse_by_step.csv",
    "loss.png",
    "test_predictions.png",
}


def _tree(path):
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_bundle_has_every_part(trained_bundle):
    assert BUNDLE_FILES <= {p.name for p in trained_bundle.iterdir()}
    meta = json.loads((trained_bundle / "metadata.json").read_text())
    assert meta["source"]["kind"] == "csv" and meta["column"] == "Adj Close"
    assert meta["date_range"]["first"] == "2020-01-01"
    assert meta["settings"]["prep"]["window"] == 10
    assert {"tensorflow", "keras", "numpy", "pandas", "sklearn"} <= set(
        meta["versions"]
    )
    scaler = json.loads((trained_bundle / "scaler.json").read_text())
    assert scaler["kind"] == "sklearn.preprocessing.MinMaxScaler"
    history = pd.read_csv(trained_bundle / "history.csv")
    assert list(history.columns) == ["epoch", "loss", "val_loss"] and len(history) == 2


def test_scaler_is_fitted_on_training_part_only(trained_bundle):
    meta = json.loads((trained_bundle / "metadata.json").read_text())
    prices = read_price_csv(meta["source"]["path"]).values
    n_train = meta["rows"]["train"]
    scaler = json.loads((trained_bundle / "scaler.json").read_text())
    to_scaled = np.log if scaler["log"] else np.asarray
    train_max = float(to_scaled(prices.iloc[:n_train].max()))
    assert scaler["data_max_"] == pytest.approx(train_max)
    assert scaler["data_max_"] < to_scaled(prices.max())  # the walk rises past training


def test_test_predictions_are_price_units_with_naive(trained_bundle):
    frame = pd.read_csv(trained_bundle / "test_predictions.csv")
    assert list(frame.columns) == [
        *("date", "actual", "predicted", "naive", "median"),
        *("lower_80", "upper_80", "lower_95", "upper_95"),
    ]
    meta = json.loads((trained_bundle / "metadata.json").read_text())
    assert len(frame) == meta["rows"]["total"] - meta["rows"]["train"]
    np.testing.assert_allclose(frame["naive"].iloc[1:], frame["actual"].iloc[:-1])
    assert frame["date"].iloc[0] == meta["date_range"]["test_start"]
    metrics = json.loads((trained_bundle / "metrics.json").read_text())
    rmse = np.sqrt(np.mean((frame["predicted"] - frame["actual"]) ** 2))
    naive = np.sqrt(np.mean((frame["naive"] - frame["actual"]) ** 2))
    assert metrics["model"]["rmse"] == pytest.approx(rmse)
    assert metrics["naive"]["rmse"] == pytest.approx(naive)
    assert set(metrics["interval_coverage_one_step"]) == {"0.8", "0.95"}
    assert metrics["rmse_by_step"]["step"] == list(range(1, 11))
    # the bounds are the main one-step distribution (the model's own, or the
    # pool with an anchor where validation chose it), scored in metrics
    distribution = metrics["distribution"]
    model = distribution["methods"][distribution["main"]]
    inside = (frame["lower_80"] <= frame["actual"]) & (
        frame["actual"] <= frame["upper_80"]
    )
    assert model["coverage_0.8"] == pytest.approx(inside.mean())


def test_reload_gives_identical_predictions(trained_bundle):
    bundle = load_bundle(trained_bundle)
    meta = bundle.metadata
    values = read_price_csv(meta["source"]["path"]).values
    prepared = prepare(values, bundle.settings.prep)
    model = load_keras_model(bundle.model_path)
    engine = KerasEngine(model, bundle.representation, bundle.window, bundle.horizon)
    from forecaster.evaluate.evaluation import test_predictions

    again = test_predictions(engine, prepared)
    saved = pd.read_csv(trained_bundle / "test_predictions.csv")
    np.testing.assert_allclose(again["predicted"], saved["predicted"], rtol=1e-9)
    numpy_engine = NumpyEngine(
        bundle.model_path, bundle.representation, bundle.window, bundle.horizon
    )
    np.testing.assert_allclose(
        test_predictions(numpy_engine, prepared)["predicted"],
        saved["predicted"],
        rtol=1e-5,
    )


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path):
    csv = write_csv(tmp_path / "W.csv", make_prices(seed=3))
    first = pipeline.run_training(tiny_settings(csv), out=tmp_path / "a")
    second = pipeline.run_training(tiny_settings(csv), out=tmp_path / "b")
    assert first.metrics["model"] == second.metrics["model"]
    third = pipeline.run_training(tiny_settings(csv, train__seed=7), out=tmp_path / "c")
    assert third.metrics["model"]["rmse"] != first.metrics["model"]["rmse"]


def test_existing_bundle_is_not_overwritten_without_force(bundle_copy, prices_csv):
    before = _tree(bundle_copy)
    with pytest.raises(ForecasterError, match="already exists: pass force=True"):
        pipeline.run_training(tiny_settings(prices_csv), out=bundle_copy)
    assert _tree(bundle_copy) == before


@pytest.mark.slow
def test_failed_save_leaves_previous_bundle_byte_identical(
    bundle_copy, prices_csv, monkeypatch
):
    before = _tree(bundle_copy)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    # a required part fails (an optional plot would be left out with a warning)
    monkeypatch.setattr("forecaster.store.bundle.write_manifest", crash)
    with pytest.raises(
        ForecasterError, match=r"^Could not write the bundle .*disk full \(simulated\)"
    ):
        pipeline.run_training(tiny_settings(prices_csv), out=bundle_copy, force=True)
    assert _tree(bundle_copy) == before
    leftovers = [p.name for p in bundle_copy.parent.iterdir() if p.name.startswith(".")]
    assert [name for name in leftovers if ".tmp-" in name or ".old-" in name] == []


@pytest.mark.slow
def test_force_replaces_only_when_complete(bundle_copy, prices_csv):
    old_model = (bundle_copy / "model.keras").read_bytes()
    pipeline.run_training(
        tiny_settings(prices_csv, train__seed=11), out=bundle_copy, force=True
    )
    assert (bundle_copy / "model.keras").read_bytes() != old_model
    assert BUNDLE_FILES <= {p.name for p in bundle_copy.iterdir()}


def test_atomic_directory_write_cleans_up(tmp_path):
    target = tmp_path / "out"

    def half(tmp):
        (tmp / "a.txt").write_text("partial")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        write_directory_atomically(target, half)
    assert not target.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_resume_continues_from_checkpoint(tmp_path):
    csv = write_csv(tmp_path / "W.csv", make_prices(seed=5))
    out = tmp_path / "bundle"
    checkpoint = pipeline.checkpoint_dir_for(out)
    from forecaster.train.fit import fit_model

    settings = tiny_settings(csv, train__epochs=2)
    prepared = prepare(read_price_csv(csv).values, settings.prep)
    fit_model(prepared, settings, checkpoint_dir=checkpoint)  # a run that "died" at 2
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["epochs_done"] == 2
    resumed = pipeline.run_training(
        tiny_settings(csv, train__epochs=4), out=out, resume=True
    )
    meta = json.loads((resumed.out / "metadata.json").read_text())
    assert meta["training"]["resumed_from_epoch"] == 2
    assert meta["training"]["epochs_run"] == 4
    assert not checkpoint.exists()
    assert meta["training"]["runtime"] == {
        "prefetch_batches": 2,
        "tf_data_autotune": False,
        "training_iterator": "one stream of passes",
    }


@pytest.mark.slow
def test_resume_finds_a_checkpoint_whose_swap_was_killed(tmp_path, caplog):
    """The state a kill between the two renames leaves (tests/test_io.py makes it)."""
    from forecaster.train.fit import fit_model

    csv = write_csv(tmp_path / "W.csv", make_prices(seed=5))
    out = tmp_path / "bundle"
    checkpoint = pipeline.checkpoint_dir_for(out)
    settings = tiny_settings(csv, train__epochs=2)
    prepared = prepare(read_price_csv(csv).values, settings.prep)
    fit_model(prepared, settings, checkpoint_dir=checkpoint)
    checkpoint.rename(tmp_path / "..bundle.resume.old-0123abcd")  # set aside
    (tmp_path / "..bundle.resume.tmp-89abcdef").mkdir()  # the next, never placed
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        resumed = pipeline.run_training(
            tiny_settings(csv, train__epochs=3), out=out, resume=True
        )
    meta = json.loads((resumed.out / "metadata.json").read_text())
    assert meta["training"]["resumed_from_epoch"] == 2
    assert "restored the checkpoint" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["W.csv", "bundle"]


@pytest.mark.slow
def test_resumed_run_repeats_the_uninterrupted_run(tmp_path):
    """The same windows in the same order after a resume: the same losses."""
    from forecaster.train.fit import fit_model

    csv = write_csv(tmp_path / "W.csv", make_prices(seed=5))
    prepared = prepare(read_price_csv(csv).values, tiny_settings(csv).prep)
    whole = fit_model(prepared, tiny_settings(csv, train__epochs=4))
    checkpoint = tmp_path / "ckpt"
    fit_model(prepared, tiny_settings(csv, train__epochs=2), checkpoint_dir=checkpoint)
    resumed = fit_model(
        prepared,
        tiny_settings(csv, train__epochs=4),
        checkpoint_dir=checkpoint,
        resume=True,
    )
    assert resumed.resumed_from == 2
    losses = [[row["loss"] for row in r.history] for r in (whole, resumed)]
    assert len(losses[1]) == 4
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert losses[0][2] != losses[0][3]  # the epochs did train


@pytest.mark.slow  # a whole run; a cheaper test covers it in the fast set
def test_resume_refuses_other_settings(tmp_path):
    csv = write_csv(tmp_path / "W.csv", make_prices(seed=5))
    out = tmp_path / "bundle"
    from forecaster.train.fit import fit_model

    settings = tiny_settings(csv)
    prepared = prepare(read_price_csv(csv).values, settings.prep)
    fit_model(prepared, settings, checkpoint_dir=pipeline.checkpoint_dir_for(out))
    with pytest.raises(ForecasterError, match=r"other settings \(model.units differ\)"):
        pipeline.run_training(tiny_settings(csv, model__units=5), out=out, resume=True)


def test_resume_without_checkpoint_is_an_error(tmp_path, prices_csv):
    with pytest.raises(ForecasterError, match="^resume found no checkpoint"):
        pipeline.run_training(
            tiny_settings(prices_csv), out=tmp_path / "x", resume=True
        )


@pytest.mark.slow
def test_backtest_scores_each_fold_beside_naive(tmp_path, prices_csv):
    out, table = pipeline.run_backtest(
        tiny_settings(prices_csv), folds=2, out=tmp_path / "bt"
    )
    assert list(table["fold"]) == [1, 2, "mean"]
    assert (out / "backtest.csv").exists() and (out / "backtest.png").exists()
    assert table["test_days"].iloc[:2].sum() == 260 - int(260 * 0.75)
    assert (table["naive_rmse"].iloc[:2] > 0).all()
    assert table["train_days"].iloc[1] > table["train_days"].iloc[0]
    # every baseline of the registry is scored in each fold, as in a run
    # (EGARCH's fit on this generated walk is degenerate: left out, test_anchors)
    keys = {f"crps_{key}" for key in REGISTRY if key != "egarch_t"}
    assert keys <= set(table.columns) and "crps_model" in table
    assert table[["crps_rw20", "crps_garch_t"]].iloc[:2].notna().all().all()
    assert table.loc[2, "crps_rw20"] == pytest.approx(table["crps_rw20"][:2].mean())
    assert table["crps_main"].iloc[:2].notna().all()  # the default distribution's
    assert "best_anchor" in format_backtest(table).splitlines()[0]


def test_the_backtest_table_prints_the_default_beside_the_best_anchor():
    """Each fold's CRPS of the default distribution beside the lowest anchor's
    CRPS on the same days, their ratio and which anchor it was."""
    table = pd.DataFrame(
        {
            "fold": [1, 2, "mean"],
            "test_start": ["2020-01-01", "2020-02-01", None],
            "test_end": ["2020-01-31", "2020-02-28", None],
            "test_days": [21, 20, 20.5],
            "model_rmse": [1.0, 1.0, 1.0],
            "naive_rmse": [1.0, 1.0, 1.0],
            "rmse_ratio": [1.0, 1.0, 1.0],
            "model_mae": [1.0, 1.0, 1.0],
            "naive_mae": [1.0, 1.0, 1.0],
            "crps_main": [0.50, 0.60, 0.55],
            "crps_model": [0.52, 0.61, 0.565],
            "crps_conformal": [None, None, None],
            "crps_garch_t": [0.40, 0.70, 0.55],
            "crps_log_har_t": [0.45, 0.50, 0.475],
        }
    )
    printed = format_backtest(table).splitlines()
    assert printed[0].split()[-4:] == [
        "crps",
        "anchor_crps",
        "crps_ratio",
        "best_anchor",
    ]
    first, second, mean = (line.split() for line in printed[1:])
    assert first[-2:] == ["1.2500", "garch_t"]  # 0.50 / 0.40
    assert second[-2:] == ["1.2000", "log_har_t"]  # 0.60 / 0.50
    assert mean[-2:] == ["1.1579", "log_har_t"]  # 0.55 / 0.475


# ------------------------------------------------------------- damaged bundles


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a complete bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="not a directory"):
        load_bundle(tmp_path / "nothing")


def test_missing_scaler(bundle_copy):
    (bundle_copy / "scaler.json").unlink()
    with pytest.raises(
        BundleError, match=r"missing scaler.json.*damaged or incompatible"
    ):
        load_bundle(bundle_copy)


def test_truncated_model(bundle_copy):
    data = (bundle_copy / "model.keras").read_bytes()
    (bundle_copy / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="damaged or incompatible, train it again"):
        load_bundle(bundle_copy)


def test_metadata_that_does_not_match_the_model(bundle_copy):
    (bundle_copy / "manifest.json").unlink()  # an older bundle: no checksums
    path = bundle_copy / "metadata.json"
    meta = json.loads(path.read_text())
    meta["settings"]["prep"]["window"] = 20
    del meta["manifest"]
    path.write_text(json.dumps(meta))
    with pytest.raises(
        BundleError, match="takes window 10 .* metadata.json says window=20"
    ):
        load_bundle(bundle_copy)


def test_unreadable_metadata(bundle_copy):
    (bundle_copy / "manifest.json").unlink()  # an older bundle: no checksums
    (bundle_copy / "metadata.json").write_text("{not json")
    with pytest.raises(BundleError, match="Cannot read metadata.json"):
        load_bundle(bundle_copy)


def test_keras_loads_in_safe_mode(bundle_copy, monkeypatch):
    import keras

    seen = {}
    real = keras.saving.load_model

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    load_keras_model(bundle_copy / "model.keras")
    assert seen.get("safe_mode") is True


def test_bundle_files_are_never_pickles(trained_bundle):
    for path in trained_bundle.iterdir():
        assert path.suffix in {".keras", ".json", ".csv", ".png", ".html"}, path.name
    assert os.path.getsize(trained_bundle / "scaler.json") < 1000
