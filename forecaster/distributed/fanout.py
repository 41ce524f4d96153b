"""Per-series fan-out on Ray: one bundle per series, one Ray task each.

    from forecaster.distributed.runtime import start_ray
    from forecaster.distributed.fanout import train_per_series
    start_ray()                                   # embedded, sized to the machine
    results = train_per_series([("AAPL", aapl), ("MSFT", msft)], settings, "models/u")

The same code runs on a cluster: `start_ray("ray://head:10001")`, or the
standard RAY_ADDRESS variable (forecaster.distributed.runtime).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forecaster.api import Forecaster
from forecaster.config import Settings
from forecaster.distributed.runtime import (
    configure_tensorflow,
    gpus_per_task,
    import_ray,
    one_line,
    start_ray,
)
from forecaster.errors import ForecasterError
from forecaster.io import write_file_atomically
from forecaster.store.bundle import METADATA_FILE, METRICS_FILE
from forecaster.workflows.runs import checkpoint_dir_for

log = logging.getLogger("forecaster")

MAX_RETRIES = 2  # times Ray reruns a task whose worker process died
TASKS_PER_WORKER = 25  # a worker exits after this many trainings (Ray's max_calls):
#   one that trained 200 models in a row grew to 7.3 GiB (BENCHMARKS.md). Each
#   task now releases what it left (`release_worker_memory`), and a worker
#   measured flat over 200; this stays as a guard against what that does not
#   reach. A fresh worker costs a TensorFlow import, ~0.2 s a task spread over 25
WORKER_JIT_COMPILE = False  # the test-day evaluation in a worker runs without XLA:
#   XLA's compilation cache keeps every model's executables for the life of the
#   process (tensorflow/tensorflow#64170), ~4 of the ~19 MB a worker grew per
#   training (BENCHMARKS.md, "Ray workers: memory per training")
COMPLETE_FILE = METADATA_FILE  # in a bundle only once it was moved into place whole


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
    worker: int | None = None  # the worker's process id
    held_mb: float | None = None  # its resident memory as the task began

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
    tasks_per_worker: int = TASKS_PER_WORKER,
) -> list[SeriesResult]:
    """Train one bundle per series, one Ray task each, into `out/<name>/`.

    `series`: (name, prices) pairs; prices as `Forecaster.fit` takes them
    (a pandas Series, an OHLCV DataFrame or a `Series`), or an exception
    raised while loading them, reported as that series' failure. A series
    that fails is reported with its error and the others are kept. With
    `resume`, complete bundles are skipped and interrupted ones continue from
    their checkpoint; a task whose worker dies is rerun up to `max_retries`
    times, from its last completed epoch. `before_save(name)` runs in the
    task before the bundle is written (tests use it to kill a worker there).
    `cutoff` (a date) makes every series' first test day the same, the one
    a global model of the same series would use, so the two compare on the
    same days. A worker process is replaced after `tasks_per_worker`
    trainings (0: never; bench/ray_memory.py measures a worker that way).
    Returns one SeriesResult per series, in the order given.
    """
    ray = import_ray()
    names = _checked_request(series, settings, out, resume, force, max_retries)
    out = Path(out)
    if not ray.is_initialized():
        start_ray()
    task = ray.remote(max_calls=tasks_per_worker)(train_task).options(
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
            results[name] = SeriesResult(name, "failed", target, error=one_line(prices))
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


def _checked_request(series, settings, out, resume, force, max_retries) -> list[str]:
    """The series' names, once the settings, names and output directory are checked."""
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
            f"{str(out)!r} already exists: pass resume=True to skip the series "
            "already trained there, force=True to retrain them all, or choose another "
            "out path."
        )
    return names


def write_summary(results: Sequence[SeriesResult], out: str | os.PathLike) -> Path:
    """Write `out/series.csv`: one row per series, its status, scores and error."""
    import pandas as pd

    table = pd.DataFrame([r.row() for r in results])
    path = Path(out) / "series.csv"
    return write_file_atomically(path, lambda tmp: table.to_csv(tmp, index=False))


def train_task(name, prices, settings, out, before_save, cutoff=None):
    """One series, in a Ray worker: fit, then move its bundle into place whole.

    The worker runs many of these in turn: whatever the training left in
    Keras' and TensorFlow's global state is released after each, whether it
    succeeded or failed (`release_worker_memory`).
    """
    gradients_before = registered_gradients()
    try:
        return _train_one(name, prices, settings, out, before_save, cutoff)
    finally:
        release_worker_memory(gradients_before)


