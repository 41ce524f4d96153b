"""Tests for forecaster.model.factory: the factory builds the stacks it is asked for."""

import pytest

from forecaster.config import ModelSettings
from forecaster.errors import ForecasterError
from forecaster.model.factory import build_model


def _recurrent(model):
    return [
        layer
        for layer in model.layers
        if layer.__class__.__name__ in ("LSTM", "GRU", "SimpleRNN", "Bidirectional")
    ]


@pytest.mark.parametrize(
    "cell, kind", [("lstm", "LSTM"), ("gru", "GRU"), ("rnn", "SimpleRNN")]
)
def test_three_cells(cell, kind):
    model = build_model(
        ModelSettings(cell=cell, units=3, layers=2, loss="mse"), window=7, horizon=1
    )
    layers = _recurrent(model)
    assert [layer.__class__.__name__ for layer in layers] == [kind, kind]
    assert layers[0].return_sequences and not layers[1].return_sequences
    assert model.input_shape == (None, 7, 1)
    assert model.output_shape == (None, 1)
    assert model.loss == "mse"
    assert model.optimizer.__class__.__name__ == "Adam"


def test_default_is_the_classic_stacked_lstm():
    model = build_model(ModelSettings(), window=100)
    layers = _recurrent(model)
    assert [(layer.__class__.__name__, layer.units) for layer in layers] == [
        ("LSTM", 50)
    ] * 3
    # the default head: a Student-t of the next move (forecaster.model.heads)
    assert [layer.name for layer in model.layers][0] == "moves"
    assert model.layers[-2].units == 3 and model.layers[-1].kind == "student-t"
    assert model.output_shape == (None, 1, 3)


def test_depth_dropout_and_horizon():
    model = build_model(
        ModelSettings(cell="gru", units=2, layers=4, dropout=0.2, loss="mse"),
        window=5,
        horizon=3,
    )
    assert len(_recurrent(model)) == 4
    assert sum(layer.__class__.__name__ == "Dropout" for layer in model.layers) == 4
    assert model.output_shape == (None, 3)


def test_bidirectional_wraps_every_layer():
    model = build_model(
        ModelSettings(cell="lstm", units=3, layers=2, bidirectional=True), window=6
    )
    layers = _recurrent(model)
    assert all(layer.__class__.__name__ == "Bidirectional" for layer in layers)
    assert layers[0].output.shape[-1] == 6


def test_cudnn_compatible_defaults():
    model = build_model(ModelSettings(cell="gru", units=2, layers=1), window=4)
    gru = _recurrent(model)[0]
    assert gru.reset_after and gru.recurrent_dropout == 0 and not gru.unroll
    assert gru.activation.__name__ == "tanh"
    assert gru.recurrent_activation.__name__ == "sigmoid"


def test_unknown_cell_lists_valid_ones():
    with pytest.raises(
        ForecasterError,
        match="Unknown cell 'transformer': choose one of lstm, gru, rnn",
    ):
        build_model(ModelSettings(cell="transformer"), window=10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units=0"),
        ({"layers": 0}, "layers=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
    ],
)
def test_bad_model_settings(kwargs, match):
    with pytest.raises(ForecasterError, match=match):
        build_model(ModelSettings(**kwargs), window=10)
