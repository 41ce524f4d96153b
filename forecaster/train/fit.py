"""Training: windows streamed through tf.data, early stopping, resumable checkpoints.

Windows are gathered batch by batch from the scaled series inside the tf.data
pipeline, so no window matrix is ever materialised (a 1,000,000-point series
trains in bounded memory). Early stopping watches a validation slice cut from
the end of the training part, restores the best weights, and its state is
checkpointed after every epoch so a killed run can `--resume`
(forecaster.train.checkpoint).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

import forecaster.model.keras_heads  # noqa: F401  (registers the head layers)
from forecaster.config import PrepSettings, Settings
from forecaster.model.factory import build_model
from forecaster.model.stacked import run_stacked
from forecaster.prep.windows import Prepared, encode_inputs, encode_targets
from forecaster.train import devices
from forecaster.train.checkpoint import (
    EarlyStoppingCheckpoint,
    resume_state,
    run_key_of,
)
from forecaster.train.progress import keras_display

# Batches read ahead by every input pipeline, a fixed depth instead of
# tf.data's AUTOTUNE. AUTOTUNE starts a tuning thread per iterator, and
# destroying an iterator waits for that thread to wake: Keras drops its
# iterator at every epoch start (and after each validation pass), and here
# that wait left both cores idle for 0.3-0.65 s at the start of about half the
# epochs (the "slow mode", bench/epoch_modes.py, BENCHMARKS.md). Two batches
# are enough on any core count: gathering one batch of windows takes 0.4 ms,
# a training step 70-110 ms on 2 cores. None restores AUTOTUNE (the "before").
PREFETCH_BATCHES: int | None = 2


def input_runtime() -> dict:
    """How the input pipelines run, for the bundle's metadata."""
    return {
        "prefetch_batches": PREFETCH_BATCHES or "autotune",
        "tf_data_autotune": PREFETCH_BATCHES is None,
        "training_iterator": "one stream of passes",
    }


def training_windows(parts: list[Prepared], which: str):
    """(scaled, extra, targets) of the "fit" or "val" windows of one or many series.

    One series gives its range of first targets; several are laid one after
    another, and `targets` lists every window's first target in that
    concatenation, so no window crosses two series.
    """
    if len(parts) == 1:
        part = parts[0]
        return part.scaled, part.extra, getattr(part.split, f"{which}_targets")
    scaled, extra, table, offset = [], [], [], 0
    for part in parts:
        start, stop = getattr(part.split, f"{which}_targets")
        scaled.append(part.scaled)
        extra.append(part.extra)
        table.append(offset + np.arange(start, stop))
        offset += len(part.scaled)
    joined = None if extra[0] is None else np.concatenate(extra)
    return np.concatenate(scaled), joined, np.concatenate(table)


def window_dataset(
    scaled: np.ndarray,
    targets,
    prep: PrepSettings,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
    skip_passes: int = 0,
    extra: np.ndarray | None = None,
):
    """A tf.data pipeline of (inputs, targets) batches for the first targets `targets`.

    `scaled` (n,) is the scaled target series (for a panel, the series one
    after another); `targets` is a range (start, stop) of first-target
    indices, or an int array of them (a panel's windows, none crossing two
    series); `extra` (n, n_extra) holds scaled input features beside the
    target, fed as they are. Yields inputs (batch, window, 1 + n_extra) and
    targets (batch, horizon), float32, the target encoded in
    `prep.representation`. Only the series and one batch of windows are in
    memory at a time. With `shuffle`, every pass visits all the windows in a
    new order, the same sequence of orders for the same `seed`.

    Without `repeat` the dataset is one pass, and iterating it again gives
    the next pass. With `repeat` it is an endless stream of passes, each
    `batches_per_pass(targets, batch_size)` batches long, to be read through
    one iterator (`fit(..., steps_per_epoch=...)`); `skip_passes` starts the
    stream at a later pass, so a resumed run sees the orders an uninterrupted
    run would have seen.
    """
    gather = _window_gather(scaled, extra, prep)
    to_targets, count = _target_lookup(targets)
    if shuffle:
        batches = _shuffled_batches(
            to_targets, count, batch_size, seed, repeat, skip_passes
        )
    else:
        batches = (
            tf.data.Dataset.range(count).batch(batch_size).map(as_written(to_targets))
        )
        if repeat:
            batches = batches.repeat()
    return with_input_options(batches.map(as_written(gather)))


def as_written(function):
    """`function` for tf.data's map, traced as written, without AutoGraph.

    tf.data otherwise rewrites every mapped function with AutoGraph first:
    ~0.2 s of each training run's start for the pipeline's functions, which
    have no Python control flow on tensors to rewrite.
    """
    return tf.autograph.experimental.do_not_convert(function)


