"""Speed benchmark, section 1: training throughput and test RMSE after equal epochs.

The tutorial's pipeline (leaky scaler, `create_dataset`, `fit(X, y, batch
64)`) against the project's (`prepare`, `window_dataset` through tf.data),
LSTM(50)x3 on data/AAPL.csv, plus a sweep of our batch sizes, data iterator,
op determinism and jit_compile. Run through `python -m bench.speed`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from bench.speed_common import OUT, Row, Sizes, load_aapl, log, median

TUTORIAL_BATCH = 64  # the tutorial's model.fit(..., batch_size=64)


def epoch_timer():
    """A Keras callback that records the wall time of every epoch."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._started)

    return EpochTimer()


def test_scores(prepared, predicted: np.ndarray) -> tuple[float, float]:
    """Model and naive RMSE in price units on the project's test days."""
    from forecaster.evaluate.evaluation import naive_scores, scores

    start, stop = prepared.split.test_targets
    actual = prepared.prices[start:stop]
    previous = prepared.prices[start - 1 : stop - 1]
    return scores(actual, predicted, previous)["rmse"], naive_scores(actual, previous)[
        "rmse"
    ]


@dataclass
class TrainingRun:
    """One model, trained by one `fit` call over all its epochs, as its script does."""

    name: str
    windows: int  # training windows per epoch
    fit: object  # (epochs) -> None: the whole training run, epoch times in `timer`
    evaluate: object  # () -> (model RMSE, naive RMSE) on the test days, price units
    timer: object  # the EpochTimer callback
    extra: dict  # what the caller keeps (the tutorial's model and scaler)

    def result(self) -> dict:
        rmse, naive = self.evaluate()
        seconds = self.timer.seconds
        return {
            "name": self.name,
            "windows": self.windows,
            "epoch_seconds": seconds,
            "rmse": rmse,
            "naive_rmse": naive,
            "windows_per_s": self.windows / median(seconds[1:]),
            "best_windows_per_s": self.windows / min(seconds[1:]),
        }


def run_all(runs: list[TrainingRun], epochs: int) -> list[dict]:
    """Train each run for `epochs` in one `fit` call, one run after the other.

    Not one epoch per `fit` call in turns (as this benchmark once did): every
    `fit` call makes a new data iterator, and an epoch that starts with a new
    one stalled 1.2-2.5 s in about 4 epochs of 10 here, so epoch-sized calls
    would charge both sides a cost that neither script pays that way.
    """
    for run in runs:
        log(f"  {epochs} epochs: {run.name}")
        run.fit(epochs)
    return [run.result() for run in runs]


def tutorial_run(values, prep, prepared, seed: int) -> TrainingRun:
    """The tutorial's pipeline: leaky scaler, `create_dataset`, fit(X, y, batch 64).

    Same split as ours (train_fraction 0.75); test RMSE on our test days, each
    predicted from the 100 tutorial-scaled prices before it.
    """
    import keras

    from bench.tutorial import build_tutorial_model, create_dataset, scale_and_split
    from forecaster.prep.windows import window_view

    keras.utils.set_random_seed(seed)
    prices = values.to_numpy(dtype=np.float64)
    scaler, train_data, _ = scale_and_split(prices, prep.train_fraction)
    if len(train_data) != prepared.split.n_train:
        raise RuntimeError("the tutorial's split does not match the project's")
    x_train, y_train = create_dataset(train_data, prep.window)
    x_train = x_train[..., None]
    model = build_tutorial_model(prep.window)
    timer = epoch_timer()

    def fit(epochs):
        model.fit(
            x_train,
            y_train,
            batch_size=TUTORIAL_BATCH,
            epochs=epochs,
            verbose=0,
            callbacks=[timer],
        )

    def evaluate():
        scaled = scaler.transform(prices.reshape(-1, 1))[:, 0]
        contexts = window_view(scaled, prep.window, prepared.split.test_targets)
        outputs = model.predict(contexts[..., None], batch_size=1024, verbose=0)
        return test_scores(prepared, scaler.inverse_transform(outputs)[:, 0])

    return TrainingRun(
        f"tutorial (seed {seed})",
        len(x_train),
        fit,
        evaluate,
        timer,
        {"model": model, "scaler": scaler},
    )


