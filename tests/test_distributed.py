"""forecaster/distributed/runtime.py and fanout.py: the Ray runtime, per-series fan-out.

Every test here shares one embedded runtime (the `ray_runtime` fixture) and
trains tiny models: window 10, 2 x LSTM(4), 2 epochs.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY_FLAGS, make_prices, tiny_settings, write_csv

from forecaster.api import load
from forecaster.errors import ForecasterError

pytestmark = pytest.mark.slow  # run by `pytest -m slow` (and CI), not by default

ROOT = Path(__file__).resolve().parent.parent


def _universe():
    return [
        ("UP", make_prices(seed=1)),
        ("SHORT", make_prices(n=20, seed=2)),  # too short for window 10: fails
        ("DOWN", make_prices(seed=3, start=50.0)),
    ]


def test_one_failing_series_is_reported_and_the_others_are_kept(ray_runtime, tmp_path):
    from forecaster.distributed.fanout import train_per_series, write_summary

    seen = []
    results = train_per_series(
        _universe(), tiny_settings(), tmp_path, on_result=seen.append
    )
    assert [r.name for r in results] == ["UP", "SHORT", "DOWN"]
    assert [r.status for r in results] == ["trained", "failed", "trained"]
    assert sorted(r.name for r in seen) == ["DOWN", "SHORT", "UP"]
    assert results[1].error.startswith("need at least")
    assert not (tmp_path / "SHORT").exists()
    for result in (results[0], results[2]):
        assert result.metrics["model"]["rmse"] > 0
        assert result.peak_memory_mb > 0
        assert len(load(result.out).forecast(3)) == 3
    table = write_summary(results, tmp_path).read_text().splitlines()
    assert table[0].startswith("series,status,seconds,rmse,naive_rmse")
    assert len(table) == 4

    # --resume skips the complete bundles and retries only the failed series
    again = train_per_series(_universe(), tiny_settings(), tmp_path, resume=True)
    assert [r.status for r in again] == ["complete", "failed", "complete"]
    assert again[0].metrics == results[0].metrics

    with pytest.raises(ForecasterError, match="already exists: pass resume=True"):
        train_per_series(_universe(), tiny_settings(), tmp_path)


def test_a_worker_killed_mid_task_is_retried_and_the_run_completes(
    ray_runtime, tmp_path
):
    """The first attempt writes its pid and waits; the test SIGKILLs it there."""
    from forecaster.distributed.fanout import train_per_series

    first, retry = tmp_path / "first.pid", tmp_path / "retry.pid"
    killed = []

    def kill_first_attempt():
        deadline = time.monotonic() + 120
        while not first.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(first.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_first_attempt, daemon=True)
    killer.start()
    results = train_per_series(
        [("UP", make_prices(seed=1))],
        tiny_settings(),
        tmp_path / "out",
        before_save=_pause_first_attempt(first, retry),
    )
    killer.join(timeout=5)
    assert killed and killed[0] != int(retry.read_text())
    assert [r.status for r in results] == ["trained"]
    assert (tmp_path / "out" / "UP" / "model.keras").exists()


def _pause_first_attempt(first: Path, retry: Path):
    """A hook for the task: the first attempt records its pid and waits to die."""

    def hook(name):
        if first.exists():  # a retry: record it and finish
            retry.write_text(str(os.getpid()))
            return
        first.write_text(str(os.getpid()))
        deadline = time.monotonic() + 120  # killed long before this
        while time.monotonic() < deadline:
            time.sleep(0.1)

    return hook


def test_series_names_are_checked(ray_runtime, tmp_path):
    from forecaster.distributed.fanout import train_per_series

    twice = [("A", make_prices()), ("A", make_prices())]
    with pytest.raises(ForecasterError, match="Received twice: A"):
        train_per_series(twice, tiny_settings(), tmp_path)
    with pytest.raises(ForecasterError, match="cannot be empty, contain '/'"):
        train_per_series([("a/b", make_prices())], tiny_settings(), tmp_path)


def test_the_embedded_runtime_keeps_token_authentication(ray_runtime):
    import ray

    assert os.environ.get("RAY_AUTH_MODE") == "token"
    assert ray.cluster_resources()["CPU"] == 2


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_the_embedded_runtime_listens_on_loopback_only(ray_runtime):
    """Every port of the runtime's processes (GCS, raylet, workers, agents and
    this driver's own server) is on 127.0.0.1 or ::1, none on all interfaces."""
    pids = {os.getpid(), *_descendants(os.getpid())}
    listening = _listening_sockets(pids)
    names = {name for name, _ in listening}
    assert {"gcs_server", "raylet"} <= names, listening  # found them all
    exposed = [(name, str(ip)) for name, ip in listening if not _is_loopback(ip)]
    assert exposed == []


