"""Tests for `forecaster serve` through FastAPI's TestClient: answers, bounds, safety.

The bundles are copies of the saved fixtures in tests/fixtures (forecaster
0.2.0's Student-t LSTM on a generated random walk, and a panel of two), so no
model is trained here. The real server is tested in test_serve_http.py.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import shutil
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="pip install -r requirements-dev.txt")
with warnings.catch_warnings():  # starlette's notice that httpx is to be replaced
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import forecaster as fc  # noqa: E402
from forecaster.errors import ForecasterError  # noqa: E402
from forecaster.io import write_directory_atomically  # noqa: E402
from forecaster.serve import bundles as shelf_module  # noqa: E402
from forecaster.serve.answers import MAX_BODY_BYTES, ForecastQuery, compute  # noqa: E402
from forecaster.serve.app import create_app  # noqa: E402
from forecaster.serve.security import check_bind, is_loopback  # noqa: E402
from forecaster.store.manifest import REPORT_FILE, write_manifest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "a-test-token-0123456789"
SERIES = "bundle_v1_prices"  # the fixture's series: its CSV's name


def make_models(root: Path) -> Path:
    """MODELS_DIR with AAPL-lstm (one series), panel (two) and, beside it, outside/."""
    models = root / "models"
    models.mkdir()
    shutil.copytree(FIXTURES / "bundle_v020", models / "AAPL-lstm")
    shutil.copytree(FIXTURES / "bundle_v020_panel", models / "panel")
    shutil.copytree(FIXTURES / "bundle_v020", root / "outside")  # a valid bundle
    return models


def second_version(source: Path, target: Path, factor: float = 1.25) -> Path:
    """A copy of bundle `source` whose saved prices are scaled: another forecast."""
    shutil.copytree(source, target)
    recent = pd.read_csv(target / "recent_prices.csv")
    recent["price"] *= factor
    recent.to_csv(target / "recent_prices.csv", index=False)
    (target / "manifest.json").unlink()
    write_manifest(target)
    return target


@pytest.fixture
def models(tmp_path):
    return make_models(tmp_path)


@pytest.fixture
def client(models):
    return TestClient(create_app(models))


def one_line_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


# ---------------------------------------------------------------- answers


def test_health_says_numpy_and_counts_the_models(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["engine"] == "numpy"
    assert body["models"] == 2


def test_models_lists_each_bundle_with_its_dates_and_scores_beside_naive(client):
    rows = {row["name"]: row for row in client.get("/models").json()["models"]}
    assert set(rows) == {"AAPL-lstm", "panel"}
    one = rows["AAPL-lstm"]
    assert (one["cell"], one["loss"], one["series"]) == ("lstm", "student-t", [SERIES])
    assert one["trained_on"]["train_end"] == "2020-09-29"
    saved = json.loads((FIXTURES / "bundle_v020" / "metrics.json").read_text())
    assert one["scores"]["rmse"] == saved["model"]["rmse"]
    assert one["scores"]["naive_rmse"] == saved["naive"]["rmse"]
    assert "GARCH-t" in one["scores"]["crps_by_method"]
    assert rows["panel"]["series"] == ["AAA", "BBB"]
    assert rows["panel"]["scores"]["worst_series"] == "AAA"


def test_one_model_shows_its_settings_and_metrics(client):
    body = client.get("/models/AAPL-lstm").json()
    assert body["settings"]["prep"]["window"] == 10
    assert body["metrics"]["test_days"] == 65


def test_a_forecast_is_the_one_the_python_api_gives(client, models):
    answer = client.get("/models/AAPL-lstm/forecast?days=5&samples=200&seed=3")
    assert answer.status_code == 200 and answer.headers["etag"]
    served = pd.DataFrame(answer.json()["rows"])
    kept = fc.load(models / "AAPL-lstm").forecast(5, samples=200, seed=3)
    assert list(served.columns) == list(kept.columns)
    assert list(served["date"]) == [str(d)[:10] for d in kept["date"]]
    np.testing.assert_allclose(
        served.drop(columns="date"), kept.drop(columns="date").to_numpy()
    )
    again = client.get("/models/AAPL-lstm/forecast?days=5&samples=200&seed=3")
    assert again.content == answer.content


def test_the_default_forecast_is_one_day_from_the_heads_own_bands(client, models):
    rows = client.get("/models/AAPL-lstm/forecast").json()["rows"]
    expected = fc.load(models / "AAPL-lstm").forecast(1, engine="numpy")
    assert len(rows) == 1 and rows[0]["date"] == expected["date"][0]
    assert rows[0]["lower_95"] == pytest.approx(expected["lower_95"][0])


def test_accept_text_csv_gives_csv(client):
    answer = client.get(
        "/models/AAPL-lstm/forecast?days=3", headers={"Accept": "text/csv"}
    )
    assert answer.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(answer.text))
    assert len(frame) == 3 and "upper_80" in frame


def test_a_panel_forecasts_the_series_asked_for(client):
    rows = client.get("/models/panel/forecast?days=2&series=BBB").json()["rows"]
    assert [row["series"] for row in rows] == ["BBB", "BBB"]
    both = client.get("/models/panel/forecast?days=2").json()["rows"]
    assert {row["series"] for row in both} == {"AAA", "BBB"}
    error = one_line_error(client.get("/models/panel/forecast?series=ZZZ"), 422)
    assert "Received: series=ZZZ" in error and "AAA, BBB" in error


def test_posted_prices_json_or_csv_give_the_apis_forecast(client, models):
    prices = pd.read_csv(FIXTURES / "bundle_v1_prices.csv").tail(40)
    rows = [
        {"date": d, "price": p}
        for d, p in zip(prices["Date"], prices["Close"], strict=True)
    ]
    as_json = client.post("/models/AAPL-lstm/forecast?days=1", json={"prices": rows})
    csv_body = prices[["Date", "Close"]].to_csv(index=False)
    as_csv = client.post(
        "/models/AAPL-lstm/forecast?days=1",
        content=csv_body,
        headers={"Content-Type": "text/csv"},
    )
    series = pd.Series(prices["Close"].values, pd.to_datetime(prices["Date"]))
    expected = fc.load(models / "AAPL-lstm").forecast(1, prices=series, engine="numpy")
    for answer in (as_json, as_csv):
        assert answer.status_code == 200, answer.text
        row = answer.json()["rows"][0]
        assert row["date"] == expected["date"][0]
        assert row["forecast"] == pytest.approx(expected["forecast"][0])


def test_report_page_is_served_with_a_policy_that_loads_nothing(client, models):
    drawn = client.get("/models/AAPL-lstm/report")
    assert drawn.status_code == 200 and drawn.headers["content-type"].startswith(
        "text/html"
    )
    assert "default-src 'none'" in drawn.headers["content-security-policy"]
    assert "<html" in drawn.text.lower() and "2020-12-30" in drawn.text
    (models / "panel" / REPORT_FILE).write_text("<html>saved page</html>")
    saved = client.get("/models/panel/report")
    assert saved.text == "<html>saved page</html>"


def test_docs_load_their_files_from_this_server(client):
    page = client.get("/docs").text
    files = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(f.endswith("swagger-ui-bundle.js") for f in files)
    assert all(f.startswith("/") and not f.startswith("//") for f in files), files
    assert all(client.get(f).status_code == 200 for f in files)
    assert "/models/{name}/forecast" in client.get("/openapi.json").json()["paths"]
    assert client.get("/redoc").status_code == 404  # ReDoc fetches a logo


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    "query, named",
    [
        ("days=0", "days"),
        ("days=101", "days"),
        ("days=abc", "days"),
        ("samples=0", "samples"),
        ("samples=1000000000", "samples"),
        ("seed=-1", "seed"),
        ("days=100&samples=5000", "days x samples"),
    ],
)
def test_a_bad_parameter_gets_422_naming_it(client, query, named):
    error = one_line_error(client.get(f"/models/AAPL-lstm/forecast?{query}"), 422)
    assert error.startswith(named)


def test_an_oversized_body_gets_413_and_bad_bodies_get_one_line(client):
    url = "/models/AAPL-lstm/forecast"
    big = b"date,price\n" + b"2020-01-01,1.0\n" * (MAX_BODY_BYTES // 15 + 1)
    assert "larger than" in one_line_error(
        client.post(url, content=big, headers={"Content-Type": "text/csv"}), 413
    )
    assert "not valid JSON" in one_line_error(
        client.post(
            url, content=b"{oops", headers={"Content-Type": "application/json"}
        ),
        422,
    )
    assert "price rows" in one_line_error(client.post(url, json={"prices": 3}), 422)
    assert "Content-Type" in one_line_error(
        client.post(url, content=b"x", headers={"Content-Type": "image/png"}), 422
    )
    few = [{"date": f"2020-01-0{d}", "price": 1.0 + d} for d in range(1, 6)]
    assert "need at least 10 prices" in one_line_error(
        client.post(url, json={"prices": few}), 422
    )


def test_an_unknown_endpoint_or_method_gets_one_line(client):
    assert "no such endpoint" in one_line_error(client.get("/nothing"), 404)
    one_line_error(client.delete("/models/AAPL-lstm"), 405)


# ---------------------------------------------------------------- safety


@pytest.fixture
def reads(monkeypatch):
    """Every bundle path the server loads."""
    seen = []
    real = shelf_module.load

    def spy(path):
        seen.append(Path(os.path.realpath(path)))  # /proc/self/fd/N: its directory
        return real(path)

    monkeypatch.setattr(shelf_module, "load", spy)
    return seen


@pytest.mark.parametrize(
    "name",
    ["..", "%2E%2E", "..%2F", "..%2Foutside", "%2E%2E%2Foutside", "%2Fetc", "link"],
)
def test_a_name_leaving_models_dir_gets_404_and_nothing_outside_is_read(
    models, reads, name
):
    (models / "link").symlink_to(models.parent / "outside")  # a symlink that points out
    client = TestClient(create_app(models))
    for path in (
        f"/models/{name}",
        f"/models/{name}/forecast",
        f"/models/{name}/report",
    ):
        assert client.get(path).status_code == 404
    assert (
        client.get(f"/models/{models.parent / 'outside'}/forecast").status_code == 404
    )
    assert [row["name"] for row in client.get("/models").json()["models"]] == [
        "AAPL-lstm",
        "panel",
    ]
    assert all(path.parent == models for path in reads), reads


def test_the_shelf_refuses_every_escaping_name_before_reading(models):
    shelf = shelf_module.BundleShelf(models)
    (models / "link").symlink_to(models.parent / "outside")
    for name in ["..", "../outside", str(models.parent / "outside"), "link", ".x", ""]:
        with pytest.raises(shelf_module.NotFoundError, match="No model named"):
            shelf.path_of(name)


def test_a_bundle_holding_a_symlink_out_is_refused_with_409(client, models):
    (models / "AAPL-lstm" / "history.csv").unlink()
    (models / "AAPL-lstm" / "history.csv").symlink_to(models.parent / "secret.csv")
    assert "symbolic link" in one_line_error(client.get("/models/AAPL-lstm"), 409)


def test_a_damaged_bundle_answers_409_with_the_reason_and_the_others_serve(
    client, models
):
    model_file = models / "AAPL-lstm" / "model.keras"
    data = bytearray(model_file.read_bytes())
    data[-100] ^= 0xFF
    model_file.write_bytes(bytes(data))
    error = one_line_error(client.get("/models/AAPL-lstm/forecast"), 409)
    assert "model.keras does not match its sha256" in error
    assert client.get("/models/panel/forecast").status_code == 200
    listed = {row["name"]: row for row in client.get("/models").json()["models"]}
    assert listed["AAPL-lstm"]["status"] == "damaged"
    assert "sha256" in listed["AAPL-lstm"]["problem"]


def answered_within(client, path: str, wanted, seconds: float = 60.0):
    """The first answer to GET `path` for which `wanted(response)` holds.

    A changed bundle is read again in the background, and the version in
    memory answers meanwhile: the change shows within moments, not at once.
    """
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(path)
        if wanted(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_a_bundle_damaged_after_it_was_served_is_noticed(client, models):
    assert client.get("/models/AAPL-lstm/forecast").status_code == 200
    with open(models / "AAPL-lstm" / "scaler.json", "a") as scaler:
        scaler.write(" ")
    path = "/models/AAPL-lstm/forecast"
    one_line_error(answered_within(client, path, lambda r: r.status_code != 200), 409)


def test_a_swapped_bundle_is_served_without_a_restart(client, models, tmp_path):
    first = client.get("/models/AAPL-lstm/forecast")
    newer = second_version(models / "AAPL-lstm", tmp_path / "newer")
    write_directory_atomically(
        models / "AAPL-lstm",
        lambda tmp: shutil.copytree(newer, tmp, dirs_exist_ok=True),
        replace=True,
    )
    second = answered_within(
        client,
        "/models/AAPL-lstm/forecast",
        lambda r: r.headers["etag"] != first.headers["etag"],
    )
    assert second.headers["etag"] != first.headers["etag"]
    before, after = first.json()["rows"][0], second.json()["rows"][0]
    assert after["forecast"] == pytest.approx(before["forecast"] * 1.25, rel=0.05)


def swap_in_turn(target: Path, sources: list, swaps: int) -> None:
    """Swap `sources` into `target` in turn, as a retrain's save would (a process)."""
    for swap in range(swaps):
        source = sources[swap % len(sources)]
        write_directory_atomically(
            target,
            lambda tmp, s=source: shutil.copytree(s, tmp, dirs_exist_ok=True),
            replace=True,
        )
        time.sleep(0.3)  # let the readers see this version too