def our_run(prepared, prep, seed: int, batch_size: int, jit_compile=False, stream=True):
    """The project's pipeline: train-only scaler, its default representation, tf.data.

    Fits on the fit windows (the validation tenth is held out, as fit_model
    does) without early stopping, so both sides get the same epochs. With
    `stream` (fit_model's way) one iterator reads an endless stream of
    shuffled passes, one pass an epoch; without it, a one-pass dataset that
    Keras re-iterates every epoch.
    """
    import keras

    from forecaster.config import ModelSettings
    from forecaster.evaluate.evaluation import test_predictions
    from forecaster.model.factory import build_model
    from forecaster.model.keras_engine import KerasEngine
    from forecaster.train.fit import batches_per_pass, window_dataset

    keras.utils.set_random_seed(seed)
    settings = ModelSettings()
    model = build_model(settings, prep.window, prep.horizon)
    if jit_compile:  # build_model compiles without it (Keras' CPU default)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate),
            loss="mse",
            jit_compile=True,
        )
        if not model.jit_compile:
            raise RuntimeError("Keras refused jit_compile=True for this model")
    split = prepared.split
    data = window_dataset(
        prepared.scaled,
        split.fit_targets,
        prep,
        batch_size,
        shuffle=True,
        seed=seed,
        repeat=stream,
    )
    steps = batches_per_pass(split.fit_targets, batch_size) if stream else None
    timer = epoch_timer()

    def fit(epochs):
        model.fit(
            data, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[timer]
        )

    def evaluate():
        engine = KerasEngine(model, prep.representation, prep.window, prep.horizon)
        predicted = test_predictions(engine, prepared)["predicted"].to_numpy()
        return test_scores(prepared, predicted)

    flags = (", jit_compile" if jit_compile else "") + (
        "" if stream else ", new iterator each epoch"
    )
    return TrainingRun(
        f"ours batch {batch_size}{flags} (seed {seed})",
        split.n_fit,
        fit,
        evaluate,
        timer,
        {},
    )


def op_determinism_wanted() -> bool:
    """As fit_model: op determinism on a GPU or with FORECASTER_OP_DETERMINISM set."""
    import tensorflow as tf

    return bool(
        tf.config.list_physical_devices("GPU")
        or os.environ.get("FORECASTER_OP_DETERMINISM")
    )


def set_op_determinism(on: bool) -> None:
    """Turn TensorFlow's process-wide op determinism on or off."""
    import tensorflow as tf
    from tensorflow.python.framework import config  # no public disable; Keras reads it

    if on:
        tf.config.experimental.enable_op_determinism()
    else:
        config.disable_op_determinism()


def bench_training(sizes: Sizes, results: dict) -> None:
    from forecaster.config import TrainSettings

    deterministic = op_determinism_wanted()
    set_op_determinism(deterministic)  # as fit_model; the same for both sides
    values, prep, prepared = load_aapl()
    default_batch = TrainSettings().batch_size
    tutorial, ours = [], []
    for rep in range(sizes.reps):
        seed = 42 + rep
        log(f"training rep {rep + 1}/{sizes.reps}: tutorial and ours, in turns")
        runs = [
            tutorial_run(values, prep, prepared, seed),
            our_run(prepared, prep, seed, default_batch),
        ]
        order = runs if rep % 2 == 0 else runs[::-1]  # who goes first alternates
        run_all(order, sizes.epochs)
        theirs, mine = (run.result() for run in runs)
        if rep == 0:  # the trained replica, for the forecast and script sections
            runs[0].extra["model"].save(OUT / "tutorial-model.keras")
            results["tutorial_model"] = runs[0].extra["model"]
            results["tutorial_scaler"] = runs[0].extra["scaler"]
        tutorial.append(theirs)
        ours.append(mine)
    sweep = run_sweep(sizes, prepared, prep, default_batch, deterministic)
    results["training"] = {
        "epochs": sizes.epochs,
        "sweep_epochs": sizes.sweep_epochs,
        "default_batch": default_batch,
        "op_determinism": deterministic,
        "tutorial": tutorial,
        "ours": ours,
        "sweep": sweep,
    }


