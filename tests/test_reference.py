"""Tests for forecaster/model/reference.py: NumPy reproduces our Keras models."""

import io
import itertools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from forecaster.config import ModelSettings
from forecaster.errors import BundleError, ForecasterError, UnsupportedModelError
from forecaster.model.factory import build_model
from forecaster.model.reference import ReferenceModel, is_supported

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5

# Every cell, depth 1 and 2, one-way and bidirectional, horizon 1 and 3;
# depth 3 for LSTM and GRU.
CASES = list(itertools.product(("lstm", "gru", "rnn"), (1, 2), (False, True), (1, 3)))
CASES += [("lstm", 3, True, 3), ("gru", 3, False, 1)]


def _tiny_settings(cell, layers, bidirectional):
    """Tiny layers; Dropout between stacked layers, so its inference identity is
    tested too."""
    return ModelSettings(
        cell=cell,
        units=3 if bidirectional else 4,
        layers=layers,
        dropout=0.2 if layers > 1 else 0.0,
        bidirectional=bidirectional,
        loss="mse",  # the heads' own agreement is in tests/test_heads.py
    )


def _randomize(model, seed):
    """Replace every weight, biases included, by non-zero N(0, 0.5) values."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(0.0, 0.5, weight.shape).astype("float32")
            for weight in model.get_weights()
        ]
    )


def _windows(model, seed, batch=6):
    _, window, n_features = model.input_shape
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, window, n_features)).astype("float32")


def _save(model, directory, name="model.keras"):
    path = Path(directory) / name
    model.save(path)
    return path


@pytest.fixture(scope="module")
def saved_lstm(tmp_path_factory):
    """A small stacked LSTM with random weights: (Keras model, path, windows)."""
    keras.utils.set_random_seed(7)
    model = build_model(_tiny_settings("lstm", 2, False), window=5, horizon=2)
    _randomize(model, seed=7)
    path = _save(model, tmp_path_factory.mktemp("lstm"))
    return model, path, _windows(model, seed=8)


@pytest.mark.parametrize(("cell", "layers", "bidirectional", "horizon"), CASES)
def test_reference_matches_keras(tmp_path, cell, layers, bidirectional, horizon):
    keras.utils.set_random_seed(0)
    n_features = 2 if horizon == 3 else 1
    model = build_model(
        _tiny_settings(cell, layers, bidirectional),
        window=4 + layers,
        horizon=horizon,
        n_features=n_features,
    )
    _randomize(model, seed=layers * 10 + horizon)
    x = _windows(model, seed=1)

    reference = ReferenceModel.load(_save(model, tmp_path))

    assert (reference.window, reference.n_features, reference.n_outputs) == (
        4 + layers,
        n_features,
        horizon,
    )
    predicted = reference.predict(x)
    assert predicted.shape == (6, horizon)
    assert predicted.dtype == np.float32
    assert np.abs(predicted - model.predict(x, verbose=0)).max() < TOLERANCE


@pytest.mark.slow
def test_reference_matches_keras_after_training(tmp_path):
    keras.utils.set_random_seed(3)
    model = build_model(_tiny_settings("gru", 2, True), window=6, horizon=2)
    x = _windows(model, seed=4, batch=16)
    y = np.random.default_rng(5).normal(size=(16, 2)).astype("float32")
    before = [weight.copy() for weight in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = model.get_weights()
    assert any(
        not np.array_equal(old, new) for old, new in zip(before, after, strict=True)
    )

    reference = ReferenceModel.load(_save(model, tmp_path))

    assert np.abs(reference.predict(x) - model.predict(x, verbose=0)).max() < TOLERANCE


def test_predict_rejects_windows_of_the_wrong_shape(saved_lstm):
    _, path, x = saved_lstm
    with pytest.raises(
        ForecasterError,
        match=r"x must have shape \(batch, 5, 1\)\. Received: x.shape=\(6, 4, 1\)",
    ):
        ReferenceModel.load(path).predict(x[:, :4])


def test_loading_and_predicting_never_imports_tensorflow(saved_lstm, tmp_path):
    model, path, x = saved_lstm
    np.save(tmp_path / "x.npy", x)
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from forecaster.model.reference import ReferenceModel\n"
        f"reference = ReferenceModel.load({str(path)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, "
        f"reference.predict(np.load({str(tmp_path / 'x.npy')!r})))\n"
        "print(json.dumps([m for m in ('tensorflow', 'keras') if m in sys.modules]))\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    predicted = np.load(tmp_path / "y.npy")
    assert np.abs(predicted - model.predict(x, verbose=0)).max() < TOLERANCE


# --------------------------------------------------------------------------
# Models the reference does not run


def _sequential(*layers, window=6):
    return keras.Sequential([keras.Input(shape=(window, 1)), *layers])


UNSUPPORTED = {
    "conv1d": (
        lambda: _sequential(
            keras.layers.Conv1D(2, 3, name="smoother"),
            keras.layers.LSTM(3),
            keras.layers.Dense(1),
        ),
        r"^layer 'smoother' \(Conv1D\) is not supported by the NumPy reference, "
        r"which runs InputLayer, Dropout, Dense, Bidirectional, SimpleRNN, LSTM, "
        r"GRU, MoveChannel, DistributionHead; run this model with Keras\.$",
    ),
    "relu_lstm": (
        lambda: _sequential(
            keras.layers.LSTM(3, activation="relu", name="relu_lstm"),
            keras.layers.Dense(1),
        ),
        r"^layer 'relu_lstm' \(LSTM\) has activation='relu', which the NumPy "
        r"reference does not support \(only activation='tanh' is\); run this model "
        r"with Keras\.$",
    ),
    "gru_reset_before": (
        lambda: _sequential(
            keras.layers.GRU(3, reset_after=False, name="old_gru"),
            keras.layers.Dense(1),
        ),
        r"layer 'old_gru' \(GRU\) has reset_after=False",
    ),
    "no_bias": (
        lambda: _sequential(
            keras.layers.SimpleRNN(3, use_bias=False, name="plain"),
            keras.layers.Dense(1),
        ),
        r"layer 'plain' \(SimpleRNN\) has use_bias=False",
    ),
    "go_backwards": (
        lambda: _sequential(
            keras.layers.LSTM(3, go_backwards=True, name="rev"), keras.layers.Dense(1)
        ),
        r"layer 'rev' \(LSTM\) has go_backwards=True",
    ),
    "merge_sum": (
        lambda: _sequential(
            keras.layers.Bidirectional(
                keras.layers.GRU(3), merge_mode="sum", name="both_ways"
            ),
            keras.layers.Dense(1),
        ),
        r"layer 'both_ways' \(Bidirectional\) has merge_mode='sum'",
    ),
    "relu_dense": (
        lambda: _sequential(
            keras.layers.LSTM(3), keras.layers.Dense(1, activation="relu", name="head")
        ),
        r"layer 'head' \(Dense\) has activation='relu'",
    ),
    "sequence_output": (
        lambda: _sequential(
            keras.layers.LSTM(3, return_sequences=True),
            keras.layers.Dense(1, name="per_step"),
        ),
        r"layer 'per_step' \(Dense\) receives a sequence",
    ),
    "functional": (
        lambda: keras.Model(*_functional_io()),
        r"model class 'Functional' is not supported",
    ),
}


def _functional_io():
    inputs = keras.Input(shape=(6, 1))
    return inputs, keras.layers.Dense(1)(keras.layers.LSTM(3)(inputs))


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_layers_are_named(tmp_path, case):
    make_model, message = UNSUPPORTED[case]
    path = _save(make_model(), tmp_path)
    with pytest.raises(UnsupportedModelError, match=message):
        ReferenceModel.load(path)
    assert is_supported(path) is False


def test_is_supported_for_a_project_model(saved_lstm):
    _, path, _ = saved_lstm
    assert is_supported(path) is True


# --------------------------------------------------------------------------
# Damaged files

DAMAGED = (
    r"^model file '.*' is damaged or incompatible \({}.*\); train the model again "
    r"to write a new one\.$"
)


def test_missing_file_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match=DAMAGED.format("no such file")):
        ReferenceModel.load(tmp_path / "absent.keras")


def test_truncated_file_is_a_bundle_error(saved_lstm, tmp_path):
    _, path, _ = saved_lstm
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BundleError, match=DAMAGED.format("not a readable .keras")):
        ReferenceModel.load(truncated)


def test_text_file_is_a_bundle_error(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    with pytest.raises(BundleError, match="is damaged or incompatible"):
        ReferenceModel.load(path)


def _rewrite_archive(source, target, replace):
    """Copy the .keras zip, replacing members by name (None drops one)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for member in old.namelist():
            data = replace.get(member, old.read(member))
            if data is not None:
                new.writestr(member, data)
    return target