def release_worker_memory(gradients_before: Collection[str] | None = None) -> None:
    """Drop what a finished training left behind in this worker process.

    Every model built adds to Keras' global state (layer name counters, the
    TensorFlow graph behind `keras.backend`) and to TensorFlow's eager
    kernel cache, none of which is freed with the model:
    `keras.backend.clear_session()` resets them, and the garbage collector
    frees the model, its traced functions and datasets (reference cycles).
    It does not reach TensorFlow's XLA compilation cache, which keeps the
    executables of every `jit_compile` function compiled in the process
    (tensorflow/tensorflow#64170); measured growth with and without this
    call: BENCHMARKS.md, "Ray workers: memory per training"; so a worker
    evaluates without XLA (`WORKER_JIT_COMPILE`).

    Nor did it free the training's traced train step: every traced step
    registers a custom gradient in TensorFlow's process-wide gradient
    registry (Keras sums the gradients through the distribution strategy's
    `all_reduce`, a `tf.custom_gradient`), and that entry's closure holds
    the step's graph, with its LSTM loops, for the life of the process
    (~5 traced graphs, several MB, a training). So the custom gradients
    registered since `gradients_before` (`registered_gradients()` as the
    task began) are dropped too; None drops none. Keras and TensorFlow are
    imported only where they already run.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session(free_memory=False)
    if gradients_before is not None:
        registry = _gradient_registry()
        for name in registered_gradients().difference(gradients_before):
            del registry[name]
    gc.collect()


def registered_gradients() -> set[str]:
    """The custom gradients in TensorFlow's gradient registry (none before it loads)."""
    return {name for name in _gradient_registry() if name.startswith(_CUSTOM_GRADIENT)}


_CUSTOM_GRADIENT = "CustomGradient-"  # how tf.custom_gradient names its entries


def _gradient_registry() -> dict:
    """TensorFlow's registry of gradient functions by op name, {} before it loads.

    A private attribute of TensorFlow (tensorflow/python/framework/ops.py,
    `_gradient_registry`): a version without it gets {}, so nothing is
    dropped there rather than a failed task.
    """
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else {}


def _train_one(name, prices, settings, out, before_save, cutoff):
    """The training behind `train_task`."""
    held_mb = resident_mb()  # what earlier tasks of this worker left behind
    configure_tensorflow()
    from forecaster.train.checkpoint import discard_checkpoint  # Keras: worker only

    started = time.perf_counter()
    out = Path(out)
    checkpoint = checkpoint_dir_for(out)
    # A checkpoint here is this run's (stale ones were removed before the tasks
    # were sent), left by an attempt whose worker died: continue from it.
    resume = (checkpoint / "state.json").exists()
    model = Forecaster.from_settings(settings)
    model.settings.train.verbose = 0
    model.fit(
        prices,
        cutoff=cutoff,
        checkpoint_dir=checkpoint,
        resume=resume,
        jit_compile=WORKER_JIT_COMPILE,
    )
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
        "pid": os.getpid(),
        "held_mb": held_mb,
    }


def resident_mb() -> float | None:
    """This process' resident memory now, in MB (None where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _collect(ray, ref, name: str, out: Path) -> SeriesResult:
    try:
        done = ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        return SeriesResult(name, "failed", out, error=one_line(err.cause or err))
    except ray.exceptions.RayError as err:  # the worker died more than max_retries
        return SeriesResult(name, "failed", out, error=one_line(err))
    return SeriesResult(
        name,
        "trained",
        out,
        seconds=done["seconds"],
        metrics=done["metrics"],
        peak_memory_mb=round(done["peak_memory_mb"], 1),
        worker=done["pid"],
        held_mb=done["held_mb"],
    )


def _complete(name: str, out: Path) -> SeriesResult:
    metrics_file = out / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return SeriesResult(name, "complete", out, metrics=metrics)


def _discard_checkpoint(out: Path) -> None:
    checkpoint = checkpoint_dir_for(out)
    if checkpoint.exists():
        log.warning(
            "an interrupted run's checkpoint at %s is replaced: pass resume=True to "
            "continue it instead",
            checkpoint,
        )
        # Not train.checkpoint.discard_checkpoint: that module imports Keras, which the
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
