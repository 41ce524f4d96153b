"""Verified bundles: the manifest lists every file, and loading checks each one."""

import hashlib
import json
import logging

import pytest

import predict
from forecaster.cli import main as cli
from forecaster.errors import BundleError
from forecaster.store.bundle import MANIFEST_FILE, load_bundle
from forecaster.workflows.runs import run_forecast

BUNDLE_FILES = [
    "model.keras",
    "scaler.json",
    "metadata.json",
    "metrics.json",
    "intervals.json",
    "test_predictions.csv",
    "rmse_by_step.csv",
    "history.csv",
    "recent_prices.csv",
    "loss.png",
    "test_predictions.png",
]


def _manifest(bundle):
    return json.loads((bundle / MANIFEST_FILE).read_text())


def test_the_manifest_lists_every_file_with_its_size_and_sha256(trained_bundle):
    manifest = _manifest(trained_bundle)
    assert manifest["algorithm"] == "sha256"
    assert sorted(manifest["files"]) == sorted(BUNDLE_FILES)
    for name, entry in manifest["files"].items():
        data = (trained_bundle / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_a_flipped_byte_in_any_file_is_named(bundle_copy, name):
    path = bundle_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(
        BundleError,
        match=rf"^Bundle .*: {name} does not match its sha256 in manifest\.json "
        r"\(the file was changed\): the bundle is damaged or incompatible, train it "
        r"again",
    ):
        load_bundle(bundle_copy)


def test_a_changed_digit_that_still_parses_is_caught(bundle_copy):
    path = bundle_copy / "scaler.json"
    text = path.read_text()
    at = next(i for i, c in enumerate(text) if c in "123456789")
    changed = text[:at] + str(int(text[at]) % 9 + 1) + text[at + 1 :]
    path.write_text(changed)
    json.loads(changed)  # still valid JSON, still a scaler: only the checksum knows
    with pytest.raises(BundleError, match="scaler.json does not match its sha256"):
        load_bundle(bundle_copy)


def test_a_missing_file_is_named(bundle_copy):
    (bundle_copy / "history.csv").unlink()
    with pytest.raises(
        BundleError,
        match=r"is not a complete bundle \(missing history\.csv, listed in "
        r"manifest\.json\)",
    ):
        load_bundle(bundle_copy)


def test_a_truncated_file_is_named_with_its_size(bundle_copy):
    path = bundle_copy / "loss.png"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(
        BundleError, match=f"loss.png has 100 bytes but manifest.json says {size}"
    ):
        load_bundle(bundle_copy)


def test_an_unexpected_file_is_ignored_with_a_note(bundle_copy, caplog):
    (bundle_copy / "notes.txt").write_text("mine")
    (bundle_copy / "forecast.csv").write_text("date,forecast\n")  # predict's output
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        bundle = load_bundle(bundle_copy)
    assert bundle.notes == [
        f"ignored file(s) not in the manifest of bundle {str(bundle_copy)!r}: notes.txt"
    ]
    assert bundle.notes[0] in caplog.text and "forecast.csv" not in caplog.text


@pytest.mark.parametrize("keep", [0, 40])
def test_a_truncated_manifest_is_refused(bundle_copy, keep):
    path = bundle_copy / MANIFEST_FILE
    path.write_text(path.read_text()[:keep])
    with pytest.raises(
        BundleError, match=r"has a damaged manifest\.json \(JSONDecodeError\)"
    ):
        load_bundle(bundle_copy)


def test_a_manifest_naming_files_outside_the_bundle_is_refused(bundle_copy):
    manifest = _manifest(bundle_copy)
    manifest["files"]["../elsewhere.txt"] = {"size": 1, "sha256": "0"}
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"damaged manifest\.json \(ValueError\)"):
        load_bundle(bundle_copy)


def test_a_bundle_from_before_the_manifest_loads_with_a_note(bundle_copy, caplog):
    (bundle_copy / MANIFEST_FILE).unlink()
    meta = json.loads((bundle_copy / "metadata.json").read_text())
    del meta["manifest"]
    (bundle_copy / "metadata.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        bundle = load_bundle(bundle_copy)
    assert bundle.notes == [
        f"bundle {str(bundle_copy)!r} has no manifest.json (saved before bundles had "
        "checksums): its files are not verified; retrain it to add one"
    ]
    assert bundle.notes[0] in caplog.text


def test_a_lost_manifest_is_refused_when_the_metadata_expects_one(bundle_copy):
    (bundle_copy / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match=r"has no manifest\.json although its"):
        load_bundle(bundle_copy)


def test_outputs_written_with_the_save_are_left_out_of_the_manifest(tmp_path):
    from forecaster.store.bundle import write_manifest

    (tmp_path / "scaler.json").write_text("{}")
    (tmp_path / "report.html").write_text("<html></html>")
    write_manifest(tmp_path)
    assert sorted(_manifest(tmp_path)["files"]) == ["scaler.json"]


def test_forecasts_written_into_the_bundle_keep_it_verified(bundle_copy, caplog):
    run_forecast(str(bundle_copy), days=3, engine="numpy")
    run_forecast(str(bundle_copy), days=4, engine="numpy")
    assert (bundle_copy / "forecast.csv").exists()
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        assert load_bundle(bundle_copy).notes == []
    assert caplog.text == ""


def test_predict_names_the_damaged_file_in_one_line(bundle_copy, capsys):
    path = bundle_copy / "intervals.json"
    path.write_text(path.read_text().replace("0", "1", 1))
    assert cli.run(predict.main, ["--model", str(bundle_copy), "--days", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "intervals.json does not match its sha256" in err[0]
    assert not (bundle_copy / "forecast.csv").exists()