def test_archive_without_weights_is_a_bundle_error(saved_lstm, tmp_path):
    _, path, _ = saved_lstm
    broken = _rewrite_archive(
        path, tmp_path / "broken.keras", {"model.weights.h5": None}
    )
    with pytest.raises(
        BundleError, match=DAMAGED.format("the archive has no model.weights.h5")
    ):
        ReferenceModel.load(broken)


def test_garbled_weights_are_a_bundle_error(saved_lstm, tmp_path):
    _, path, _ = saved_lstm
    broken = _rewrite_archive(
        path,
        tmp_path / "broken.keras",
        {"model.weights.h5": b"\x89HDF\r\n" + bytes(200)},
    )
    with pytest.raises(BundleError, match="its weights cannot be read"):
        ReferenceModel.load(broken)


def test_weights_of_another_model_are_a_bundle_error(saved_lstm, tmp_path):
    _, path, _ = saved_lstm
    wider = build_model(
        ModelSettings(cell="lstm", units=5, layers=2, loss="mse"), window=5, horizon=2
    )
    with zipfile.ZipFile(_save(wider, tmp_path, "wider.keras")) as archive:
        wider_config = archive.read("config.json")
    mixed = _rewrite_archive(
        path, tmp_path / "mixed.keras", {"config.json": wider_config}
    )
    with pytest.raises(
        BundleError, match=r"/cell/vars/0 has shape \(1, 16\), expected \(1, 20\)"
    ):
        ReferenceModel.load(mixed)


