"""The Ray runtime for forecaster: an embedded one or a named cluster.

Ray is an optional extra (`pip install "forecaster[ray]"`). Nothing here
imports it at module level, so without Ray everything else works and the
distributed commands fail with one line saying what to install.

    from forecaster.distributed.runtime import start_ray, stop_ray
    start_ray()                                   # embedded, sized to the machine
    start_ray("ray://head:10001")                 # or a cluster (or RAY_ADDRESS)

TensorFlow is imported inside the tasks, each limited to the CPUs Ray gives
it (`configure_tensorflow`).
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")

INSTALL_HINT = 'pip install "forecaster[ray]" (or pip install ".[ray]" in a checkout)'
OBJECT_STORE_BYTES = 512 * 2**20  # embedded runtime: tasks pass price series and
#   metrics (kilobytes), so a small store; Ray's default takes 30% of the memory
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
    with loopback_node_address():
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
def loopback_node_address():
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
        raise _join_error(address, one_line(err)) from None


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
        reason = f"cannot reach port {port} of {host}: {one_line(err)}"
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


def one_line(err: BaseException) -> str:
    """An error as one line for a table or a log: its type unless a ForecasterError."""
    text = (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, ForecasterError):
        return text
    return f"{type(err).__name__}: {text}"[:300]


def _assigned_cpus() -> int:
    try:
        import ray

        context = ray.get_runtime_context() if ray.is_initialized() else None
        # only a Ray worker has assigned resources (a driver that joined Ray,
        # such as a test process running a task in-process, has none)
        if context is not None and context.worker.mode == ray.WORKER_MODE:
            assigned = context.get_assigned_resources()
            return max(1, int(assigned.get("CPU", 1)))
    except ImportError:
        pass
    return 1


def _package_dir() -> Path:
    """The directory holding the `forecaster` package this process runs."""
    return Path(__file__).resolve().parents[2]  # forecaster/distributed/runtime.py


def _export_package_path() -> None:
    """Let the embedded runtime's workers import this same `forecaster` package.

    Workers start from the runtime's environment, inherited from this process.
    """
    root = str(_package_dir())
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
