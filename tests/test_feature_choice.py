"""Tests for forecaster.workflows.feature_choice: features="auto" chooses on
validation among close and the range estimators, and the bundle records it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_settings
from panel_fakes import random_walk_ohlcv

from forecaster.workflows.feature_choice import AUTO, CANDIDATES, choose_features
from forecaster.workflows.runs import run_training


@pytest.mark.slow  # trains every candidate
def test_auto_chooses_among_candidates_on_validation_loss(tmp_path):
    frame = random_walk_ohlcv(400, seed=5)
    settings = tiny_settings(prep__features=AUTO)
    choice = choose_features(
        frame, settings, candidates=("close", "close,parkinson"), epochs=1
    )
    assert list(choice.val_loss) == ["close", "close,parkinson"]
    assert all(np.isfinite(loss) for loss in choice.val_loss.values())
    assert choice.val_loss[choice.features] == min(choice.val_loss.values())
    assert choice.record()["chosen_on"] == "validation"
    assert settings.prep.features == AUTO  # the caller's settings are not changed
    assert settings.train.epochs == 2


def test_auto_without_high_low_is_close_with_a_note():
    frame = random_walk_ohlcv(300, seed=6)[["Close"]]
    choice = choose_features(frame, tiny_settings(prep__features=AUTO))
    assert choice.features == "close" and choice.val_loss == {}
    assert "no High/Low" in choice.reason


def test_every_candidate_starts_with_close():
    assert CANDIDATES[0] == "close"
    assert all(c.split(",")[0] == "close" for c in CANDIDATES)


@pytest.mark.slow
def test_run_training_records_the_choice_in_the_bundle(tmp_path, monkeypatch):
    from forecaster.workflows import feature_choice

    monkeypatch.setattr(feature_choice, "CANDIDATES", ("close", "close,yang_zhang"))
    monkeypatch.setattr(feature_choice, "SHORT_EPOCHS", 1)
    frame = random_walk_ohlcv(400, seed=7)
    frame.index = pd.bdate_range("2015-01-02", periods=len(frame), name="Date")
    csv = tmp_path / "GEN.csv"
    frame.to_csv(csv)
    report = run_training(
        tiny_settings(str(csv), prep__features=AUTO), out=tmp_path / "bundle"
    )
    metadata = json.loads((report.out / "metadata.json").read_text())
    record = metadata["feature_choice"]
    assert set(record["validation_loss"]) == {"close", "close,yang_zhang"}
    assert metadata["settings"]["prep"]["features"] == record["chosen"]
    assert any(note.startswith("features: ") for note in report.notes)
