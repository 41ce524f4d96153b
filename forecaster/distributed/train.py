"""One global model over a panel, trained data-parallel on Ray Train (`ray_workers=N`).

    import forecaster as fc
    fc.Forecaster(ray_workers=2).fit(panel)   # forecaster train ... --ray-workers 2

`Forecaster.fit` hands the prepared series here when `ray_workers` is set.
The driver splits the panel's training windows into N contiguous shards of
equal size (a series may be cut between two workers), puts each shard in
Ray's object store, and starts Ray Train's TensorflowTrainer with N workers
of one CPU each; each worker fetches only its own shard and trains in
lockstep with the others (forecaster.distributed.worker). Each takes
`batch_size` windows a step, so the global batch is `batch_size * N`,
learned at the model's `learning_rate` (both recorded in the bundle, as with
`devices`). Checkpoints go through Ray Train (one an epoch, in the local
run's format); a worker that dies makes Ray Train restart the group from the
last one, up to MAX_FAILURES times. The driver then loads the best weights
and returns a train.fit.TrainResult, which becomes the same bundle as a
local run's.

Ray is imported only when a run starts; this module imports TensorFlow (the
driver scores the model), and `forecaster.api` imports it only when asked.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from forecaster.config import Settings
from forecaster.distributed.registry import WorkerRegistry
from forecaster.distributed.runtime import import_ray, one_line, start_ray
from forecaster.errors import ForecasterError
from forecaster.train.checkpoint import CheckpointState
from forecaster.train.fit import TrainResult, head_scales, input_runtime

log = logging.getLogger("forecaster")

CPUS_PER_WORKER = 1  # each worker's TensorFlow runs on one core
MAX_FAILURES = 2  # times Ray Train restarts the workers from the last checkpoint
CHECKPOINTS_KEPT = 2  # in the run's storage: the last and the one before it
PROBE_TIMEOUT_S = 120  # to import forecaster on every node before training
RUN_NAME = "ray-train"  # the run's folder in its storage


def fit_on_ray(
    parts: list,
    settings: Settings,
    checkpoint_dir=None,
    resume: bool = False,
    hook=None,
) -> TrainResult:
    """Train one model on `parts` (prep.windows.Prepared) with `ray_workers` workers.

    Joins the Ray runtime this process started or joined, else starts one
    (forecaster.distributed.runtime.start_ray: RAY_ADDRESS, else embedded).
    Ray Train keeps its checkpoints under `checkpoint_dir` (a folder every
    node can reach; a temporary one when None); with `resume` a killed run
    continues from the last one there. `hook(rank, epoch, step)` runs in the
    workers after each step (tests kill a worker there).
    """
    workers = settings.train.ray_workers
    check_request(parts, settings)
    ray = import_ray()
    if not ray.is_initialized():
        start_ray()
    check_cluster(ray, workers)
    check_workers_import(ray)
    storage, temporary = _storage(checkpoint_dir, resume)
    try:
        return _train(ray, parts, settings, storage, hook)
    finally:
        if temporary:
            shutil.rmtree(storage, ignore_errors=True)


def check_request(parts: list, settings: Settings) -> None:
    """One clear line for a request that Ray Train cannot run."""
    train = settings.train
    workers = train.ray_workers
    if train.devices is not None and train.devices > 1:
        raise ForecasterError(
            "ray_workers and devices both split one model's training: use one. "
            f"Received: ray_workers={workers}, devices={train.devices}"
        )
    fit = sum(part.split.n_fit for part in parts)
    if fit < workers:
        raise ForecasterError(
            f"ray_workers={workers} is more workers than the panel has training "
            f"windows ({fit}): ask for fewer. Received: ray_workers={workers}"
        )


def check_cluster(ray, workers: int) -> None:
    """Fail at once when the cluster has too few CPUs (Ray Train would wait forever)."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    needed = workers * CPUS_PER_WORKER
    if needed > cpus:
        raise ForecasterError(
            f"ray_workers={workers} needs {needed} CPUs on the Ray cluster (one a "
            f"worker) and it has {cpus}: ask for at most {cpus // CPUS_PER_WORKER} "
            f"workers, or add nodes. Received: ray_workers={workers}"
        )


