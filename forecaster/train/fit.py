"""Training: windows streamed through tf.data, early stopping, resumable checkpoints.

Windows are gathered batch by batch from the scaled series inside the tf.data
pipeline, so no window matrix is ever materialised (a 1,000,000-point series
trains in bounded memory). Early stopping watches a validation slice cut from
the end of the training part, restores the best weights, and its state is
checkpointed after every epoch so a killed run can `--resume`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecaster.config import PrepSettings, Settings
from forecaster.errors import ForecasterError
from forecaster.prep.windows import Prepared, encode_inputs, encode_targets

log = logging.getLogger("forecaster")

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
    import tensorflow as tf

    gather = _window_gather(scaled, extra, prep)
    to_targets, count = _target_lookup(targets)
    if not shuffle:
        batches = tf.data.Dataset.range(count).batch(batch_size).map(to_targets)
        if repeat:
            batches = batches.repeat()
    else:
        # A full shuffle with no buffer: each pass draws a fresh key and maps
        # position k to the k-th index of a pseudorandom permutation of all
        # the windows, so memory stays one batch of indices however long the
        # series (Dataset.shuffle would hold every index, ~200 B each).
        def one_pass(key):
            cipher_key = tf.stack([key, tf.constant(seed, tf.int64)])

            def permute(positions):
                return to_targets(
                    tf.random.experimental.index_shuffle(
                        positions, cipher_key, count - 1
                    )
                )

            return tf.data.Dataset.range(count).batch(batch_size).map(permute)

        if repeat:  # one key per pass, from one seeded stream
            keys = tf.data.Dataset.random(seed=seed).skip(skip_passes)
            batches = keys.flat_map(one_pass).apply(
                tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)
            )
        else:  # a new key each time the dataset is iterated
            keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            batches = keys.take(1).flat_map(one_pass)
            # flat_map hides the length; Keras needs it to end each epoch.
            batches = batches.apply(
                tf.data.experimental.assert_cardinality(
                    batches_per_pass(targets, batch_size)
                )
            )
    return _with_input_options(batches.map(gather))


def _with_input_options(batches):
    """Prefetch `PREFETCH_BATCHES` batches; without AUTOTUNE's tuning thread."""
    import tensorflow as tf

    if PREFETCH_BATCHES is None:
        return batches.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH_BATCHES).with_options(options)


