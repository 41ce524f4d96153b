"""`forecaster serve` under retrains and repeated questions: who waits for what.

A swapped-in bundle is read and verified in the background while the version
in memory keeps answering; a new version comes with its default answer
computed; requests for one answer being computed share that computation; the
default number of sampled paths is the library's.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import threading
import time
import warnings

import pytest
from test_serve import TOKEN, make_models, second_version

pytest.importorskip("fastapi", reason="pip install -r requirements-dev.txt")
with warnings.catch_warnings():  # starlette's notice that httpx is to be replaced
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import forecaster as fc  # noqa: E402
from forecaster.config import ForecastSettings  # noqa: E402
from forecaster.io import write_directory_atomically  # noqa: E402
from forecaster.serve import app as app_module  # noqa: E402
from forecaster.serve import bundles as shelf_module  # noqa: E402
from forecaster.serve import fast as fast_module  # noqa: E402
from forecaster.serve.answers import DEFAULT_SAMPLES, ForecastQuery  # noqa: E402

FORECAST = "/models/AAPL-lstm/forecast"


@pytest.fixture
def models(tmp_path):
    return make_models(tmp_path)


def swap_in(target, source) -> None:
    """Replace bundle `target` by a copy of `source`, as a retrain's save does."""
    write_directory_atomically(
        target,
        lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True),
        replace=True,
    )


def test_the_old_version_answers_while_the_new_one_is_verified(
    models, tmp_path, monkeypatch
):
    """A request never waits for a swapped-in bundle's checks: until the new
    version is read whole and verified, the one in memory answers."""
    newer = second_version(models / "AAPL-lstm", tmp_path / "newer")
    new_version = shelf_module.load_served("x", newer, ()).version
    real_load, reading, release = shelf_module.load_served, threading.Event(), []

    def held_load(name, path, before):
        if release:  # every read after the first waits until released
            reading.set()
            assert release[0].wait(60)
        return real_load(name, path, before)

    monkeypatch.setattr(shelf_module, "load_served", held_load)
    monkeypatch.setattr(shelf_module, "CHECK_SECONDS", 0.0)
    client = TestClient(app_module.create_app(models))
    first = client.get(FORECAST)
    release.append(threading.Event())
    swap_in(models / "AAPL-lstm", newer)
    during = [client.get(FORECAST) for _ in range(3)]
    assert reading.wait(30)  # the background read of the new version started
    during += [client.get(FORECAST) for _ in range(3)]
    assert {r.headers["etag"] for r in during} == {first.headers["etag"]}
    assert all(r.content == first.content for r in during)
    release[0].set()
    deadline = time.monotonic() + 60
    while client.get(FORECAST).headers["etag"] != new_version:
        assert time.monotonic() < deadline, "the new version was never served"
        time.sleep(0.05)


def test_a_removed_bundle_stays_404(models):
    client = TestClient(app_module.create_app(models))
    assert client.get(FORECAST).status_code == 200
    shutil.rmtree(models / "AAPL-lstm")
    deadline = time.monotonic() + 60
    while client.get(FORECAST).status_code != 404:
        assert time.monotonic() < deadline, "the removed bundle was still served"
        time.sleep(0.02)
    assert [client.get(FORECAST).status_code for _ in range(20)] == [404] * 20


def test_a_damaged_bundle_copied_again_is_served_at_the_next_look(
    models, tmp_path, monkeypatch
):
    """The disk is looked at once (the middleware's look, then the
    application's): a bundle found changed is read again by that request."""
    monkeypatch.setattr(shelf_module, "CHECK_SECONDS", 3600.0)  # looks on demand
    app = app_module.create_app(models)
    client = TestClient(app)
    good = tmp_path / "good"
    shutil.copytree(models / "AAPL-lstm", good)
    with open(models / "AAPL-lstm" / "scaler.json", "a") as scaler:
        scaler.write(" ")
    assert client.get(FORECAST).status_code == 409
    swap_in(models / "AAPL-lstm", good)
    assert client.get(FORECAST).status_code == 409  # not looked at again yet
    # the next request looks (time.monotonic() counts from boot: 0.0 would be
    # "just now" on a machine up for less than CHECK_SECONDS)
    app.state.shelf._entries["AAPL-lstm"].checked = -math.inf
    assert client.get(FORECAST).status_code == 200


def test_a_new_version_comes_with_its_default_answer(models):
    shelf = shelf_module.BundleShelf(models, warm=app_module.warm)
    bundle = shelf.get("AAPL-lstm")
    assert ForecastQuery().key() in bundle.answers
    no_warm = shelf_module.BundleShelf(models).get("AAPL-lstm")
    query = ForecastQuery()
    assert bundle.answers[query.key()] == app_module.compute(no_warm, query)


def test_requests_for_one_answer_share_one_computation(models):
    bundle = shelf_module.BundleShelf(models).get("AAPL-lstm")
    calls = []

    def make() -> bytes:
        calls.append(threading.get_ident())
        time.sleep(0.3)
        return b"the answer"

    async def sixteen_requests():
        asked = (app_module.cached(bundle, ("key",), make) for _ in range(16))
        return await asyncio.gather(*asked)

    assert asyncio.run(sixteen_requests()) == [b"the answer"] * 16
    assert len(calls) == 1 and bundle.pending == {}
    assert asyncio.run(sixteen_requests()) == [b"the answer"] * 16
    assert len(calls) == 1  # kept


def test_the_default_samples_are_the_librarys(models):
    assert DEFAULT_SAMPLES == ForecastSettings().samples
    client = TestClient(app_module.create_app(models))
    served = client.get(f"{FORECAST}?days=3").json()["rows"]
    library = fc.load(models / "AAPL-lstm").forecast(3)  # its default samples
    assert [row["lower_95"] for row in served] == pytest.approx(
        list(library["lower_95"]), rel=1e-12
    )


def test_a_kept_answer_is_sent_as_the_application_sends_it(models, monkeypatch):
    """The middleware's answer equals the application's, headers and bytes; it
    is used for the second request (the application is not reached)."""
    client = TestClient(app_module.create_app(models))
    path = f"{FORECAST}?days=2&samples=64&seed=5"
    routed = []
    for accept in ("application/json", "text/csv"):
        first = client.get(path, headers={"Accept": accept})
        monkeypatch.setattr(app_module, "cached", lambda *a: routed.append(a))
        second = client.get(path, headers={"Accept": accept})
        monkeypatch.undo()
        assert first.status_code == second.status_code == 200 and routed == []
        assert first.content == second.content
        assert dict(first.headers) == dict(second.headers)


@pytest.mark.parametrize(
    "query",
    ["days=0", "days=1&days=1", "days=%31", "days=\u0663", "samples=99999",
     "seed=-1", "series=%41", "colour=red"],
)  # fmt: skip
def test_a_query_that_is_not_plain_goes_to_the_application(query):
    assert fast_module.plain_query(query.encode(), False) is None


def test_a_plain_query_is_read_as_the_application_reads_it():
    read = fast_module.plain_query(b"days=05&seed=3&series=AAA,BBB", True)
    assert read == ForecastQuery(5, DEFAULT_SAMPLES, 3, ("AAA", "BBB"), True)
    assert fast_module.plain_query(b"", False) == ForecastQuery()


def test_a_kept_answer_still_needs_the_token_and_bad_values_get_422(models):
    client = TestClient(app_module.create_app(models, token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get(FORECAST, headers=auth).status_code == 200  # now kept
    assert client.get(FORECAST).status_code == 401
    assert client.get(f"{FORECAST}?days=0", headers=auth).status_code == 422
