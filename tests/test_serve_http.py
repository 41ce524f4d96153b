"""`forecaster serve` as a real server: uvicorn on 127.0.0.1, HTTP, a browser.

One server process for the module, started as a user would (`python -m
forecaster serve MODELS_DIR --port P --token-file FILE`) on an ephemeral
loopback port. Raw request lines go through http.client, which sends a path
exactly as written (no dot-segment clean-up), so the server itself must turn
every escaping name away.
"""

from __future__ import annotations

import _socket
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_html_report import CHROMIUM_FLAGS
from test_serve import TOKEN, make_models

pytest.importorskip("uvicorn", reason="pip install -r requirements-dev.txt")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_SECONDS = 180  # a loaded 2-core machine imports pandas & co. slowly


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def loopback(monkeypatch):
    """Allow connections to this machine only (conftest refuses every one)."""

    def connect(self, address, *args, **kwargs):
        if self.family == socket.AF_INET and address[0] != "127.0.0.1":
            raise AssertionError(f"a test tried to leave the host: {address!r}")
        return _socket.socket.connect(self, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, models dir): the command serving copies of the fixture bundles."""
    root = tmp_path_factory.mktemp("served")
    models = make_models(root)
    (models / "link").symlink_to(root / "outside")  # a symlink that points out
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    command = [sys.executable, "-m", "forecaster", "serve", str(models)]
    command += ["--port", str(port), "--token-file", str(token_file), "--quiet"]
    log = open(root / "server.log", "w+")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_until_up(port, process, log)
        yield port, models
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_until_up(port: int, process, log) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"the server exited: {log.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"the server did not listen within {START_SECONDS} s")


def request(port: int, path: str, token: str | None = TOKEN, method: str = "GET"):
    """(status, headers, body) of one raw request: `path` is sent as written."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def test_the_real_server_forecasts_five_days_without_tensorflow(server, loopback):
    port, _ = server
    status, headers, body = request(port, "/models/AAPL-lstm/forecast?days=5")
    assert status == 200 and headers["content-type"] == "application/json"
    rows = json.loads(body)["rows"]
    assert len(rows) == 5 and all(
        r["lower_95"] < r["forecast"] < r["upper_95"] for r in rows
    )
    status, _, body = request(port, "/health")
    health = json.loads(body)
    assert status == 200 and health["tensorflow_loaded"] is False  # its sys.modules


def test_without_the_token_every_request_gets_401(server, loopback):
    port, _ = server
    for path in ("/health", "/models", "/models/AAPL-lstm/forecast", "/docs"):
        status, headers, body = request(port, path, token=None)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert "token" in json.loads(body)["error"]
        assert request(port, path, token="wrong-token-0123456789")[0] == 401


@pytest.mark.parametrize(
    "path",
    [
        "/models/..",
        "/models/../outside/forecast",
        "/models/%2E%2E/forecast",
        "/models/%2e%2e/report",
        "/models/..%2Foutside/forecast",
        "/models/%2E%2E%2Foutside/forecast",
        "/models/..%2F..%2Fetc%2Fpasswd/report",
        "/models/link/forecast",
        "/models/link",
    ],
)
def test_a_path_leaving_models_dir_gets_404(server, loopback, path):
    port, _ = server
    status, headers, body = request(port, path)
    assert status == 404, body
    assert headers["content-type"] == "application/json"
    assert list(json.loads(body)) == ["error"]


def test_an_absolute_path_as_the_name_gets_404(server, loopback):
    port, models = server
    outside = models.parent / "outside"
    for path in (
        f"/models/{outside}/forecast",
        "/models/" + str(outside).replace("/", "%2F") + "/forecast",
        "/models/" + str(outside).replace("/", "%2F"),
    ):
        status, _, body = request(port, path)
        assert status == 404, body
    status, _, body = request(port, "/models")
    assert [row["name"] for row in json.loads(body)["models"]] == ["AAPL-lstm", "panel"]


def browse(port: int, pages: dict, screenshot_dir: Path) -> dict:
    """{path: (status, items drawn, problems, requests)} of each page in `pages`
    ({path: (CSS selector to wait for, what counts as drawn)}), opened in one
    headless Chromium that sends the token."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    origin = f"http://127.0.0.1:{port}"
    seen = {}
    with tempfile.TemporaryDirectory() as profile, playwright.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS[1:],
            headless=True,
            viewport={"width": 1200, "height": 900},
            extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
        )
        for path, (ready, drawn) in pages.items():
            problems, requests = [], []
            page = browser.new_page()
            page.on(
                "console", lambda m, p=problems: m.type == "error" and p.append(m.text)
            )
            page.on("pageerror", lambda err, p=problems: p.append(str(err)))
            page.on("request", lambda r, q=requests: q.append(r.url))
            response = page.goto(origin + path, wait_until="load")
            page.wait_for_selector(ready, timeout=60_000)
            page.wait_for_load_state("networkidle")
            count = page.locator(drawn).count()
            name = path.strip("/").replace("/", "-")
            page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
            page.close()
            outside = [url for url in requests if not url.startswith(origin + "/")]
            seen[path] = (response.status, count, problems, outside)
        browser.close()
    return seen


@pytest.mark.slow  # two pages in Chromium: ~20-40 s on a loaded 2-core machine
def test_the_report_and_the_docs_render_in_headless_chromium(
    server, loopback, tmp_path
):
    """No console error and no request anywhere but this server: the report
    draws its chart, /docs (Swagger UI from local files) lists the endpoints."""
    port, _ = server
    seen = browse(
        port,
        {
            "/models/AAPL-lstm/report": (
                "#price-chart .main-svg",
                "#price-chart .trace",
            ),
            "/docs": (".opblock", ".opblock"),
        },
        tmp_path,
    )
    print(f"screenshots: {tmp_path}")
    for path, (status, drawn, problems, outside) in seen.items():
        assert (status, problems, outside) == (200, [], []), path
        assert drawn >= 2, path
    assert seen["/docs"][1] >= 6  # every endpoint: health, models, forecast ...
    report = tmp_path / "models-AAPL-lstm-report.png"
    assert os.path.getsize(report) > 20_000