def test_only_a_driver_with_the_token_joins_the_runtime(ray_runtime, tmp_path):
    """The runtime's GCS refuses a driver without the token; start_ray(address)
    sends the token found in ~/.ray/auth_token (RAY_AUTH_MODE left unset)."""
    import ray

    from forecaster.distributed.runtime import TOKEN_FILE

    gcs = ray.get_runtime_context().gcs_address
    assert gcs.startswith("127.0.0.1:")
    if os.environ.get("RAY_AUTH_TOKEN") or not TOKEN_FILE.exists():
        pytest.skip("the runtime's token is not in ~/.ray/auth_token")
    without, with_token = tmp_path / "without", tmp_path / "with"
    (with_token / ".ray").mkdir(parents=True)
    (with_token / ".ray" / "auth_token").write_text(TOKEN_FILE.read_text())

    refused = _join_from_another_process(gcs, home=without)
    assert refused.returncode != 0 and "joined" not in refused.stdout
    assert "InvalidAuthToken" in refused.stderr
    assert "ForecasterError: Could not join the Ray cluster" in refused.stderr
    joined = _join_from_another_process(gcs, home=with_token)
    assert joined.stdout.split() == ["joined", "2"], joined.stderr[-2000:]


def _join_from_another_process(gcs: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(
        HOME=str(home),  # its ~/.ray/auth_token, if any
        PYTHONPATH=str(ROOT),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # or Ray turns 127.0.0.1 into eth0's
        RAY_gcs_server_port_wait_time_s="1",  # one attempt, not Ray's 20
    )
    code = (
        "import ray; from forecaster.distributed.runtime import start_ray; "
        f"start_ray({gcs!r}); print('joined', int(ray.cluster_resources()['CPU']))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_address_where_nothing_listens_fails_in_seconds(tmp_path):
    """Ray would retry 127.0.0.1:1 for minutes; forecaster stops in one line."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install .[ray]")
    argv = ["tune", "--csv", "data/AAPL.csv", "--out", str(tmp_path / "search")]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "forecaster", *argv, "--ray-address", "127.0.0.1:1"],
        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.perf_counter() - started < 30
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: Could not join the Ray cluster at '127.0.0.1:1' (cannot reach port 1 "
        "of 127.0.0.1: ConnectionRefusedError: [Errno 111] Connection refused). Check "
        "the address (the head's 'ray start' prints it) and that this machine has "
        "the cluster's token (run 'ray get-auth-token' on the head; put it in "
        f"{Path.home() / '.ray' / 'auth_token'} or RAY_AUTH_TOKEN here)."
    ]


def _descendants(root: int) -> set[int]:
    """The processes started by `root`, their children and so on (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid ..."
            parents[int(stat.parent.name)] = int(
                stat.read_text().rpartition(")")[2].split()[1]
            )
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
    found, todo = set(), [root]
    while todo:
        parent = todo.pop()
        children = {pid for pid, ppid in parents.items() if ppid == parent}
        todo.extend(children - found)
        found |= children
    return found


def _listening_sockets(pids: set[int]) -> list[tuple[str, object]]:
    """(process name, address) of each TCP socket in LISTEN state that `pids` own."""
    owner = {}
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owner[target[8:-1]] = name
        except OSError:
            continue  # ended meanwhile, or a descriptor closed as it was read
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in owner:  # 0A: LISTEN
                found.append((owner[fields[9]], _address(fields[1])))
    return found


def _address(hex_address: str):
    """The IP of /proc/net/tcp's "0100007F:1F90" (32-bit words in host order)."""
    raw = bytes.fromhex(hex_address.split(":")[0])
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def _is_loopback(ip) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_tasks_limit_tensorflow_to_their_cpus(ray_runtime):
    import ray

    from forecaster.distributed.runtime import configure_tensorflow

    @ray.remote(num_cpus=1)
    def threads():
        import tensorflow as tf

        configure_tensorflow()
        return (
            tf.config.threading.get_intra_op_parallelism_threads(),
            os.environ.get("OMP_NUM_THREADS"),
        )

    assert ray.get(threads.remote()) == (1, "1")


def test_without_ray_the_commands_say_what_to_install(monkeypatch, capsys):
    from forecaster.cli import main as cli
    from forecaster.distributed.runtime import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(ForecasterError, match=r'pip install "forecaster\[ray\]"'):
        import_ray()
    assert cli.run(cli.main, ["tune", "--trials", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: This command runs on Ray, which is not installed: pip install "
        '"forecaster[ray]" (or pip install ".[ray]" in a checkout).'
    ]


def test_forecaster_train_per_series_on_the_command_line(
    ray_runtime, tmp_path, capsys, caplog
):
    import logging

    from forecaster.cli import main as cli

    up = write_csv(tmp_path / "UP.csv", make_prices(seed=1))
    out = tmp_path / "universe"
    argv = ["train", "--per-series", "--csv", up, "--out", str(out)]
    loud = [flag for flag in TINY_FLAGS if flag != "--quiet"]  # --quiet hides notes
    with caplog.at_level(logging.INFO, logger="forecaster"):
        assert cli.run(cli.main, argv + loud) == 0
    assert "UP           trained" in capsys.readouterr().out
    assert "series 1/1 (UP): 1 done, 0 left, took " in caplog.text
    assert (out / "UP" / "model.keras").exists()
    assert (out / "series.csv").read_text().count("trained") == 1

    missing = ["train", "--per-series", "--out", str(tmp_path / "none")]
    assert cli.run(cli.main, missing + TINY_FLAGS) == 2
    assert "--per-series needs the series to train" in capsys.readouterr().err


def test_per_series_models_share_the_panel_cut_off(tmp_path):
    """Per-series models are scored on the days the global model would be."""
    import pandas as pd
    from panel_fakes import random_walk_ohlcv

    from forecaster.cli.distributed import _load_file, shared_cutoff
    from forecaster.config import DataSettings
    from forecaster.data.panel import read_panel_csvs
    from forecaster.data.series import Panel
    from forecaster.prep.panel import cutoff_date

    paths = []
    for k, (days, start) in enumerate([(260, "2020-01-01"), (150, "2020-06-01")]):
        path = tmp_path / f"S{k}.csv"
        random_walk_ohlcv(days, seed=k, start=start).to_csv(path)
        paths.append(path)
    series = [(p.stem, _load_file(p, DataSettings())) for p in paths]
    assert all(isinstance(prices, Panel) for _, prices in series)
    panel = read_panel_csvs([str(p) for p in paths])
    assert shared_cutoff(series, 0.75) == cutoff_date(panel, 0.75)
    assert shared_cutoff(series, 0.75) > pd.Timestamp("2020-06-01")


@pytest.mark.slow
def test_a_driver_that_joined_ray_runs_a_task_in_process(ray_runtime):
    """Only a Ray worker has assigned resources: the driver takes one CPU."""
    from forecaster.distributed import runtime

    assert runtime._assigned_cpus() == 1
