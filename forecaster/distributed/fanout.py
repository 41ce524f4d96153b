"""Ray for forecaster: an embedded runtime or a named cluster, and per-series fan-out.

Ray is an optional extra (`pip install "forecaster[ray]"`). Nothing here
imports it at module level, so without Ray everything else works and the
distributed commands fail with one line saying what to install.

    from forecaster.distributed.fanout import start_ray, train_per_series
    start_ray()                                   # embedded, sized to the machine
    results = train_per_series([("AAPL", aapl), ("MSFT", msft)], settings, "models/u")

The same code runs on a cluster: `start_ray("ray://head:10001")`, or the
standard RAY_ADDRESS variable. TensorFlow is imported inside the tasks, each
limited to the CPUs Ray gives it (forecaster.distributed.fanout.configure_tensorflow).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from forecaster.config import Settings
from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")

INSTALL_HINT = 'pip install "forecaster[ray]" (or pip install ".[ray]" in a checkout)'
OBJECT_STORE_BYTES = 512 * 2**20  # embedded runtime: tasks pass price series and
#   metrics (kilobytes), so a small store; Ray's default takes 30% of the memory
MAX_RETRIES = 2  # times Ray reruns a task whose worker process died
TASKS_PER_WORKER = 25  # a worker exits after this many trainings (Ray's max_calls):
#   one that trained 200 models in a row grew to 7.3 GiB (BENCHMARKS.md); a
#   fresh one costs a TensorFlow import, ~0.2 s a task spread over 25
COMPLETE_FILE = "metadata.json"  # written last into a bundle moved into place whole
TOKEN_FILE = Path.home() / ".ray" / "auth_token"  # where Ray keeps a cluster's token
CONNECT_TIMEOUT_S = 5  # to reach a cluster's address before Ray's own retries
LOOPBACK = ("127.0.0.1", "::1")


def import_ray():
    """The `ray` module, or a ForecasterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ForecasterError(
            f"This command runs on Ray, which is not installed: {INSTALL_HINT}."
        ) from None
    return ray


def start_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    dashboard: bool = False,
) -> str:
    """Connect to the cluster at `address` (or RAY_ADDRESS), else start one here.

    The embedded runtime is sized to the machine (`num_cpus`, default all of
    its cores), listens on 127.0.0.1 only, keeps Ray's token authentication on
    and starts no dashboard unless `dashboard` (then on 127.0.0.1 too). Returns
    where the work runs, for a log line. Calling it again reuses the runtime.
    """
    ray = import_ray()
    if num_cpus is not None and num_cpus < 1:
        raise ForecasterError(
            f"num_cpus must be at least 1. Received: num_cpus={num_cpus}"
        )
    if ray.is_initialized():
        return "the Ray runtime already started in this process"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        log.warning(
            "RAY_AUTH_MODE=disabled: Ray's token authentication is off, so anyone "
            "who reaches its ports can run code here; unset it to keep it on"
        )
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report sent home
    if address:
        _connect(ray, address)
        return f"the Ray cluster at {address}"
    _start_embedded(ray, num_cpus or os.cpu_count() or 1, dashboard)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return f"an embedded Ray runtime on this machine ({cpus} CPUs)"