def _window_gather(scaled, extra, prep: PrepSettings):
    """The map from a batch of first-target indices t to (inputs, targets)."""
    import tensorflow as tf

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
    import tensorflow as tf

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
    import keras
    import tensorflow as tf

    from forecaster.model.factory import build_model
    from forecaster.train import devices

    # First: splitting the CPU into logical devices must precede any TF work.
    strategy = devices.mirrored_strategy(settings.train.devices)
    global_batch = settings.train.batch_size * devices.replicas(strategy)
    warnings.filterwarnings("ignore", message=".*shuffle=True.*tf.data.Dataset")
    keras.utils.set_random_seed(settings.train.seed)
    if tf.config.list_physical_devices("GPU") or os.environ.get(
        "FORECASTER_OP_DETERMINISM"
    ):
        # cuDNN kernels need this to repeat a run exactly; on the CPU our ops
        # already do (two separate runs gave bit-identical losses and metrics)
        # and it is process-wide, so it is left off there.
        tf.config.experimental.enable_op_determinism()
    parts = prepared if isinstance(prepared, list) else [prepared]
    prep, train = settings.prep, settings.train
    state = _CheckpointState.read(checkpoint_dir) if resume else None
    if resume and state is None:
        raise ForecasterError(
            f"resume found no checkpoint at {str(checkpoint_dir)!r}: nothing to "
            "resume. Start a new run instead. Received: resume=True"
        )
    if state is not None:
        _check_same_run(state, settings, checkpoint_dir)
        log.info(_resume_note(state, checkpoint_dir, train.epochs, train.patience))
    with devices.scope(strategy):
        if state is not None:
            import forecaster.model.keras_heads  # noqa: F401  (registers the head layers)

            model = keras.saving.load_model(state.model_path, safe_mode=True)
        else:
            model = build_model(
                settings.model,
                prep.window,
                prep.horizon,
                parts[0].n_features,
                scales=head_scales(parts),
            )
    stopper = EarlyStoppingCheckpoint(
        train.patience, checkpoint_dir, state, run_key=_run_key(settings)
    )
    # One iterator over an endless stream of shuffled passes, one pass an
    # epoch: Keras' fit otherwise swaps in a new iterator every epoch, and
    # that epoch start stalled 1.2-1.3 s in about 4 epochs of 10 here
    # (1.2-1.5 s epochs; bench/speed.py, BENCHMARKS.md): the wait for the old
    # iterator's AUTOTUNE thread, which PREFETCH_BATCHES now also avoids.
    scaled, extra, fit_targets = training_windows(parts, "fit")
    fit_data = window_dataset(
        scaled,
        fit_targets,
        prep,
        global_batch,
        shuffle=True,
        seed=train.seed,
        repeat=True,
        skip_passes=stopper.epochs_done,
        extra=extra,
    )
    scaled, extra, val_targets = training_windows(parts, "val")
    val_data = window_dataset(scaled, val_targets, prep, 1024, extra=extra)
    started = time.perf_counter()
    if not stopper.finished:
        from forecaster.train.progress import keras_display

        display, verbose = keras_display(train.verbose)
        model.fit(
            fit_data,
            steps_per_epoch=batches_per_pass(fit_targets, global_batch),
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


def _resume_note(state, directory, epochs: int, patience: int) -> str:
    """What --resume found and where it picks up, for the log."""
    found = (
        f"--resume: found {state.epochs_done} finished epochs in {str(directory)!r} "
        f"(best val_loss {state.best:.4e} at epoch {state.best_epoch}, "
        f"{state.wait} epochs without improvement)"
    )
    if patience > 0 and state.wait >= patience:
        return found + "; that run had stopped early, nothing left to train"
    if state.epochs_done >= epochs:
        return found + f"; --epochs {epochs} is reached, nothing left to train"
    return found + f"; resuming at epoch {state.epochs_done + 1} of {epochs}"


@dataclass
class _CheckpointState:
    epochs_done: int
    best: float
    best_epoch: int
    wait: int
    history: list[dict]
    model_path: Path
    best_weights_path: Path
    run_key: dict

    @classmethod
    def read(cls, directory) -> _CheckpointState | None:
        if directory is None:
            return None
        from forecaster.io import recover_if_free

        directory = Path(directory)
        recover_if_free(directory, "checkpoint")
        path = directory / "state.json"
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            return cls(
                epochs_done=int(raw["epochs_done"]),
                best=float(raw["best"]),
                best_epoch=int(raw["best_epoch"]),
                wait=int(raw["wait"]),
                history=list(raw["history"]),
                model_path=directory / "last.keras",
                best_weights_path=directory / "best.weights.npz",
                run_key=dict(raw["run_key"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ForecasterError(
                f"The checkpoint at {str(directory)!r} is damaged ({err!r}); "
                "start a new run instead of resuming."
            ) from None


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class EarlyStoppingCheckpoint(_keras_callback_base()):
    """Early stopping on val_loss that restores the best weights and can be resumed.

    Keras' own EarlyStopping forgets its state between runs; this one writes
    the last model, the best weights and its counters after every epoch.
    """

    def __init__(
        self,
        patience: int,
        checkpoint_dir=None,
        state: _CheckpointState | None = None,
        run_key: dict | None = None,
    ):
        super().__init__()
        self.run_key = run_key or {}
        self.patience = patience
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.best = state.best if state else np.inf
        self.best_epoch = state.best_epoch if state else 0
        self.wait = state.wait if state else 0
        self.history = list(state.history) if state else []
        self.epochs_done = state.epochs_done if state else 0
        self.best_weights = None
        if state is not None:
            with np.load(state.best_weights_path) as saved:
                self.best_weights = [saved[f"w{i}"] for i in range(len(saved.files))]

    @property
    def finished(self) -> bool:
        """True when a resumed run had already stopped early."""
        return self.patience > 0 and self.epochs_done > 0 and self.wait >= self.patience

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val_loss = float(logs.get("val_loss", np.nan))
        self.history.append(
            {
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", np.nan)),
                "val_loss": val_loss,
            }
        )
        self.epochs_done = epoch + 1
        if val_loss < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch + 1, 0
            self.best_weights = [w.copy() for w in self.model.get_weights()]
        else:
            self.wait += 1
        if self.checkpoint_dir is not None:
            self._save_checkpoint()
        if self.patience > 0 and self.wait >= self.patience:
            self.model.stop_training = True

    def restore_best(self, model) -> None:
        if self.best_weights is not None:
            model.set_weights(self.best_weights)

    def _save_checkpoint(self) -> None:
        from forecaster.io import write_directory_atomically

        def write(tmp: Path) -> None:
            self.model.save(tmp / "last.keras")
            np.savez(
                tmp / "best.weights.npz",
                **{f"w{i}": w for i, w in enumerate(self.best_weights)},
            )
            (tmp / "state.json").write_text(
                json.dumps(
                    {
                        "epochs_done": self.epochs_done,
                        "best": self.best,
                        "best_epoch": self.best_epoch,
                        "wait": self.wait,
                        "history": self.history,
                        "run_key": self.run_key,
                    }
                )
            )

        write_directory_atomically(
            self.checkpoint_dir, write, replace=True, what="checkpoint"
        )


def discard_checkpoint(checkpoint_dir) -> None:
    """Remove a finished run's checkpoint (renamed away first: never half-removed)."""
    from forecaster.io import discard_directory

    if checkpoint_dir is not None:
        discard_directory(checkpoint_dir)


def _run_key(settings: Settings) -> dict:
    """Settings a resumed run must share with the killed one (not epochs, patience)."""
    key = settings.to_dict()
    for name in ("epochs", "patience", "verbose"):
        key["train"].pop(name)
    return key


def _check_same_run(state: _CheckpointState, settings: Settings, directory) -> None:
    now = _run_key(settings)
    if state.run_key != now:
        changed = sorted(
            f"{part}.{name}"
            for part in now
            for name in now[part]
            if state.run_key.get(part, {}).get(name) != now[part][name]
        )
        raise ForecasterError(
            f"resume: the checkpoint at {str(directory)!r} was trained with other "
            f"settings ({', '.join(changed)} differ). Resume with the same settings, "
            "or start a new run."
        )
