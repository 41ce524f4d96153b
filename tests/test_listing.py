"""Tests for the table of saved models: rows, damaged bundles, sorting, the command."""

import json
import shutil

import pandas as pd
import pytest

from forecaster.cli import main as cli
from forecaster.errors import ForecasterError
from forecaster.store import listing
from forecaster.store.bundle import write_manifest


@pytest.fixture
def models(trained_bundle, tmp_path):
    """models/ with two good bundles, one without its model, one unreadable."""
    root = tmp_path / "models"
    shutil.copytree(trained_bundle, root / "WALK-lstm")
    shutil.copytree(trained_bundle, root / "old" / "WALK-gru")
    meta = json.loads((root / "old/WALK-gru/metadata.json").read_text())
    meta["created"] = "2020-01-01T00:00:00+00:00"
    meta["settings"]["model"]["cell"] = "gru"
    (root / "old/WALK-gru/metadata.json").write_text(json.dumps(meta))
    metrics = json.loads((root / "old/WALK-gru/metrics.json").read_text())
    metrics["rmse_ratio_to_naive"] = 0.5
    (root / "old/WALK-gru/metrics.json").write_text(json.dumps(metrics))
    write_manifest(root / "old/WALK-gru")  # another good bundle, not a damaged one
    shutil.copytree(trained_bundle, root / "no-model")
    (root / "no-model/model.keras").unlink()
    (root / "garbled").mkdir()
    (root / "garbled/metadata.json").write_text("{")
    (root / ".WALK-lstm.resume").mkdir()  # a checkpoint: not a bundle
    (root / ".WALK-lstm.resume/state.json").write_text("{}")
    return root


def test_every_bundle_is_a_row_and_damaged_ones_are_marked(models, trained_bundle):
    frame = listing.list_bundles(models)
    assert list(frame["bundle"]) == ["WALK-lstm", "garbled", "no-model", "old/WALK-gru"]
    assert list(frame["status"]) == ["ok", "damaged", "damaged", "ok"]
    assert "missing model.keras" in frame.loc[2, "problem"]
    good = frame.iloc[0]
    metrics = json.loads((trained_bundle / "metrics.json").read_text())
    assert (good["series"], good["cell"], good["representation"]) == (
        "WALK",
        "lstm",
        "log-delta",
    )
    assert (good["first"], good["last"]) == ("2020-01-01", "2020-12-29")
    assert good["test_ratio"] == metrics["rmse_ratio_to_naive"]
    assert good["coverage_80"] == metrics["interval_coverage_one_step"]["0.8"]
    assert pd.Timedelta(0) <= good["age"] < pd.Timedelta(days=1)


def test_sorting_by_a_column_puts_blanks_last(models):
    frame = listing.list_bundles(models)
    by_ratio = listing.sort_listing(frame, "test_ratio")
    assert list(by_ratio["bundle"])[:2] == ["old/WALK-gru", "WALK-lstm"]
    assert list(listing.sort_listing(frame, "age")["bundle"])[:2] == [
        "WALK-lstm",
        "old/WALK-gru",
    ]
    with pytest.raises(ForecasterError, match=r"--sort: unknown column 'size'"):
        listing.sort_listing(frame, "size")


def test_main_prints_the_table_and_the_damage(models, capsys):
    assert cli.run(cli.main, ["list", str(models), "--sort", "cell"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == list(listing.COLUMNS)
    assert out[1].split()[:3] == ["old/WALK-gru", "WALK", "gru"]
    assert out[1].split()[-2:] == ["d", "ok"] and out[1].split()[-4].endswith("%")
    assert "damaged:" in out and any(line.startswith("  garbled: ") for line in out)


def test_main_on_a_missing_directory_is_a_one_line_error(tmp_path, capsys):
    assert cli.run(cli.main, ["list", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: No directory ")


def test_main_on_an_empty_directory(tmp_path, capsys):
    assert cli.run(cli.main, ["list", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("no bundles under ")