def test_reads_during_swaps_are_never_torn(models, tmp_path):
    """Four readers while another process swaps two versions in and out 8 times:
    every answer's forecast is exactly its own version's (never one version's
    name with another's prices), and none fails."""
    target = models / "AAPL-lstm"
    versions = {"a": tmp_path / "a", "b": second_version(target, tmp_path / "b")}
    shutil.copytree(target, versions["a"])
    query = ForecastQuery(days=1)

    def expected(path: Path) -> tuple:
        loaded = shelf_module.load_served("x", path, ())
        return loaded.version, json.loads(compute(loaded, query))["rows"]

    truth = dict(expected(path) for path in versions.values())
    shelf, seen, failures = shelf_module.BundleShelf(models), [], []
    writer = multiprocessing.get_context("fork").Process(
        target=swap_in_turn, args=(target, [versions["b"], versions["a"]], 8)
    )

    def reader():
        while writer.is_alive():
            try:
                bundle = shelf.get("AAPL-lstm")
                rows = json.loads(compute(bundle, query))["rows"]
                seen.append((bundle.version, rows == truth[bundle.version]))
            except Exception as err:  # noqa: BLE001 (any failure is the finding)
                failures.append(repr(err))

    writer.start()
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    writer.join(timeout=300)
    for thread in threads:
        thread.join()
    assert writer.exitcode == 0 and failures == []
    assert seen and all(match for _, match in seen), seen
    assert shelf.get("AAPL-lstm").version in truth


