"""One Ray Train worker of a global model: its shard of the windows, steps in lockstep.

Runs inside the processes that Ray Train's TensorflowTrainer starts
(forecaster.distributed.train drives them). Every worker builds the same
model with the factory (forecaster.model.factory) under tf.distribute's
MultiWorkerMirroredStrategy, gathers only its own shard of the training
windows with the local run's input pipeline (train.fit.window_dataset), and
takes each step of `batch_size` windows in lockstep with the others: the
strategy sums the gradients over the workers, an all-reduce of every
trainable parameter per step.

Keras' own `fit` is not used: under MultiWorkerMirroredStrategy Keras 3
fails in its first symbolic build and in its reduction of the metrics
(keras-team/keras#20585). Each step calls the model's own `train_step`
inside `strategy.run`, the step `fit` would take.

After every epoch the workers all-reduce their sums of training and
validation loss, so every one sees the same val_loss and makes the same
early-stopping decision (train.checkpoint.EarlyStoppingCheckpoint). Rank 0
writes the checkpoint in the local run's format and hands it to Ray Train,
which restores it into the workers it restarts after a failure.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass

import keras
import numpy as np
import ray
import ray.train
import tensorflow as tf

from forecaster.config import Settings
from forecaster.distributed.runtime import configure_tensorflow
from forecaster.model.factory import build_model
from forecaster.train.checkpoint import (
    EarlyStoppingCheckpoint,
    resume_state,
    run_key_of,
)
from forecaster.train.fit import resumed_model, training_windows, window_dataset

SEED_STRIDE = 7919  # worker k shuffles its shard with seed + k * SEED_STRIDE
VALIDATION_BATCH = 1024  # windows per validation batch, as in a local run


@dataclass
class WorkerData:
    """One worker's input: its endless stream of shuffled fit batches, its val pass."""

    fit: object  # tf.data.Dataset of (inputs, targets), `batch_size` windows each
    val: object  # tf.data.Dataset, one pass over this worker's validation windows
    fit_windows: int  # windows in this worker's shard
    val_windows: int


