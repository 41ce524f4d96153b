"""Tests for forecaster.config: exact error messages, defaults, the saved round trip."""

import dataclasses
import json
import re

import pytest

from forecaster.config import (
    CELLS,
    REPRESENTATIONS,
    DataSettings,
    ModelSettings,
    PrepSettings,
    Settings,
    TrainSettings,
    check_choice,
)
from forecaster.errors import ForecasterError


def exactly(message: str) -> str:
    """A `match=` pattern that accepts `message` and nothing longer or shorter."""
    return f"^{re.escape(message)}$"


PREP_ERRORS = [
    ({"window": 0}, "window must be at least 1. Received: window=0"),
    ({"window": -5}, "window must be at least 1. Received: window=-5"),
    ({"horizon": 0}, "horizon must be at least 1. Received: horizon=0"),
    (
        {"train_fraction": 0.0},
        "train_fraction must be between 0 and 1 (exclusive). "
        "Received: train_fraction=0.0",
    ),
    (
        {"train_fraction": 1.0},
        "train_fraction must be between 0 and 1 (exclusive). "
        "Received: train_fraction=1.0",
    ),
    (
        {"train_fraction": 1.5},
        "train_fraction must be between 0 and 1 (exclusive). "
        "Received: train_fraction=1.5",
    ),
    (
        {"val_fraction": 0.0},
        "val_fraction must be between 0 and 1 (exclusive). Received: val_fraction=0.0",
    ),
    (
        {"val_fraction": 1},
        "val_fraction must be between 0 and 1 (exclusive). Received: val_fraction=1",
    ),
    (
        {"representation": "levels"},
        "Unknown representation 'levels': choose one of level, delta, log-delta.",
    ),
]

MODEL_ERRORS = [
    (
        {"cell": "transformer"},
        "Unknown cell 'transformer': choose one of lstm, gru, rnn.",
    ),
    ({"cell": "LSTM"}, "Unknown cell 'LSTM': choose one of lstm, gru, rnn."),
    ({"units": 0}, "units must be at least 1. Received: units=0"),
    ({"layers": 0}, "layers must be at least 1. Received: layers=0"),
    ({"dropout": -0.1}, "dropout must be in [0, 1). Received: dropout=-0.1"),
    ({"dropout": 1.0}, "dropout must be in [0, 1). Received: dropout=1.0"),
    (
        {"learning_rate": 0.0},
        "learning_rate must be positive. Received: learning_rate=0.0",
    ),
    (
        {"learning_rate": -0.001},
        "learning_rate must be positive. Received: learning_rate=-0.001",
    ),
]

TRAIN_ERRORS = [
    ({"epochs": 0}, "epochs must be at least 1. Received: epochs=0"),
    ({"batch_size": 0}, "batch_size must be at least 1. Received: batch_size=0"),
    ({"patience": -1}, "patience must be 0 or more. Received: patience=-1"),
]


@pytest.mark.parametrize("changes, message", PREP_ERRORS)
def test_prep_settings_errors_name_the_argument_and_value(changes, message):
    with pytest.raises(ForecasterError, match=exactly(message)):
        PrepSettings(**changes).validate()


@pytest.mark.parametrize("changes, message", MODEL_ERRORS)
def test_model_settings_errors_name_the_argument_and_value(changes, message):
    with pytest.raises(ForecasterError, match=exactly(message)):
        ModelSettings(**changes).validate()


@pytest.mark.parametrize("changes, message", TRAIN_ERRORS)
def test_train_settings_errors_name_the_argument_and_value(changes, message):
    with pytest.raises(ForecasterError, match=exactly(message)):
        TrainSettings(**changes).validate()


@pytest.mark.parametrize(
    "part, changes, message",
    [("prep", *case) for case in PREP_ERRORS[:1]]
    + [("model", *case) for case in MODEL_ERRORS[:1]]
    + [("train", *case) for case in TRAIN_ERRORS[:1]],
)
def test_settings_validate_checks_every_part(part, changes, message):
    settings = Settings()
    for name, value in changes.items():
        setattr(getattr(settings, part), name, value)
    with pytest.raises(ForecasterError, match=exactly(message)):
        settings.validate()


def test_errors_are_value_errors():
    # callers that catch ValueError (as scripts and notebooks do) catch these
    with pytest.raises(ValueError):
        TrainSettings(epochs=0).validate()


@pytest.mark.parametrize(
    "settings",
    [
        PrepSettings(window=1, horizon=1, train_fraction=0.01, val_fraction=0.99),
        PrepSettings(representation="log-delta"),
        ModelSettings(cell="rnn", units=1, layers=1, dropout=0.0),
        ModelSettings(cell="gru", dropout=0.999, learning_rate=1e-9),
        TrainSettings(epochs=1, batch_size=1, patience=0),
    ],
)
def test_values_on_the_edge_of_each_range_are_accepted(settings):
    assert settings.validate() is None


