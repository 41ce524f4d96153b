"""`forecaster serve` under load on loopback: latency, throughput, torn reads.

Starts `python -m forecaster serve` on 127.0.0.1 (an ephemeral port, nothing
else is contacted) over a copy of one bundle, then:

1. closed loop without swaps: 32 clients, each sending its next one-day
   forecast request (the head's own bands: no sampling) as soon as the last
   one is answered, a bounded number of requests in all;
2. the same closed loop while another process swaps the bundle for a second
   version and back every `--swap-every` seconds (a copy swapped in
   atomically by forecaster.io, as a retrain's save does);
3. paced: the same 32 clients, each sending one request every 100 ms (what a
   set of dashboards asks), while the swaps go on;
4. the cost of a sampled forecast: 5-day forecasts with distinct seeds (so
   nothing is cached), 64 and 2,048 paths, one client.

Every answer is checked: status 200, and its rows exactly those of the
version its ETag names (a torn read would pair one version's name with
another's numbers, or fail). Prints p50 / p99 latency, requests/s, errors,
torn reads, the swaps done, and the CPU milliseconds per request of the
server process and of the client process (they share the machine's cores;
the client is one asyncio process writing raw HTTP/1.1, uvloop's loop when
installed).

By default the server is this checkout's `python -m forecaster serve`.
`--root DIR` runs another checkout's server (e.g. a `git worktree` of an
older commit) for a before/after in one sitting; `--loop` / `--http` start
it through uvicorn.run with that event loop and HTTP parser instead
(asyncio / h11 are uvicorn's pure-Python fallbacks).

    flock /tmp/bench.lock python -m bench.serve_load          # about 2 min
    python -m bench.serve_load --requests 640 --paced-seconds 5   # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "bundle_v020"
NAME = "AAPL-lstm"
ONE_DAY = f"/models/{NAME}/forecast?days=1"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=FIXTURE, help="bundle to serve")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=6400, help="closed-loop total")
    p.add_argument("--paced-seconds", type=float, default=20.0)
    p.add_argument("--interval", type=float, default=0.1, help="paced: s per client")
    p.add_argument("--swap-every", type=float, default=0.5)
    p.add_argument("--root", type=Path, default=ROOT, help="checkout whose server")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    p.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto")
    p.add_argument("--client-loop", choices=["uvloop", "asyncio"], default="uvloop")
    return p.parse_args(argv)


# ---------------------------------------------------------------- set-up


def make_versions(bundle: Path, root: Path) -> dict[str, Path]:
    """Two versions of `bundle`: as saved, and with its recent prices x 1.25."""
    from forecaster.store.manifest import write_manifest

    first, second = root / "version-a", root / "version-b"
    shutil.copytree(bundle, first)
    shutil.copytree(bundle, second)
    recent = pd.read_csv(second / "recent_prices.csv")
    recent["price"] *= 1.25
    recent.to_csv(second / "recent_prices.csv", index=False)
    (second / "manifest.json").unlink()
    write_manifest(second)
    return {"a": first, "b": second}


def expected_rows(versions: dict[str, Path]) -> dict[str, list]:
    """{version (ETag): the rows of its one-day forecast}, computed here."""
    from forecaster.serve.answers import ForecastQuery, compute
    from forecaster.serve.bundles import load_served

    truth = {}
    for path in versions.values():
        loaded = load_served(NAME, path, ())
        truth[loaded.version] = json.loads(compute(loaded, ForecastQuery(days=1)))[
            "rows"
        ]
    return truth


def swapper(target: str, versions: dict, every: float, stop, count) -> None:
    """Swap the versions into `target` in turn until `stop` is set (a process)."""
    from forecaster.io import write_directory_atomically

    order = [versions["b"], versions["a"]]
    while not stop.is_set():
        time.sleep(every)
        source = order[count.value % 2]
        write_directory_atomically(
            target,
            lambda tmp, s=source: shutil.copytree(s, tmp, dirs_exist_ok=True),
            replace=True,
        )
        count.value += 1


# The server of `--root` through uvicorn.run with a chosen loop and parser,
# otherwise as `forecaster serve` runs it (forecaster/serve/server.py).
LAUNCH = """import sys, uvicorn
from forecaster.serve.app import create_app
models, port, loop, http = sys.argv[1:]
uvicorn.run(create_app(models), host="127.0.0.1", port=int(port), loop=loop,
            http=http, access_log=False, log_level="warning", timeout_keep_alive=30)