def check_workers_import(ray) -> None:
    """Import forecaster once on every node with CPUs; one line if it cannot.

    Without it, workers that cannot import forecaster fail to start, Ray
    Train restarts them MAX_FAILURES times and the error comes back deep in
    a traceback.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # A lambda is shipped by value: the node does not need forecaster to run it.
    probe = ray.remote(num_cpus=0)(lambda: __import__("forecaster").__version__)
    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
    refs = {
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(): n
        for n in nodes
    }
    for ref, node in refs.items():
        try:
            ray.get(ref, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None) or err
            raise ForecasterError(
                f"The Ray workers on node {node['NodeManagerAddress']} cannot import "
                f"forecaster ({one_line(cause)}): install it on every node (pip "
                'install "forecaster[ray]"), or join the cluster with --ray-address, '
                "which ships this package to its workers."
            ) from None


def shard_parts(parts: list, workers: int) -> list[list]:
    """`workers` shards of the panel's windows, each a list of prep.windows.Prepared.

    The fit windows of all the series, one series after another, are cut
    into `workers` contiguous runs of equal size (to one window), and so are
    the validation windows. A worker's shard holds each series it touches,
    its split narrowed to that worker's windows: a series may be shared by
    two neighbouring workers, and no worker holds every series.
    """
    fit = _cut([part.split.fit_targets for part in parts], workers)
    val = _cut([part.split.val_targets for part in parts], workers)
    shards = []
    for k in range(workers):
        shard = []
        for i, part in enumerate(parts):
            fit_range, val_range = fit[k].get(i), val[k].get(i)
            if fit_range is None and val_range is None:
                continue
            split = replace(
                part.split,
                fit_targets=fit_range or (part.split.fit_targets[0],) * 2,
                val_targets=val_range or (part.split.val_targets[0],) * 2,
            )
            shard.append(replace(part, split=split))
        shards.append(shard)
    return shards


def _cut(ranges: list[tuple[int, int]], workers: int) -> list[dict]:
    """For each worker, {series index: (start, stop)} of its run of the windows."""
    sizes = [stop - start for start, stop in ranges]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    total = int(offsets[-1])
    cuts = []
    for k in range(workers):
        low, high = k * total // workers, (k + 1) * total // workers
        mine = {}
        for i, (start, _) in enumerate(ranges):
            a, b = max(low, offsets[i]), min(high, offsets[i + 1])
            if a < b:
                mine[i] = (start + int(a - offsets[i]), start + int(b - offsets[i]))
        cuts.append(mine)
    return cuts


def steps_per_epoch(parts: list, settings: Settings) -> int:
    """Global steps an epoch: one pass over every fit window at the global batch."""
    fit = sum(part.split.n_fit for part in parts)
    return math.ceil(fit / global_batch(settings))


def global_batch(settings: Settings) -> int:
    """Windows a step over all the workers: `batch_size` each."""
    return settings.train.batch_size * settings.train.ray_workers


def _storage(checkpoint_dir, resume: bool) -> tuple[Path, bool]:
    """(where Ray Train keeps this run's checkpoints, whether it is temporary)."""
    if checkpoint_dir is None:
        if resume:
            raise ForecasterError(
                "resume needs the checkpoint_dir of the run to continue. "
                "Received: resume=True, checkpoint_dir=None"
            )
        return Path(tempfile.mkdtemp(prefix="forecaster-ray-train-")), True
    storage = Path(checkpoint_dir).resolve()
    run = storage / RUN_NAME
    if resume and not run.exists():
        raise ForecasterError(
            f"resume found no Ray Train run at {str(run)!r}: nothing to resume. "
            "Start a new run instead. Received: resume=True"
        )
    if not resume and run.exists():
        shutil.rmtree(run)  # Ray Train would otherwise continue that run
    storage.mkdir(parents=True, exist_ok=True)
    return storage, False


def _train(ray, parts: list, settings: Settings, storage: Path, hook) -> TrainResult:
    """Run the TensorflowTrainer; the best model and the run's record (TrainResult)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    # lazy: the worker module imports Ray and runs in the workers
    from forecaster.distributed.worker import train_loop

    workers = settings.train.ray_workers
    registry = ray.remote(num_cpus=0)(WorkerRegistry).remote()
    config = {
        "settings": settings.to_dict(),
        "shards": [ray.put(shard) for shard in shard_parts(parts, workers)],
        "scales": head_scales(parts),
        "n_features": parts[0].n_features,
        "steps": steps_per_epoch(parts, settings),
        "registry": registry,
        "hook": hook,
    }
    trainer = TensorflowTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=workers, resources_per_worker={"CPU": CPUS_PER_WORKER}
        ),
        run_config=RunConfig(
            name=RUN_NAME,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
        ),
    )
    started = time.perf_counter()
    log.info(
        "training one model on %d Ray Train workers: global batch %d (%d a "
        "worker), learning rate %g",
        workers,
        global_batch(settings),
        settings.train.batch_size,
        settings.model.learning_rate,
    )
    try:
        result = trainer.fit()
    except Exception as err:  # Ray Train gave up: its cause, as one line
        raise ForecasterError(
            f"Ray Train failed after {MAX_FAILURES} restarts: {_cause(err)}"
        ) from None
    seconds = time.perf_counter() - started
    placed = ray.get(registry.placements.remote())
    config["epoch_seconds"] = ray.get(registry.epoch_seconds.remote())
    return _result(result, settings, config, placed, seconds)


def _cause(err: BaseException) -> str:
    """The innermost error of a Ray Train failure, one line."""
    seen = err
    for _ in range(10):
        inner = getattr(seen, "cause", None) or seen.__cause__
        if inner is None or inner is seen:
            break
        seen = inner
    return one_line(seen)


def _result(result, settings: Settings, config, placed, seconds) -> TrainResult:
    """The best model from the run's last checkpoint, with what the run was."""
    if result.checkpoint is None:
        raise ForecasterError(
            "Ray Train finished without a checkpoint: nothing to save."
        )
    local = result.checkpoint.to_directory(tempfile.mkdtemp(prefix="forecaster-"))
    try:
        state = CheckpointState.read(local)
        model = keras.saving.load_model(state.model_path, safe_mode=True)
        with np.load(state.best_weights_path) as saved:
            model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
    finally:
        shutil.rmtree(local, ignore_errors=True)
    runtime = input_runtime()
    runtime["ray_train"] = ray_train_record(settings, config, placed)
    resumed = min((p["started_at_epoch"] for p in placed.values()), default=0)
    return TrainResult(
        model=model,
        history=state.history,
        best_epoch=state.best_epoch,
        seconds=seconds,
        resumed_from=resumed,
        runtime=runtime,
    )


def ray_train_record(settings: Settings, config: dict, placed: dict) -> dict:
    """What the bundle's metadata says of the run: workers, nodes, batch, rate."""
    workers = [placed[rank] for rank in sorted(placed)]
    return {
        "workers": settings.train.ray_workers,
        "nodes": sorted({w["node_id"] for w in workers}),
        "placement": [
            {"rank": rank, **{k: w[k] for k in ("node_id", "node_ip", "hostname")}}
            for rank, w in enumerate(workers)
        ],
        "global_batch": global_batch(settings),
        "batch_per_worker": settings.train.batch_size,
        "learning_rate": settings.model.learning_rate,
        "steps_per_epoch": config["steps"],
        "epoch_seconds": config.get("epoch_seconds", []),  # on rank 0, each epoch
        "windows_per_worker": [w["fit_windows"] for w in workers],
        "attempts": max((w["attempt"] for w in workers), default=1),
        # epochs done when the last worker group started: > 0 after Ray Train
        # restarted it from a checkpoint
        "started_at_epoch": min((w["started_at_epoch"] for w in workers), default=0),
        "strategy": "MultiWorkerMirroredStrategy (Ray Train TensorflowTrainer)",
    }
