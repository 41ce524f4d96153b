"""The NumPy engine's path sampler: shared window starts, the draws, BLAS threads."""

import keras
import numpy as np
import pytest
from scipy import special, stats
from threadpoolctl import threadpool_info, threadpool_limits

from forecaster.config import ModelSettings
from forecaster.model.draws import cosine_basis, path_uniforms
from forecaster.model.engines import Engine, NumpyEngine
from forecaster.model.factory import build_model

WINDOW = 8


def _student_t_lstm(directory, horizon: int, layers: int = 2):
    """A saved student-t LSTM stack with random weights, large enough to bend paths."""
    keras.utils.set_random_seed(3)
    settings = ModelSettings(units=6, layers=layers, loss="student-t")
    model = build_model(settings, window=WINDOW, horizon=horizon, scales=(0.02, 0.02))
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(0, 0.6, w.shape) for w in model.get_weights()])
    path = directory / "model.keras"
    model.save(path)
    return path


def _contexts(rows: int) -> np.ndarray:
    rng = np.random.default_rng(9)
    return 0.5 + np.cumsum(rng.normal(0, 0.02, (rows, WINDOW)), axis=1)


@pytest.mark.parametrize(
    ("representation", "horizon", "block", "layers"),
    [("log-delta", 1, 1, 2), ("level", 1, 1, 3), ("delta", 3, 2, 1)],
)
def test_shared_starts_draw_the_paths_of_whole_windows(
    tmp_path, representation, horizon, block, layers
):
    path = _student_t_lstm(tmp_path, horizon, layers)
    engine = NumpyEngine(path, representation, WINDOW, horizon)
    assert engine.model.stacked_lstm is not None
    steps = WINDOW + 5  # later calls hold no context at all
    fast = engine.sample_paths(_contexts(3), steps, samples=40, seed=1, block=block)
    whole = Engine._draw_paths  # every path's whole window through the model
    engine._draw_paths = lambda *args: whole(engine, *args)
    slow = engine.sample_paths(_contexts(3), steps, samples=40, seed=1, block=block)
    assert np.ptp(slow[:, :, -1], axis=1).min() > 0.01  # the paths spread apart
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def _numpy_blas_threads() -> set:
    """Thread counts of the BLAS that NumPy's matmul uses (not scipy's own copy)."""
    return {
        lib["num_threads"]
        for lib in threadpool_info()
        if lib["user_api"] == "blas" and "numpy" in lib["filepath"]
    }


def test_the_engine_runs_its_products_on_one_blas_thread(tmp_path):
    if not _numpy_blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library inside numpy")
    engine = NumpyEngine(_student_t_lstm(tmp_path, 1), "log-delta", WINDOW, 1)
    seen = []
    predict = engine.model.predict

    def recording(x):
        seen.append(_numpy_blas_threads())
        return predict(x)

    engine.model.predict = recording
    with threadpool_limits(limits=2, user_api="blas"):
        before = _numpy_blas_threads()
        engine.forecast(_contexts(2), steps=2)
        after = _numpy_blas_threads()
    if before != {2}:
        pytest.skip(f"this BLAS cannot run 2 threads: {before}")
    assert seen == [{1}, {1}] and after == {2}  # the process keeps its own setting


def test_path_uniforms_repeat_for_a_seed_and_are_uniform():
    draws = path_uniforms(seed=3, samples=2048, steps=30)
    assert draws.shape == (2048, 30) and 0 < draws.min() and draws.max() < 1
    np.testing.assert_array_equal(draws, path_uniforms(seed=3, samples=2048, steps=30))
    assert not np.allclose(draws, path_uniforms(seed=4, samples=2048, steps=30))
    for step in (0, 14, 29):
        assert stats.kstest(draws[:, step], "uniform").pvalue > 1e-3
    # steps are independent within a path: no correlation between two of them
    assert abs(np.corrcoef(special.ndtri(draws[:, [2, 20]]).T)[0, 1]) < 0.1


def test_path_uniforms_stratify_the_sum_of_each_paths_shocks():
    samples, steps = 500, 30
    shocks = special.ndtri(path_uniforms(seed=0, samples=samples, steps=steps))
    level = special.ndtr(shocks.sum(axis=1) / np.sqrt(steps))
    np.testing.assert_array_equal(
        np.sort(np.floor(level * samples)), np.arange(samples)
    )


def test_cosine_basis_is_orthonormal_with_a_constant_first_vector():
    basis = cosine_basis(7)
    np.testing.assert_allclose(basis.T @ basis, np.eye(7), atol=1e-12)
    np.testing.assert_allclose(basis[:, 0], 1 / np.sqrt(7))


def test_path_chunks_on_threads_draw_the_same_paths(tmp_path, monkeypatch):
    from forecaster.model import sampler

    engine = NumpyEngine(_student_t_lstm(tmp_path, 1), "log-delta", WINDOW, 1)
    monkeypatch.setattr(sampler, "PATH_CHUNK", 16)  # 120 paths: 8 chunks
    monkeypatch.setattr(sampler, "PATH_THREADS", 1)
    alone = engine.sample_paths(_contexts(3), 12, samples=40, seed=5)
    monkeypatch.setattr(sampler, "PATH_THREADS", 3)
    threaded = engine.sample_paths(_contexts(3), 12, samples=40, seed=5)
    np.testing.assert_array_equal(threaded, alone)
    assert np.ptp(alone[:, :, -1]) > 0.01