"""


def start_server(models: Path, args) -> tuple[subprocess.Popen, int]:
    """The server on 127.0.0.1 and a free port, once listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if args.loop == args.http == "auto":
        command = [sys.executable, "-m", "forecaster", "serve", str(models)]
        command += ["--port", str(port), "--quiet"]
    else:
        command = [sys.executable, "-c", LAUNCH, str(models), str(port)]
        command += [args.loop, args.http]
    process = subprocess.Popen(
        command,
        cwd=args.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


# ---------------------------------------------------------------- clients


async def open_client(port: int):
    return await asyncio.open_connection("127.0.0.1", port)


async def get(streams, path: str) -> tuple[float, int, str, bytes]:
    """(seconds, status, etag, body) of one keep-alive GET on `streams`.

    A connection closed by the server is an error: status 0.
    """
    try:
        return await get_once(streams, path)
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0.0, 0, "", b""


async def get_once(streams, path: str) -> tuple[float, int, str, bytes]:
    reader, writer = streams
    started = time.perf_counter()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {key.lower(): value for key, value in headers.items()}
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return time.perf_counter() - started, status, headers.get("etag", ""), body


async def closed_loop(port: int, clients: int, total: int) -> tuple[list, float]:
    """`clients` keep-alive clients sharing `total` requests, each back to back."""
    results, left = [], [total]

    async def one_client():
        streams = await open_client(port)
        while left[0] > 0:
            left[0] -= 1
            results.append(await get(streams, ONE_DAY))
            if results[-1][1] == 0:  # closed by the server: counted, reconnect
                streams = await open_client(port)
        streams[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return results, time.perf_counter() - started


async def paced(port: int, clients: int, seconds: float, interval: float):
    """Each client sends one request every `interval` s for `seconds`."""
    results = []

    async def one_client(offset: float):
        streams = await open_client(port)
        await asyncio.sleep(offset)
        start = time.perf_counter()
        sent = 0
        while time.perf_counter() - start < seconds:
            results.append(await get(streams, ONE_DAY))
            if results[-1][1] == 0:
                streams = await open_client(port)
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * interval - time.perf_counter()))
        streams[1].close()

    started = time.perf_counter()
    offsets = [interval * k / clients for k in range(clients)]
    await asyncio.gather(*(one_client(offset) for offset in offsets))
    return results, time.perf_counter() - started


FEW_PATHS, MANY_PATHS = 64, 2048  # the sampled forecasts compared


async def sampled_cost(port: int, rounds: int = 5) -> dict:
    """Median seconds of an uncached 5-day forecast with FEW_ and MANY_PATHS
    paths, in alternating rounds (distinct seeds: nothing is cached)."""
    streams = await open_client(port)
    timings = {FEW_PATHS: [], MANY_PATHS: []}
    for seed in range(1, rounds + 1):
        for samples in timings:
            path = f"/models/{NAME}/forecast?days=5&samples={samples}&seed={seed}"
            took, status, _, _ = await get(streams, path)
            assert status == 200, status
            timings[samples].append(took)
    streams[1].close()
    return {samples: statistics.median(seconds) for samples, seconds in timings.items()}


# ---------------------------------------------------------------- figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(phase, pid: int) -> tuple[list, float, dict]:
    """(results, seconds, CPU ms per request of server and client) of `phase`."""
    server, client = cpu_seconds(pid), time.process_time()
    results, seconds = await phase
    count = max(1, len(results))
    cpu = {
        "server_cpu_ms": 1000 * (cpu_seconds(pid) - server) / count,
        "client_cpu_ms": 1000 * (time.process_time() - client) / count,
    }
    return results, seconds, cpu


