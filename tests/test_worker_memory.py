"""forecaster/distributed/fanout.py: a worker releases each training's memory, no XLA.

Runs `train_task` in this process, as a Ray worker would (no Ray needed),
with tiny models (tests/conftest.py `tiny_settings`).
"""

from __future__ import annotations

import gc
import sys

import keras
import pytest
from conftest import make_prices, tiny_settings
from tensorflow.python.framework.func_graph import FuncGraph

from forecaster.api import Forecaster
from forecaster.distributed import fanout, tune
from forecaster.train import fit


def _fresh_layer_name() -> str:
    """A new layer's automatic name: Keras' counters restart only with a new session."""
    return keras.layers.Dense(1).name


@pytest.mark.slow
@pytest.mark.parametrize("days", [260, 20], ids=["trained", "failed"])
def test_every_training_in_a_worker_ends_by_clearing_keras_state(
    tmp_path, monkeypatch, days
):
    calls = []
    real = fanout.release_worker_memory
    monkeypatch.setattr(
        fanout,
        "release_worker_memory",
        lambda *before: calls.append(1) or real(*before),
    )
    compiled = []  # jit_compile of every Keras engine the task builds
    engine = Forecaster._keras_engine
    monkeypatch.setattr(
        Forecaster,
        "_keras_engine",
        lambda self, model, jit_compile: (
            compiled.append(jit_compile) or engine(self, model, jit_compile)
        ),
    )
    keras.backend.clear_session()
    _fresh_layer_name()
    assert _fresh_layer_name() != "dense"  # the counter runs on within a session
    prices = make_prices(n=days, seed=4)  # 20 days: too short for window 10
    if days < 100:
        with pytest.raises(Exception, match="need at least"):
            fanout.train_task("S", prices, tiny_settings(), str(tmp_path / "S"), None)
    else:
        done = fanout.train_task(
            "S", prices, tiny_settings(), str(tmp_path / "S"), None
        )
        assert done["metrics"]["model"]["rmse"] > 0
        assert done["held_mb"] is None or done["held_mb"] > 0
        assert compiled == [False]  # the test-day evaluation ran without XLA
    assert calls == [1]
    assert _fresh_layer_name() == "dense"  # the training's session was cleared


def test_release_worker_memory_without_keras_loaded_only_collects(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras")
    fanout.release_worker_memory()  # must not import Keras, nor fail
    assert "keras" not in sys.modules


def _live_optimizer_graphs() -> int:
    """Traced graphs of Adam's variables (tf.cond branches) alive in this process."""
    gc.collect()
    return sum(
        isinstance(o, FuncGraph) and o.name.startswith("adam") and "_cond_" in o.name
        for o in gc.get_objects()
    )


@pytest.mark.slow
def test_a_finished_training_leaves_none_of_its_optimizers_graphs(tmp_path):
    # Adam's variables, built inside the first traced step, left a pair of
    # tf.cond graphs each alive after the task (the worker's growth).
    before = _live_optimizer_graphs()
    prices = make_prices(n=260, seed=4)
    fanout.train_task("S", prices, tiny_settings(), str(tmp_path / "S"), None)
    assert _live_optimizer_graphs() == before


def _live_graphs() -> int:
    """Traced graphs (FuncGraph) alive in this process."""
    gc.collect()
    return sum(isinstance(o, FuncGraph) for o in gc.get_objects())


@pytest.mark.slow
def test_a_finished_training_leaves_no_traced_graph_nor_custom_gradient(tmp_path):
    # Each traced train step registered a custom gradient (Keras' all_reduce of
    # the gradients) in TensorFlow's process-wide registry, whose closure kept
    # the step's graph and its LSTM loops alive: 5 graphs more per training.
    prices = make_prices(n=260, seed=4)
    fanout.train_task("A", prices, tiny_settings(), str(tmp_path / "A"), None)
    graphs, gradients = _live_graphs(), fanout.registered_gradients()
    fanout.train_task("B", prices, tiny_settings(), str(tmp_path / "B"), None)
    assert _live_graphs() == graphs
    assert fanout.registered_gradients() == gradients


def test_release_worker_memory_drops_only_the_gradients_registered_since(
    monkeypatch,
):
    registry = {"CustomGradient-1": 1, "CustomGradient-2": 2, "MatMul": 3}
    monkeypatch.setattr(fanout, "_gradient_registry", lambda: registry)
    assert fanout.registered_gradients() == {"CustomGradient-1", "CustomGradient-2"}
    fanout.release_worker_memory({"CustomGradient-1"})
    assert registry == {"CustomGradient-1": 1, "MatMul": 3}
    fanout.release_worker_memory()  # no snapshot: nothing dropped
    assert registry == {"CustomGradient-1": 1, "MatMul": 3}


@pytest.mark.parametrize("fails", [False, True], ids=["trained", "failed"])
def test_a_tune_trial_releases_what_it_left(monkeypatch, fails):
    """Ray Tune reuses a worker for later trials: each trial releases its
    training's state, as a fan-out task does, whether it trained or failed."""

    def fake_fit(prepared, settings, callbacks):
        if fails:
            raise RuntimeError("the trial's fit failed")

    released = []
    monkeypatch.setattr(fit, "fit_model", fake_fit)
    monkeypatch.setattr(tune, "_validation_reporter", lambda *_: None)
    monkeypatch.setattr(tune, "registered_gradients", lambda: {"before"})
    monkeypatch.setattr(tune, "release_worker_memory", released.append)
    prices = tune._as_series(make_prices(n=120), None)
    if fails:
        with pytest.raises(RuntimeError, match="fit failed"):
            tune._trial({}, prices, tiny_settings())
    else:
        tune._trial({}, prices, tiny_settings())
    assert released == [{"before"}]