def train_loop(config: dict) -> None:
    """What every worker runs (TensorflowTrainer's train_loop_per_worker).

    `config`: settings (Settings.to_dict()), shards (one ObjectRef per rank,
    each a list of prep.windows.Prepared whose splits hold only that
    worker's windows), scales (the head's, from every series), steps (per
    epoch), registry (an actor recording where each worker runs) and hook
    (None, or a callable(rank, epoch, step) run after each step: the tests
    kill a worker there).
    """
    context = ray.train.get_context()
    rank = context.get_world_rank()
    os.environ.pop("TF_USE_LEGACY_KERAS", None)  # set by Ray for tf.keras; unused
    configure_tensorflow()
    settings = Settings.from_dict(config["settings"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(settings.train.seed)
    staging = tempfile.mkdtemp(prefix="forecaster-ckpt-") if rank == 0 else None
    state = _restored_state(settings)
    with strategy.scope():
        model = _start_model(settings, config["scales"], config["n_features"], state)
    stopper = EarlyStoppingCheckpoint(
        settings.train.patience, staging, state, run_key=run_key_of(settings)
    )
    stopper.set_model(model)
    data = worker_data(
        ray.get(config["shards"][rank]), settings, rank, stopper.epochs_done
    )
    ray.get(
        config["registry"].record.remote(
            rank, where_am_i(data, stopper.epochs_done, context.get_world_size())
        )
    )
    if not stopper.finished:
        run_epochs(model, strategy, data, stopper, config, rank, staging)


def _restored_state(settings: Settings):
    """The CheckpointState Ray Train hands a (re)started worker, or None."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    local = checkpoint.to_directory(tempfile.mkdtemp(prefix="forecaster-restore-"))
    return resume_state(settings, local, resume=True)


def _start_model(settings: Settings, scales, n_features: int, state):
    """The checkpoint's last model when restarted, else a fresh one from the factory."""
    if state is not None:
        return resumed_model(state)
    prep = settings.prep
    return build_model(
        settings.model, prep.window, prep.horizon, n_features, scales=tuple(scales)
    )


def worker_data(parts: list, settings: Settings, rank: int, epochs_done: int):
    """WorkerData from this worker's shard (`parts`), the local run's pipeline."""
    prep, train = settings.prep, settings.train
    scaled, extra, fit_targets = training_windows(parts, "fit")
    fit = window_dataset(
        scaled,
        fit_targets,
        prep,
        train.batch_size,
        shuffle=True,
        seed=train.seed + SEED_STRIDE * rank,
        repeat=True,
        skip_passes=epochs_done,
        extra=extra,
    )
    scaled, extra, val_targets = training_windows(parts, "val")
    val = window_dataset(scaled, val_targets, prep, VALIDATION_BATCH, extra=extra)
    return WorkerData(fit, val, _count(fit_targets), _count(val_targets))


def _count(targets) -> int:
    return targets[1] - targets[0] if isinstance(targets, tuple) else len(targets)


def where_am_i(data: WorkerData, epochs_done: int, world_size: int) -> dict:
    """Where this worker runs and what it holds, for the bundle's metadata."""
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "fit_windows": data.fit_windows,
        "val_windows": data.val_windows,
        "started_at_epoch": epochs_done,
        "world_size": world_size,
    }


def run_epochs(model, strategy, data: WorkerData, stopper, config, rank, staging):
    """Train epoch by epoch until `epochs` or early stopping; report each to Ray."""
    settings = Settings.from_dict(config["settings"])
    step = _step_function(model, strategy)
    batches = strategy.distribute_datasets_from_function(lambda _: data.fit)
    iterator = iter(batches)
    validation_loss = _loss_function(model)
    hook = config.get("hook")
    model.stop_training = False
    for epoch in range(stopper.epochs_done, settings.train.epochs):
        started = time.perf_counter()
        model.reset_metrics()
        seen, loss = 0, 0.0
        for index in range(config["steps"]):
            loss, size = step(iterator)
            seen += int(size)
            if hook is not None:
                hook(rank, epoch, index)
        val_sum, val_count = _validation_sums(validation_loss, data.val)
        sums = _all_reduce(strategy, [float(loss) * seen, seen, val_sum, val_count])
        logs = {"loss": sums[0] / sums[1], "val_loss": sums[2] / max(sums[3], 1)}
        stopper.on_epoch_end(epoch, logs)
        metrics = {**logs, "epoch": epoch + 1, "windows": int(sums[1])}
        metrics["seconds"] = time.perf_counter() - started
        if rank == 0:
            ray.get(config["registry"].epoch_done.remote(epoch, metrics["seconds"]))
        checkpoint = ray.train.Checkpoint.from_directory(staging) if staging else None
        ray.train.report(metrics, checkpoint=checkpoint)
        if model.stop_training:
            break


def _step_function(model, strategy):
    """One synchronous step: every worker's `train_step` on its own batch.

    Returns this worker's running mean loss of the epoch and its batch size.
    """

    @tf.function
    def step(iterator):
        batch = next(iterator)
        logs = strategy.run(model.train_step, args=(batch,))
        size = strategy.run(lambda inputs, _: tf.shape(inputs)[0], args=batch)
        local = strategy.experimental_local_results
        return local(logs["loss"])[0], local(size)[0]

    return step


def _loss_function(model):
    """Sum of the model's loss over one batch of (inputs, targets), no training."""

    @tf.function
    def batch_loss(inputs, targets):
        predicted = model(inputs, training=False)
        loss = model.compute_loss(x=inputs, y=targets, y_pred=predicted, training=False)
        return loss * tf.cast(tf.shape(inputs)[0], loss.dtype)

    return batch_loss


def _validation_sums(batch_loss, val) -> tuple[float, int]:
    """(sum of the loss over this worker's validation windows, their count)."""
    total, count = 0.0, 0
    for inputs, targets in val:
        total += float(batch_loss(inputs, targets))
        count += int(inputs.shape[0])
    return total, count


def _all_reduce(strategy, values: list[float]) -> np.ndarray:
    """`values` summed over every worker (a collective: all must call it)."""
    per_replica = strategy.run(lambda: tf.constant(values, tf.float64))
    return strategy.reduce("SUM", per_replica, axis=None).numpy()