def summary(label: str, results: list, seconds: float, truth: dict) -> dict:
    """Latency percentiles, requests/s, errors and torn reads of one phase."""
    latencies = sorted(r[0] for r in results if r[1] != 0)
    errors = sum(1 for r in results if r[1] != 200)
    torn = sum(
        1
        for _, status, etag, body in results
        if status == 200 and json.loads(body)["rows"] != truth.get(etag)
    )
    versions = sorted({r[2] for r in results if r[1] == 200})
    return {
        "phase": label,
        "requests": len(results),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": 1000 * latencies[-1],
        "req_per_s": len(results) / seconds,
        "errors": errors,
        "torn": torn,
        "versions_seen": len(versions),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.client_loop == "uvloop":
        try:
            import uvloop  # the lightest client loop, when installed

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            args.client_loop = "asyncio"
    with tempfile.TemporaryDirectory(prefix="serve-load-") as scratch:
        root = Path(scratch)
        versions = make_versions(args.bundle, root)
        truth = expected_rows(versions)
        models = root / "models"
        shutil.copytree(versions["a"], models / NAME)
        process, port = start_server(models, args)
        stop, count = multiprocessing.Event(), multiprocessing.Value("i", 0)
        try:
            rows = asyncio.run(
                run_phases(args, (port, process.pid), truth, (stop, count), models,
                           versions)
            )  # fmt: skip
        finally:
            stop.set()
            process.terminate()
            process.wait(timeout=30)
    print_figures(args, rows)
    return (
        0 if all(row.get("errors", 0) == row.get("torn", 0) == 0 for row in rows) else 1
    )


async def run_phases(args, server, truth, swapping, models, versions) -> list[dict]:
    """Warm up; the closed loop without, then with swaps; paced; sampling cost."""
    port, pid = server
    stop, count = swapping
    warm = await open_client(port)
    for _ in range(20):
        await get(warm, ONE_DAY)
    warm[1].close()
    rows = []
    phase = closed_loop(port, args.clients, args.requests)
    results, seconds, cpu = await measured(phase, pid)
    rows.append({**summary("closed, no swap", results, seconds, truth), **cpu,
                 "swaps": 0})  # fmt: skip
    swaps = multiprocessing.Process(
        target=swapper,
        args=(str(models / NAME), {k: str(v) for k, v in versions.items()},
              args.swap_every, stop, count),
    )  # fmt: skip
    swaps.start()
    before = count.value
    phase = closed_loop(port, args.clients, args.requests)
    results, seconds, cpu = await measured(phase, pid)
    rows.append({**summary("closed, swaps", results, seconds, truth), **cpu,
                 "swaps": count.value - before})  # fmt: skip
    before = count.value
    phase = paced(port, args.clients, args.paced_seconds, args.interval)
    results, seconds, cpu = await measured(phase, pid)
    rows.append({**summary("paced, swaps", results, seconds, truth), **cpu,
                 "swaps": count.value - before})  # fmt: skip
    stop.set()
    swaps.join()
    costs = await sampled_cost(port)
    rows.append({"phase": "sampled", **costs})
    return rows


def print_figures(args, rows: list[dict]) -> None:
    print(
        f"forecaster serve ({args.root}; loop {args.loop}, http {args.http}), "
        f"{args.clients} clients ({args.client_loop}) on 127.0.0.1, one-day "
        f"forecasts of {args.bundle.name}, a swap every {args.swap_every} s"
    )
    columns = ["requests", "p50 ms", "p99 ms", "max ms", "req/s", "errors", "torn"]
    columns += ["swaps", "versions", "srv cpu", "cli cpu"]
    widths = [8, 7, 7, 7, 7, 6, 5, 5, 8, 7, 7]
    header = " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    print(f"{'phase':<16} {header}")
    for row in rows[:-1]:
        print(
            f"{row['phase']:<16} {row['requests']:>8} {row['p50_ms']:>7.1f} "
            f"{row['p99_ms']:>7.1f} {row['max_ms']:>7.1f} {row['req_per_s']:>7.0f} "
            f"{row['errors']:>6} {row['torn']:>5} {row['swaps']:>5} "
            f"{row['versions_seen']:>8} {row['server_cpu_ms']:>7.2f} "
            f"{row['client_cpu_ms']:>7.2f}"
        )
    print("(srv cpu / cli cpu: CPU ms per request of the server / client process)")
    cost = rows[-1]
    few, many = cost[FEW_PATHS], cost[MANY_PATHS]
    per_path = (many - few) / (MANY_PATHS - FEW_PATHS)
    print(
        f"sampled 5-day forecast (uncached, median of 5): {FEW_PATHS} paths "
        f"{few * 1000:.0f} ms, {MANY_PATHS} paths {many * 1000:.0f} ms: "
        f"{per_path * 1e6:.0f} us per 5-day path"
    )


if __name__ == "__main__":
    sys.exit(main())