def run_sweep(
    sizes: Sizes, prepared, prep, default_batch: int, deterministic: bool
) -> list:
    """Batch sizes, the data iterator, op determinism and jit_compile for our pipeline.

    Three groups, in this order, each run a whole `fit`: the batch sizes as
    fit_model runs them, then the default batch size on a one-pass dataset
    that Keras re-iterates every epoch; the default batch size with op
    determinism the other way; jit_compile (always with determinism off:
    Keras silently drops jit_compile=True while it is on).
    """
    plain = [(b, False, True) for b in sizes.sweep_batches]
    groups = [
        (deterministic, [*plain, (default_batch, False, False)]),
        (not deterministic, [(default_batch, False, True)]),
        (False, [(b, True, True) for b in sizes.jit_batches]),
    ]
    sweep = []
    for group, chosen in groups:
        log(f"sweep, op determinism {'on' if group else 'off'}: {len(chosen)} runs")
        set_op_determinism(group)
        runs = [our_run(prepared, prep, 42, b, j, stream) for b, j, stream in chosen]
        results = run_all(runs, sizes.sweep_epochs)
        for result, (batch, with_jit, stream) in zip(results, chosen, strict=True):
            sweep.append(
                {
                    **result,
                    "batch_size": batch,
                    "jit_compile": with_jit,
                    "deterministic": group,
                    "stream": stream,
                }
            )
    set_op_determinism(deterministic)
    return sweep


def training_rows(training: dict) -> list[Row]:
    tutorial, ours, sweep = training["tutorial"], training["ours"], training["sweep"]
    epochs, default_batch = training["epochs"], training["default_batch"]
    ref = median(r["windows_per_s"] for r in tutorial)
    mine = median(r["windows_per_s"] for r in ours)
    ref_best = median(r["best_windows_per_s"] for r in tutorial)
    my_best = median(r["best_windows_per_s"] for r in ours)
    ref_rmse = median(r["rmse"] for r in tutorial)
    my_rmse = median(r["rmse"] for r in ours)
    spread = {
        name: f" (seeds: ${min(r['rmse'] for r in runs):.2f}"
        f"-{max(r['rmse'] for r in runs):.2f})"
        if len(runs) > 1
        else ""
        for name, runs in (("tutorial", tutorial), ("ours", ours))
    }
    timed_epochs = epochs - 1
    section = "1 training"
    rows = [
        Row(
            section,
            f"tutorial: create_dataset + fit(X, y, batch 64); median of "
            f"{timed_epochs} epochs x {len(tutorial)} seeds (fastest epochs: "
            f"{ref_best:,.0f} win/s)",
            ref,
            "win/s",
        ),
        Row(
            section,
            f"ours: window_dataset (tf.data), batch {default_batch} (fastest epochs: "
            f"{my_best:,.0f} win/s = {my_best / ref_best:.2f}x)",
            mine,
            "win/s",
            f"{mine / ref:.2f}x",
            ">= 2x",
            mine >= 2 * ref,
        ),
        Row(
            section,
            f"tutorial test RMSE after {epochs} epochs{spread['tutorial']}",
            ref_rmse,
            "$",
        ),
        Row(
            section,
            f"ours test RMSE after {epochs} epochs{spread['ours']}",
            my_rmse,
            "$",
            f"{my_rmse / ref_rmse:.2f}x",
            "<= tutorial",
            my_rmse <= ref_rmse,
        ),
        Row(
            section,
            "naive (tomorrow = today) RMSE, same test days",
            ours[0]["naive_rmse"],
            "$",
        ),
    ]
    # "fastest" among the batch sizes run as fit_model runs them, side by side
    first_group = [s for s in sweep if s["deterministic"] == sweep[0]["deterministic"]]
    first_group = [
        s for s in first_group if not s["jit_compile"] and s.get("stream", True)
    ]
    fastest = max(first_group, key=lambda s: s["windows_per_s"])
    for s in sweep:
        flags = ", jit_compile" if s["jit_compile"] else ""
        flags += "" if s.get("stream", True) else ", new iterator each epoch"
        flags += ", op determinism on" if s["deterministic"] else ""
        mark = " (fastest)" if s is fastest else ""
        rows.append(
            Row(
                section,
                f"sweep: ours batch {s['batch_size']}{flags}{mark}; RMSE "
                f"${s['rmse']:.2f} after {training['sweep_epochs']} epochs",
                s["windows_per_s"],
                "win/s",
                f"{s['windows_per_s'] / ref:.2f}x",
            )
        )
    return rows