def _shuffled_batches(to_targets, count, batch_size, seed, repeat, skip_passes):
    """Batches of first targets, every pass in a new order (`window_dataset`).

    A full shuffle with no buffer: each pass draws a fresh key and maps
    position k to the k-th index of a pseudorandom permutation of all the
    windows, so memory stays one batch of indices however long the series
    (Dataset.shuffle would hold every index, ~200 B each).
    """

    def one_pass(key):
        cipher_key = tf.stack([key, tf.constant(seed, tf.int64)])

        def permute(positions):
            return to_targets(
                tf.random.experimental.index_shuffle(positions, cipher_key, count - 1)
            )

        return tf.data.Dataset.range(count).batch(batch_size).map(as_written(permute))

    if repeat:  # one key per pass, from one seeded stream
        keys = tf.data.Dataset.random(seed=seed).skip(skip_passes)
        return keys.flat_map(as_written(one_pass)).apply(
            tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)
        )
    # else a new key each time the dataset is iterated
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    batches = keys.take(1).flat_map(as_written(one_pass))
    # flat_map hides the length; Keras needs it to end each epoch.
    return batches.apply(
        tf.data.experimental.assert_cardinality(
            batches_per_pass((0, count), batch_size)
        )
    )


def with_input_options(batches):
    """Prefetch `PREFETCH_BATCHES` batches; without AUTOTUNE's tuning thread."""
    if PREFETCH_BATCHES is None:
        return batches.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH_BATCHES).with_options(options)


def _window_gather(scaled, extra, prep: PrepSettings):
    """The map from a batch of first-target indices t to (inputs, targets)."""
    series = tf.constant(np.asarray(scaled, dtype=np.float32))
    features = (
        None if extra is None else tf.constant(np.asarray(extra, dtype=np.float32))
    )
    input_offsets = tf.range(-prep.window, 0, dtype=tf.int64)
    target_offsets = tf.range(0, prep.horizon, dtype=tf.int64)
    representation = prep.representation

    def gather(t):
        rows = t[:, None] + input_offsets
        x = tf.gather(series, rows)
        y = tf.gather(series, t[:, None] + target_offsets)
        inputs = encode_inputs(x, representation)
        if features is not None:
            inputs = tf.concat([inputs, tf.gather(features, rows)], axis=-1)
        return inputs, encode_targets(x, y, representation)

    return gather


def _target_lookup(targets):
    """(positions -> first-target indices, count) for a range or an index array."""
    if isinstance(targets, tuple):
        start, stop = targets
        return (lambda positions: start + positions), stop - start
    table = tf.constant(np.asarray(targets, dtype=np.int64))
    return (lambda positions: tf.gather(table, positions)), len(targets)


def head_scales(parts: list[Prepared]) -> tuple[float, float]:
    """(std of the encoded step-1 fit targets, std of the training daily moves).

    The units of a probabilistic head's outputs and of its move channel
    (forecaster.model.heads), from the training parts of every series only.
    """
    targets, moves = [], []
    for part in parts:
        start, stop = part.split.fit_targets
        last = part.scaled[start - 1 : stop - 1]
        step = part.scaled[start:stop]
        encoded = encode_targets(last[:, None], step[:, None], part.representation)
        targets.append(encoded[:, 0])
        moves.append(np.diff(part.scaled[: part.split.n_train]))
    return tuple(
        float(max(np.std(np.concatenate(values)), 1e-12)) for values in (targets, moves)
    )