def test_defaults_are_valid_and_validate_returns_the_settings():
    settings = Settings()
    assert settings.validate() is settings


def test_data_settings_are_not_validated_here():
    # where prices come from is checked when they are loaded, not by Settings
    settings = Settings(data=DataSettings(csv="missing.csv", start="not a date"))
    assert settings.validate() is settings


def changed_settings() -> Settings:
    """Settings with a non-default value in every field."""
    return Settings(
        data=DataSettings(
            csv="prices.csv",
            ticker="MSFT",
            start="2015-01-02",
            end="2024-12-31",
            column="Close",
            cache_dir="elsewhere",
            decimal=",",
            csv_dir="prices",
            skip_bad=True,
            covariate=["index.csv"],
            calendar="XLON",
        ),
        prep=PrepSettings(
            window=30,
            horizon=5,
            train_fraction=0.8,
            val_fraction=0.2,
            representation="level",
            features="close,range",
        ),
        model=ModelSettings(
            cell="gru",
            units=16,
            layers=2,
            dropout=0.25,
            bidirectional=True,
            learning_rate=0.005,
            clipnorm=1.0,
            loss="mse",
            df_gain=20.0,
            objective="direction",
        ),
        train=TrainSettings(
            epochs=7,
            batch_size=64,
            patience=2,
            seed=7,
            devices=2,
            ray_workers=2,
            verbose=0,
            calibrate=True,
        ),
    )


def test_changed_settings_differ_from_the_defaults_in_every_field():
    # guards the round-trip tests below: a field left at its default there
    # would round-trip even if from_dict dropped it
    changed, default = changed_settings().to_dict(), Settings().to_dict()
    for part, fields in default.items():
        for name, value in fields.items():
            assert changed[part][name] != value, f"{part}.{name}"


def test_to_dict_gives_one_plain_dict_per_part():
    raw = changed_settings().to_dict()
    assert set(raw) == {"data", "prep", "model", "train"}
    assert raw["prep"] == {
        "window": 30,
        "horizon": 5,
        "train_fraction": 0.8,
        "val_fraction": 0.2,
        "representation": "level",
        "features": "close,range",
    }
    assert raw["model"]["cell"] == "gru" and raw["train"]["seed"] == 7


def test_round_trip_through_json():
    settings = changed_settings()
    rebuilt = Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert rebuilt == settings
    assert rebuilt is not settings and rebuilt.prep is not settings.prep


def test_from_dict_ignores_keys_this_version_lacks():
    raw = changed_settings().to_dict()
    raw["prep"]["covariates"] = ["VIX"]
    raw["model"]["attention_heads"] = 4
    raw["optimizer"] = {"name": "sgd"}  # a whole part this version lacks
    assert Settings.from_dict(raw) == changed_settings()


def test_from_dict_fills_missing_keys_and_parts_with_defaults():
    rebuilt = Settings.from_dict({"model": {"cell": "rnn"}, "train": {}})
    expected = Settings()
    expected.model.cell = "rnn"
    assert rebuilt == expected


def test_from_dict_does_not_validate():
    # load_bundle validates after rebuilding, so the message names the value
    rebuilt = Settings.from_dict({"prep": {"window": 0}})
    assert rebuilt.prep.window == 0
    with pytest.raises(ForecasterError, match=exactly(PREP_ERRORS[0][1])):
        rebuilt.validate()


def test_every_field_has_a_default():
    for kind in (DataSettings, PrepSettings, ModelSettings, TrainSettings, Settings):
        for f in dataclasses.fields(kind):
            assert (
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING
            ), f"{kind.__name__}.{f.name}"


def test_check_choice_lists_the_valid_choices():
    with pytest.raises(
        ForecasterError,
        match=exactly("Unknown colour 'teal': choose one of red, green, blue."),
    ):
        check_choice("colour", "teal", ("red", "green", "blue"))


def test_check_choice_accepts_each_valid_choice():
    for choice in CELLS:
        assert check_choice("cell", choice, CELLS) is None
    for choice in REPRESENTATIONS:
        assert check_choice("representation", choice, REPRESENTATIONS) is None


def test_the_choices_are_the_documented_ones():
    assert CELLS == ("lstm", "gru", "rnn")
    assert REPRESENTATIONS == ("level", "delta", "log-delta")


@pytest.mark.parametrize("raw", [[], {"prep": None}, {"model": []}])
def test_from_dict_refuses_parts_that_are_not_mappings(raw):
    with pytest.raises(ForecasterError, match=r"must be a mapping\. Received: "):
        Settings.from_dict(raw)