def test_weights_are_found_by_layer_name_when_their_group_moves(saved_lstm, tmp_path):
    model, path, x = saved_lstm
    with zipfile.ZipFile(path) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "r+") as weights_file:
        weights_file.move("layers/lstm_1", "layers/second_lstm")
    moved = _rewrite_archive(
        path, tmp_path / "moved.keras", {"model.weights.h5": weights.getvalue()}
    )

    predicted = ReferenceModel.load(moved).predict(x)

    assert np.abs(predicted - model.predict(x, verbose=0)).max() < TOLERANCE


@pytest.mark.parametrize("cell, blocks", [("LSTM", 4), ("GRU", 3), ("SimpleRNN", 1)])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_fused_loop_equals_the_step_functions(cell, blocks, return_sequences):
    from forecaster.model.cells import (
        CellWeights,
        run_recurrent,
        run_recurrent_stepwise,
    )

    rng = np.random.default_rng(3)
    units, n_in = 5, 2
    bias_shape = (2, blocks * units) if cell == "GRU" else (blocks * units,)
    weights = CellWeights(
        kernel=rng.normal(size=(n_in, blocks * units)),
        recurrent_kernel=rng.normal(size=(units, blocks * units)),
        bias=rng.normal(size=bias_shape),
    )
    x = rng.normal(size=(4, 9, n_in))
    np.testing.assert_allclose(
        run_recurrent(cell, weights, x, return_sequences),
        run_recurrent_stepwise(cell, weights, x, return_sequences),
        atol=1e-12,
    )


@pytest.mark.parametrize("units", [[3], [4, 4], [5, 3, 4]])
def test_wavefront_lstm_stack_equals_layer_by_layer(units):
    from forecaster.model.cells import CellWeights, DenseLayer, RecurrentLayer

    rng = np.random.default_rng(len(units))
    layers, n_in = [], 2
    for k, u in enumerate(units):
        cell = CellWeights(
            rng.normal(size=(n_in, 4 * u)),
            rng.normal(size=(u, 4 * u)),
            rng.normal(size=4 * u),
        )
        layers.append(
            RecurrentLayer(f"lstm_{k}", "LSTM", cell, None, k < len(units) - 1)
        )
        n_in = u
    layers.append(
        DenseLayer("forecast", rng.normal(size=(n_in, 2)), rng.normal(size=2))
    )
    model = ReferenceModel(layers, window=7, n_features=2)
    assert model.stacked_lstm is not None
    x = rng.normal(size=(5, 7, 2))
    np.testing.assert_allclose(
        model.predict(x), model.predict_layer_by_layer(x), atol=1e-5
    )
