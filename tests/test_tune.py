"""forecaster/distributed/tune.py: a tiny search on the shared embedded Ray runtime.

Two trials (the base configuration and one sampled) of window 10-12, one layer
of 4 units, 2 epochs.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import make_prices, tiny_settings

from forecaster.errors import ForecasterError
from forecaster.evaluate import baselines

pytestmark = pytest.mark.slow  # run by `pytest -m slow` (and CI), not by default

TRIALS = 2  # the base configuration and one sampled: both run at once on 2 CPUs


def _space():
    from ray import tune

    return {
        "cell": tune.choice(["lstm", "gru"]),
        "window": tune.choice([10, 12]),
        "units": tune.choice([4]),
        "layers": tune.choice([1]),
        "learning_rate": tune.loguniform(1e-3, 1e-2),
        "representation": tune.choice(["delta", "log-delta"]),
        "loss": tune.choice(["student-t", "quantile"]),
    }


def _search(prices, out, **options):
    from forecaster.distributed.tune import run_search

    settings = tiny_settings(model__layers=1)
    return run_search(prices, settings, out, trials=TRIALS, space=_space(), **options)


@pytest.fixture(scope="module")
def search(ray_runtime, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "WALK-search"
    return _search(make_prices(), out)


def test_the_trials_table_has_one_row_per_trial(search):
    table = pd.read_csv(search.out / "trials.csv")
    assert len(table) == TRIALS
    for column in ("trial", "cell", "units", "layers", "window", "dropout"):
        assert column in table
    for column in ("learning_rate", "representation", "loss", "val_score"):
        assert column in table
    # a distribution head's score: validation CRPS / the best anchor's there
    assert (table["val_score"] > 0.5).all() and (table["val_score"] < 2).all()
    anchors = set(baselines.REGISTRY) - set(baselines.MODEL_BANDS)
    assert table["reference"].isin(anchors).all()
    assert table["val_score"].is_monotonic_increasing  # best first
    assert (table["status"] == "done").all()
    assert table["default"].sum() == 1  # the base settings were tried
    default = table[table["default"]].iloc[0]
    assert (default["window"], default["cell"], default["units"]) == (10, "lstm", 4)
    assert search.best_score == table["val_score"].iloc[0]


def test_the_best_configuration_is_retrained_into_a_bundle_naming_its_search(search):
    from forecaster.api import load

    metadata = json.loads((search.bundle / "metadata.json").read_text())
    record = metadata["search"]
    assert record["trials"] == TRIALS
    assert record["best_validation_score"] == pytest.approx(search.best_score)
    assert record["seed"] == 42
    assert record["metric"].startswith("val_score: validation CRPS / the best anchor")
    assert record["reference"] == search.reference == search.trials["reference"][0]
    settings = metadata["settings"]
    assert settings["prep"]["window"] == search.best["window"]
    assert settings["model"]["cell"] == search.best["cell"]
    assert "naive" in search.metrics and "model" in search.metrics
    assert len(load(search.bundle).forecast(2)) == 2


def test_the_test_part_never_changes_the_scores_of_the_search(search, tmp_path):
    """Same trials on a series whose test part is replaced: same scores."""
    prices = make_prices()
    n_train = int(len(prices) * 0.75)
    changed = prices.copy()
    changed.iloc[n_train:] *= 3.0
    other = _search(changed, tmp_path / "changed")
    key = ["cell", "window", "learning_rate", "representation"]
    first = search.trials.sort_values(key)["val_score"].to_numpy()
    second = other.trials.sort_values(key)["val_score"].to_numpy()
    assert first == pytest.approx(second, rel=1e-6)
    assert other.metrics["model"]["rmse"] != search.metrics["model"]["rmse"]


def test_resume_continues_the_search_where_it_stands(search):
    again = _search(make_prices(), search.out, resume=True)
    assert len(again.trials) == TRIALS
    assert again.best == search.best


def test_an_existing_search_is_not_overwritten(search):
    with pytest.raises(ForecasterError, match="already exists: pass resume=True"):
        _search(make_prices(), search.out)


def test_the_space_and_the_trials_are_checked(ray_runtime, tmp_path):
    from forecaster.distributed.tune import run_search

    with pytest.raises(ForecasterError, match=r"trials must be at least 1\. "):
        run_search(make_prices(), tiny_settings(), tmp_path, trials=0)
    with pytest.raises(ForecasterError, match="cannot change: epochs; choose among"):
        run_search(make_prices(), tiny_settings(), tmp_path, space={"epochs": 3})


def test_finished_trials_log_done_left_and_time_left(caplog):
    import logging

    from ray import tune

    from forecaster.distributed.tune import _progress_callback

    class Trial:
        def __init__(self, trial_id):
            self.trial_id = trial_id

    callback = _progress_callback(tune, 3)
    with caplog.at_level(logging.INFO, logger="forecaster"):
        callback.on_trial_complete(0, [], Trial("a1"))
        callback.on_trial_error(1, [], Trial("b2"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("trial 1/3 (a1): 1 done, 2 left, about ")
    assert lines[1].startswith("trial 2/3 (b2, failed): 2 done, 1 left, about ")


def test_the_loss_is_searched_among_heads_of_one_kind():
    pytest.importorskip("ray")
    from forecaster.distributed.tune import default_space

    assert set(default_space()["loss"].categories) == {
        "student-t",
        "normal",
        "quantile",
    }
    assert "loss" not in default_space(tiny_settings(model__loss="mse"))