def _start_embedded(ray, num_cpus: int, dashboard: bool) -> None:
    """A new runtime on this machine, its every port on the loopback interface."""
    _export_package_path()
    with _loopback_node_address():
        ray.init(
            address="local",  # a new runtime: never join one someone else started
            num_cpus=num_cpus,
            object_store_memory=OBJECT_STORE_BYTES,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    node_address = ray.util.get_node_ip_address()
    if node_address not in LOOPBACK:
        log.warning(
            "the embedded Ray runtime took this machine's address %s, so its "
            "ports listen on every interface: keep a host firewall in front",
            node_address,
        )


@contextmanager
def _loopback_node_address():
    """Have Ray give the node it starts the address 127.0.0.1.

    Ray binds the servers of a node whose address is 127.0.0.1 to 127.0.0.1:
    the gRPC servers of the GCS, raylet and workers, the agents and the
    dashboard. On Linux it takes the outbound interface's address instead,
    even for a requested 127.0.0.1 (`ray.init(_node_ip_address=...)` is
    resolved to it), unless its local-only mode is on, as it is by default on
    macOS and Windows: `ray._private.ray_constants.ENABLE_RAY_CLUSTER`, read
    from RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when Ray is imported. It is turned
    off only while the runtime starts: the node keeps its address after.
    """
    from ray._private import ray_constants

    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _connect(ray, address: str) -> None:
    """Join the cluster at `address`, sending its token when this machine has one."""
    _check_reachable(address)
    token = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    if "RAY_AUTH_MODE" not in os.environ and (token or TOKEN_FILE.exists()):
        _send_token()
    try:
        ray.init(
            address=address,
            runtime_env={"py_modules": [str(_package_dir() / "forecaster")]},
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except ConnectionError as err:
        raise _join_error(address, _one_line(err)) from None


def _send_token() -> None:
    """Turn on token mode here: a driver joins a cluster without its token otherwise.

    Ray reads RAY_AUTH_MODE once, when it is imported; setting it later takes
    effect only once Ray reads its settings again, as Ray does itself when it
    turns the mode on for a runtime it starts (authentication_token_setup.py).
    """
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")


def _check_reachable(address: str) -> None:
    """Fail in seconds when nothing answers at `address`.

    Ray keeps retrying an address where nothing listens for minutes before
    it gives up. A plain TCP connection tells at once (or after
    CONNECT_TIMEOUT_S when the packets are dropped).
    """
    host, port = _host_and_port(address)
    if port is None:
        return  # "auto" or a form Ray parses itself: leave it to Ray
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        reason = f"cannot reach port {port} of {host}: {_one_line(err)}"
        raise _join_error(address, reason) from None


def _host_and_port(address: str) -> tuple[str, int | None]:
    """("head", 10001) from "ray://head:10001", "head:10001" or "[::1]:6379"."""
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return hostport, None


def _join_error(address: str, reason: str) -> ForecasterError:
    return ForecasterError(
        f"Could not join the Ray cluster at {address!r} ({reason}). "
        "Check the address (the head's 'ray start' prints it) and that this "
        "machine has the cluster's token (run 'ray get-auth-token' on the "
        f"head; put it in {TOKEN_FILE} or RAY_AUTH_TOKEN here)."
    )


def stop_ray() -> None:
    """Shut down the runtime this process started or joined (if any)."""
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()


def configure_tensorflow(cpus: int | None = None) -> int:
    """Limit this task's TensorFlow to its share of the cores; GPU memory growth.

    `cpus` defaults to the CPUs Ray assigned to the running task (1 when not
    in a task). Threads can be set only before TensorFlow starts in a
    process; a reused worker keeps those set by its first task, which asked
    for the same CPUs. Returns the thread count.
    """
    if cpus is None:
        cpus = _assigned_cpus()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)
    except RuntimeError:
        pass  # TensorFlow already runs in this reused worker, with these threads
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised by an earlier task, with growth set
    return cpus


def gpus_per_task() -> float:
    """GPUs each task declares: one when the runtime has GPUs, else none."""
    ray = import_ray()
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


# ----------------------------------------------------------- per-series fan-out


@dataclass
class SeriesResult:
    """What became of one series of a fan-out."""

    name: str
    status: str  # "trained", "complete" (found done by --resume) or "failed"
    out: Path  # its bundle directory
    seconds: float | None = None  # wall time of its task (training and saving)
    metrics: dict = field(default_factory=dict)  # test scores, model beside naive
    error: str | None = None  # why it failed, one line
    peak_memory_mb: float | None = None  # the worker process' peak resident memory

    def row(self) -> dict:
        """One line of the summary table (series.csv)."""
        model = self.metrics.get("model", {})
        naive = self.metrics.get("naive", {})
        return {
            "series": self.name,
            "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "rmse": model.get("rmse"),
            "naive_rmse": naive.get("rmse"),
            "peak_memory_mb": self.peak_memory_mb,
            "error": self.error or "",
        }


def is_complete(out: Path) -> bool:
    """A bundle is complete once it is in place: it is moved there whole."""
    return (Path(out) / COMPLETE_FILE).exists()


def train_per_series(
    series: Sequence[tuple[str, object]],
    settings: Settings,
    out: str | os.PathLike,
    resume: bool = False,
    force: bool = False,
    max_retries: int = MAX_RETRIES,
    on_result: Callable[[SeriesResult], None] | None = None,
    before_save: Callable[[str], None] | None = None,
    cutoff=None,
) -> list[SeriesResult]:
    """Train one bundle per series, one Ray task each, into `out/<name>/`.

    `series`: (name, prices) pairs; prices as `Forecaster.fit` takes them
    (a pandas Series, an OHLCV DataFrame or `Prices`), or an exception
    raised while loading them, reported as that series' failure. A series
    that fails is reported with its error and the others are kept. With
    `resume`, complete bundles are skipped and interrupted ones continue from
    their checkpoint; a task whose worker dies is rerun up to `max_retries`
    times, from its last completed epoch. `before_save(name)` runs in the
    task before the bundle is written (tests use it to kill a worker there).
    `cutoff` (a date) makes every series' first test day the same, the one
    a global model of the same series would use, so the two compare on the
    same days. Returns one SeriesResult per series, in the order given.
    """
    ray = import_ray()
    settings.validate()
    if max_retries < 0:
        raise ForecasterError(
            f"max_retries must be 0 or more. Received: max_retries={max_retries}"
        )
    names = [name for name, _ in series]
    _check_names(names)
    out = Path(out)
    if out.exists() and not (resume or force) and any(out.iterdir()):
        raise ForecasterError(
            f"{str(out)!r} already exists: add --resume to skip the series already "
            "trained there, --force to retrain them all, or choose another --out."
        )
    if not ray.is_initialized():
        start_ray()
    task = ray.remote(max_calls=TASKS_PER_WORKER)(_train_task).options(
        num_cpus=1,
        num_gpus=gpus_per_task(),
        max_retries=max_retries,
        retry_exceptions=False,  # a bad series fails the same way every time
    )
    results: dict[str, SeriesResult] = {}
    pending = {}
    for name, prices in series:
        target = out / name
        if resume and not force and is_complete(target):
            results[name] = _complete(name, target)
        elif isinstance(prices, BaseException):
            results[name] = SeriesResult(
                name, "failed", target, error=_one_line(prices)
            )
        else:
            if not resume:
                _discard_checkpoint(target)
            ref = task.remote(name, prices, settings, str(target), before_save, cutoff)
            pending[ref] = name
            continue
        if on_result:
            on_result(results[name])
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        name = pending.pop(ref)
        results[name] = _collect(ray, ref, name, out / name)
        if on_result:
            on_result(results[name])
    return [results[name] for name in names]


def write_summary(results: Sequence[SeriesResult], out: str | os.PathLike) -> Path:
    """Write `out/series.csv`: one row per series, its status, scores and error."""
    import pandas as pd

    from forecaster.io import write_file_atomically

    table = pd.DataFrame([r.row() for r in results])
    path = Path(out) / "series.csv"
    return write_file_atomically(path, lambda tmp: table.to_csv(tmp, index=False))


def _train_task(name, prices, settings, out, before_save, cutoff=None):
    """One series, in a Ray worker: fit, then move its bundle into place whole."""
    configure_tensorflow()
    from forecaster.api import Forecaster
    from forecaster.train.checkpoint import discard_checkpoint
    from forecaster.workflows.runs import checkpoint_dir_for

    started = time.perf_counter()
    out = Path(out)
    checkpoint = checkpoint_dir_for(out)
    # A checkpoint here is this run's (stale ones were removed before the tasks
    # were sent), left by an attempt whose worker died: continue from it.
    resume = (checkpoint / "state.json").exists()
    model = Forecaster.from_settings(settings)
    model.settings.train.verbose = 0
    model.fit(prices, cutoff=cutoff, checkpoint_dir=checkpoint, resume=resume)
    if before_save is not None:
        before_save(name)
    model.save(out, force=True)
    discard_checkpoint(checkpoint)
    metrics = model.metrics_
    if "series" in metrics:  # fitted as a panel of one (a shared cut-off)
        metrics = next(iter(metrics["series"].values()))
    return {
        "metrics": metrics,
        "seconds": time.perf_counter() - started,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _collect(ray, ref, name: str, out: Path) -> SeriesResult:
    try:
        done = ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        return SeriesResult(name, "failed", out, error=_one_line(err.cause or err))
    except ray.exceptions.RayError as err:  # the worker died more than max_retries
        return SeriesResult(name, "failed", out, error=_one_line(err))
    return SeriesResult(
        name,
        "trained",
        out,
        seconds=done["seconds"],
        metrics=done["metrics"],
        peak_memory_mb=round(done["peak_memory_mb"], 1),
    )


def _complete(name: str, out: Path) -> SeriesResult:
    metrics_file = out / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return SeriesResult(name, "complete", out, metrics=metrics)


def _discard_checkpoint(out: Path) -> None:
    from forecaster.workflows.runs import checkpoint_dir_for

    checkpoint = checkpoint_dir_for(out)
    if checkpoint.exists():
        log.warning(
            "an interrupted run's checkpoint at %s is replaced: use --resume to "
            "continue it instead",
            checkpoint,
        )
        # Not training.discard_checkpoint: that module imports Keras, which the
        # driver of a fan-out never needs.
        shutil.rmtree(checkpoint, ignore_errors=True)


def _check_names(names: list[str]) -> None:
    if not names:
        raise ForecasterError("series is empty: give at least one series to train.")
    seen, repeated = set(), []
    for name in names:
        if not name or "/" in name or name.startswith("."):
            raise ForecasterError(
                f"A series name becomes a directory name, so it cannot be empty, "
                f"contain '/' or start with '.'. Received: {name!r}"
            )
        if name in seen:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise ForecasterError(
            f"Series names must be unique (each names its bundle directory). "
            f"Received twice: {', '.join(sorted(set(repeated)))}"
        )


def _one_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, ForecasterError):
        return text
    return f"{type(err).__name__}: {text}"[:300]


def _assigned_cpus() -> int:
    try:
        import ray

        if ray.is_initialized():
            assigned = ray.get_runtime_context().get_assigned_resources()
            return max(1, int(assigned.get("CPU", 1)))
    except ImportError:
        pass
    return 1


def _package_dir() -> Path:
    """The directory holding the `forecaster` package this process runs."""
    return Path(__file__).resolve().parent.parent


def _export_package_path() -> None:
    """Let the embedded runtime's workers import this same `forecaster` package.

    Workers start from the runtime's environment, inherited from this process.
    """
    root = str(_package_dir())
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