def test_every_request_needs_the_token_when_one_is_set(models):
    client = TestClient(create_app(models, token=TOKEN))
    for path in ("/health", "/models", "/models/AAPL-lstm/forecast", "/docs"):
        assert client.get(path).status_code == 401
        wrong = client.get(path, headers={"Authorization": "Bearer nope"})
        assert (
            wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        )
        right = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200


def test_loopback_is_the_only_address_served_without_a_token(tmp_path):
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example"))
    assert check_bind("127.0.0.1", None) is None
    with pytest.raises(ForecasterError, match="not a loopback address.*token_file"):
        check_bind("0.0.0.0", None)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert check_bind("0.0.0.0", token_file) == TOKEN
    token_file.write_text("short")
    with pytest.raises(ForecasterError, match="at least 16 characters"):
        check_bind("0.0.0.0", token_file)


def test_the_command_refuses_a_public_address_before_listening(
    models, monkeypatch, capsys
):
    import uvicorn

    from forecaster.cli.main import main, run

    def listen(*args, **kwargs):
        raise AssertionError("the server started listening")

    monkeypatch.setattr(uvicorn, "run", listen)
    assert run(main, ["serve", str(models), "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--token-file" in error and "--host" in error
    assert run(main, ["serve", str(models), "--port", "70000"]) == 2
    assert run(main, ["serve", str(models / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
