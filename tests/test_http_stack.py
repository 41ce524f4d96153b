"""The real yfinance -> curl_cffi path beside TensorFlow, against servers on loopback.

These tests drive the real libraries in child processes, importing them in
the scripts' order (or worse), and point them at small servers on 127.0.0.1
started here: a web server for a direct request, and an HTTPS proxy that
records each CONNECT line and refuses it, so a real `yfinance.download` sends
its requests here and never to the internet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # run by `pytest -m slow` (and CI), not by default

ROOT = Path(__file__).resolve().parent.parent
NETWORK_LINE = "error: Could not reach Yahoo Finance to download 'MSFT'"


class LoopbackServer:
    """A one-thread TCP server on 127.0.0.1 that records each request's head."""

    def __init__(self, reply: bytes):
        self.reply = reply
        self.heads: list[str] = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.heads.append(head.decode("latin-1"))
                conn.sendall(self.reply)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def web_server():
    body = b"hello from loopback"
    server = LoopbackServer(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    yield server
    server.close()


@pytest.fixture
def refusing_proxy():
    server = LoopbackServer(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    yield server
    server.close()


def run_python(code: str, env_extra: dict | None = None, *args: str, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, *(["-c", textwrap.dedent(code)] if code else []), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=240,
    )


def proxy_env(server: LoopbackServer) -> dict:
    url = f"http://127.0.0.1:{server.port}"
    return {"HTTPS_PROXY": url, "https_proxy": url, "NO_PROXY": "", "no_proxy": ""}


@pytest.mark.parametrize(
    "imports",
    ["import tensorflow; import forecaster", "import forecaster; import tensorflow"],
)
def test_impersonating_request_after_tensorflow_reaches_loopback(web_server, imports):
    """yfinance's session type, impersonating Chrome, sends a real request here."""
    done = run_python(
        f"""
        {imports}
        from curl_cffi import requests
        from curl_cffi.requests import impersonate
        session = requests.Session(impersonate=impersonate.DEFAULT_CHROME)
        reply = session.get("http://127.0.0.1:{web_server.port}/probe", timeout=10)
        print(reply.status_code, reply.text)
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "200 hello from loopback"
    [head] = web_server.heads
    assert head.startswith("GET /probe HTTP/1.1")
    assert "Chrome/" in head  # the impersonated browser's own headers were sent


def test_train_ticker_sends_real_requests_and_says_it_could_not_reach(
    refusing_proxy, tmp_path
):
    """`train.py --ticker` end to end: real requests, the network message, one line."""
    done = run_python(
        "",
        proxy_env(refusing_proxy),
        str(ROOT / "train.py"),
        "--ticker",
        "MSFT",
        "--out",
        str(tmp_path / "bundle"),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(NETWORK_LINE), lines[0]
    assert "Check your internet connection" in lines[0]
    assert any(
        h.startswith("CONNECT query2.finance.yahoo.com:443")
        for h in refusing_proxy.heads
    ), refusing_proxy.heads
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("engine", ["numpy", "keras"])
def test_predict_ticker_reaches_the_network_layer(
    refusing_proxy, trained_bundle, tmp_path, engine
):
    done = run_python(
        "",
        proxy_env(refusing_proxy),
        str(ROOT / "predict.py"),
        "--model",
        str(trained_bundle),
        "--ticker",
        "MSFT",
        "--engine",
        engine,
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(NETWORK_LINE), line
    assert refusing_proxy.heads


def test_broken_stack_in_this_process_downloads_in_a_child(refusing_proxy, tmp_path):
    """curl_cffi imported after TensorFlow, before forecaster: the child still works."""
    done = run_python(
        f"""
        import tensorflow, curl_cffi.requests, forecaster
        from forecaster.httpstack import http_stack_works
        from forecaster.data import download_prices
        from forecaster.errors import ForecasterError
        print("stack works here:", http_stack_works())
        try:
            download_prices("MSFT", cache_dir={str(tmp_path / "cache")!r})
        except ForecasterError as err:
            print(err)
        """,
        proxy_env(refusing_proxy),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first, message = done.stdout.strip().splitlines()
    assert first == "stack works here: False"
    assert message.startswith(NETWORK_LINE[len("error: ") :]), message
    assert any(h.startswith("CONNECT ") for h in refusing_proxy.heads)


def test_isolation_is_skipped_when_curl_cffi_is_already_loaded():
    done = run_python(
        """
        import curl_cffi.requests
        from forecaster.httpstack import http_stack_works, isolate_curl_cffi
        print(isolate_curl_cffi(), http_stack_works())
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