def batches_per_pass(targets, batch_size: int) -> int:
    """Batches in one pass over the windows of `targets` (the last may be short).

    `targets`: a range (start, stop) of first-target indices, or an array.
    """
    count = targets[1] - targets[0] if isinstance(targets, tuple) else len(targets)
    return -(-count // batch_size)


# ---------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    """What `fit_model` returns."""

    model: object  # the compiled keras model, best weights restored
    history: list[dict]  # one row per epoch: epoch, loss, val_loss
    best_epoch: int  # 1-based epoch whose weights were kept
    seconds: float  # wall time of the fit
    resumed_from: int = 0  # epochs already done when --resume picked the run up
    notes: list[str] = field(default_factory=list)
    runtime: dict = field(default_factory=input_runtime)  # input pipeline settings


def fit_model(
    prepared: Prepared | list[Prepared],
    settings: Settings,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callbacks: list | None = None,
) -> TrainResult:
    """Train a fresh (or resumed) model on the fit windows; early-stop on validation.

    `prepared` is one series or a list of them (a panel): one model learns
    from the windows of all of them, shuffled together. With
    `checkpoint_dir`, the model, its best weights and the early-stopping
    state are written there (atomically) after every epoch; `resume=True`
    continues from the last completed epoch found there. `callbacks` (Keras
    callbacks) run after the early stopping's own at each epoch end; a
    hyperparameter search reports its validation score through one. With
    several devices (forecaster.train.devices) each takes `batch_size` windows a step.
    """
    # First: splitting the CPU into logical devices must precede any TF work.
    strategy = devices.mirrored_strategy(settings.train.devices)
    global_batch = settings.train.batch_size * devices.replicas(strategy)
    _seed_everything(settings.train.seed)
    parts = prepared if isinstance(prepared, list) else [prepared]
    train = settings.train
    state = resume_state(settings, checkpoint_dir, resume)
    with devices.scope(strategy):
        model = _start_model(settings, parts, state)
        if not model.optimizer.built:
            # Eagerly: built inside the first traced step, Adam's slot variables
            # are TensorFlow's lifted-initializer variables, whose tf.cond graphs
            # outlive the model (36 a training in a Ray worker, BENCHMARKS.md).
            model.optimizer.build(model.trainable_variables)
    stopper = EarlyStoppingCheckpoint(
        train.patience, checkpoint_dir, state, run_key=run_key_of(settings)
    )
    fit_data, val_data, steps = _fit_and_val_data(
        parts, settings, global_batch, stopper.epochs_done
    )
    started = time.perf_counter()
    if not stopper.finished:
        display, verbose = keras_display(train.verbose)
        model.fit(
            fit_data,
            steps_per_epoch=steps,
            validation_data=val_data,
            epochs=train.epochs,
            initial_epoch=stopper.epochs_done,
            callbacks=[stopper, *(callbacks or []), *display],
            verbose=verbose,
        )
    stopper.restore_best(model)
    return TrainResult(
        model=model,
        history=stopper.history,
        best_epoch=stopper.best_epoch,
        seconds=time.perf_counter() - started,
        resumed_from=state.epochs_done if state else 0,
    )


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow; deterministic ops on a GPU."""
    warnings.filterwarnings("ignore", message=".*shuffle=True.*tf.data.Dataset")
    keras.utils.set_random_seed(seed)
    if tf.config.list_physical_devices("GPU") or os.environ.get(
        "FORECASTER_OP_DETERMINISM"
    ):
        # cuDNN kernels need this to repeat a run exactly; on the CPU our ops
        # already do (two separate runs gave bit-identical losses and metrics)
        # and it is process-wide, so it is left off there.
        tf.config.experimental.enable_op_determinism()


def _start_model(settings: Settings, parts: list[Prepared], state):
    """The checkpoint's last model when resuming, else a fresh one from the factory."""
    if state is not None:
        return resumed_model(state)
    prep = settings.prep
    return build_model(
        settings.model,
        prep.window,
        prep.horizon,
        parts[0].n_features,
        scales=head_scales(parts),
    )


def resumed_model(state):
    """The checkpoint's last model, its LSTM stack run as the factory's runs.

    (one loop over time, forecaster.model.stacked: the saved file keeps the
    separate layers, so the routing is applied again after loading)
    """
    model = keras.saving.load_model(state.model_path, safe_mode=True)
    run_stacked(model)
    return model


def _fit_and_val_data(parts, settings: Settings, global_batch: int, epochs_done: int):
    """(fit stream, validation pass, batches per epoch) for `fit_model`.

    One iterator over an endless stream of shuffled passes, one pass an
    epoch: Keras' fit otherwise swaps in a new iterator every epoch, and
    that epoch start stalled 1.2-1.3 s in about 4 epochs of 10 here
    (1.2-1.5 s epochs; bench/speed.py, BENCHMARKS.md): the wait for the old
    iterator's AUTOTUNE thread, which PREFETCH_BATCHES now also avoids.
    """
    prep, seed = settings.prep, settings.train.seed
    scaled, extra, fit_targets = training_windows(parts, "fit")
    fit_data = window_dataset(
        scaled,
        fit_targets,
        prep,
        global_batch,
        shuffle=True,
        seed=seed,
        repeat=True,
        skip_passes=epochs_done,
        extra=extra,
    )
    scaled, extra, val_targets = training_windows(parts, "val")
    val_data = window_dataset(scaled, val_targets, prep, 1024, extra=extra)
    return fit_data, val_data, batches_per_pass(fit_targets, global_batch)
