"""Speed and memory benchmark: the tutorial's pipeline against the project's, one run.

Five measurements, each on the same data and settings for both sides:
1. training throughput (windows/s) of LSTM(50)x3 on data/AAPL.csv, and the
   test RMSE in price units after the same number of epochs, naive beside it;
2. seconds per 30-day recursive forecast: per-day `model.predict` against
   `KerasEngine.forecast` (in-graph loop) and `NumpyEngine.forecast`;
3. window building on a generated 1,000,000-point random walk, and peak memory
   (separate subprocesses) of the tutorial's window matrix against the
   project's windows plus one training epoch;
4. wall time of forecasting scripts end to end (process start to PNG written);
5. the machine.

python -m bench.speed            # full run; raw results in bench/out/speed.json
python -m bench.speed --quick    # smoke test: one repetition, small sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CSV = "data/AAPL.csv"
COLUMN = "Adj Close"
TUTORIAL_BATCH = 64  # the tutorial's model.fit(..., batch_size=64)
FORECAST_DAYS = 30
MEMORY_BATCH = 1024  # batch of the small model trained on the 1M-point series
MEMORY_UNITS = 8  # one LSTM(8) layer: LSTM(50)x3 over 1M windows is hours on 2 cores


@dataclass
class Sizes:
    """How much work each section does (full run or --quick smoke test)."""

    reps: int  # repetitions of each timed measurement (training: fresh models)
    epochs: int  # epochs per training run, the first one a warm-up (not timed)
    sweep_epochs: int  # epochs per batch-size / jit_compile sweep run
    sweep_batches: tuple[int, ...]  # batch sizes tried for our pipeline
    jit_batches: tuple[int, ...]  # batch sizes also tried with jit_compile=True
    points: int  # length of the generated random walk
    memory_steps: int | None  # cap on the memory epoch's steps (None = whole epoch)
    forecast_reps: int  # timed 30-day forecasts per engine (after one warm-up)
    script_reps: int  # timed runs of each forecasting script
    predict_warmups: int  # untimed runs of each script before the timed ones
    bundle_args: tuple[str, ...]  # train.py flags for the benchmark's own bundle


FULL = Sizes(
    reps=3,
    epochs=11,
    sweep_epochs=7,
    sweep_batches=(64, 128, 256, 512),
    jit_batches=(64, 128, 256, 512),
    points=1_000_000,
    memory_steps=None,
    forecast_reps=5,
    script_reps=3,
    predict_warmups=1,
    bundle_args=("--epochs", "2"),
)
QUICK = Sizes(
    reps=1,
    epochs=2,
    sweep_epochs=2,
    sweep_batches=(64, 256),
    jit_batches=(256,),
    points=20_000,
    memory_steps=None,
    forecast_reps=1,
    script_reps=1,
    predict_warmups=0,
    bundle_args=("--epochs", "1", "--units", "8", "--layers", "1"),
)


@dataclass
class Row:
    """One line of the result table."""

    section: str
    what: str
    value: float
    unit: str
    versus: str = ""  # against the tutorial reference
    target: str = ""
    met: bool | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values) -> float:
    return float(statistics.median(values))


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


# ------------------------------------------------------------------ machine


def machine() -> dict:
    """CPU model, cores, RAM, library versions, GPU (or none), load average."""
    import keras
    import tensorflow as tf

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "gpu": ", ".join(d.name for d in gpus) or "none",
        "load_average": os.getloadavg(),
    }


# ----------------------------------------------------------------- training


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


def load_aapl():
    """AAPL Adj Close and the project's split of it (default PrepSettings)."""
    from forecaster.config import PrepSettings
    from forecaster.data import read_price_csv
    from forecaster.training import prepare

    values = read_price_csv(ROOT / CSV, column=COLUMN).values
    prep = PrepSettings()
    return values, prep, prepare(values, prep)


def test_scores(prepared, predicted: np.ndarray) -> tuple[float, float]:
    """Model and naive RMSE in price units on the project's test days."""
    from forecaster.evaluation import naive_scores, scores

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
    from forecaster.windows import window_view

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
    from forecaster.engines import KerasEngine
    from forecaster.forecast import test_predictions
    from forecaster.models import build_model
    from forecaster.training import batches_per_pass, window_dataset

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


# ----------------------------------------------------------------- forecast


def bench_forecast(sizes: Sizes, results: dict, bundle: Path) -> None:
    """Per-day model.predict vs the in-graph loop vs NumPy, on the tutorial's model."""
    from bench.tutorial import tutorial_forecast_loop
    from forecaster.engines import KerasEngine, NumpyEngine

    model, scaler = results.pop("tutorial_model"), results.pop("tutorial_scaler")
    values, prep, _ = load_aapl()
    prices = values.to_numpy(dtype=np.float64).reshape(-1, 1)
    recent = scaler.transform(prices)[-prep.window :, 0]
    path = OUT / "tutorial-model.keras"
    # The tutorial's model works on scaled levels: "level" makes the engines
    # compute exactly what the tutorial's loop computes.
    keras_engine = KerasEngine(model, "level", prep.window, 1, jit_compile=True)
    plain_engine = KerasEngine(model, "level", prep.window, 1, jit_compile=False)
    numpy_engine = NumpyEngine(path, "level", prep.window, 1)
    calls = {
        "tutorial": lambda: tutorial_forecast_loop(model, recent, FORECAST_DAYS),
        "keras": lambda: keras_engine.forecast(recent[None], FORECAST_DAYS)[0],
        "keras_no_xla": lambda: plain_engine.forecast(recent[None], FORECAST_DAYS)[0],
        "numpy": lambda: numpy_engine.forecast(recent[None], FORECAST_DAYS)[0],
    }
    seconds, paths = {}, {}
    for name, call in calls.items():
        # warm-up: traces model.predict / traces (and XLA-compiles) the loop
        seconds[f"{name}_first_call"], paths[name] = timed(call)
        seconds[name] = [timed(call)[0] for _ in range(sizes.forecast_reps)]
    window = recent[None].astype(np.float32)
    single = {
        "tutorial": lambda: model.predict(window[..., None], verbose=0),
        "keras": lambda: keras_engine.predict(window),
        "numpy": lambda: numpy_engine.predict(window),
    }
    for name, call in single.items():
        call()
        seconds[f"{name}_one_pass"] = [
            timed(call)[0] for _ in range(sizes.forecast_reps)
        ]
    agree = {
        f"{a} vs {b}": float(np.max(np.abs(paths[a] - paths[b])))
        for a, b in (
            ("keras", "tutorial"),
            ("keras_no_xla", "tutorial"),
            ("numpy", "tutorial"),
            ("numpy", "keras"),
        )
    }
    # predict.py's NumPy engine runs in a process that never imports
    # TensorFlow; here TensorFlow's runtime shares the process (and its idle
    # threads the cores), so the engine is also timed the way predict.py runs it.
    seconds["numpy_fresh_process"] = numpy_forecast_probe(
        path, "level", recent[None], sizes.forecast_reps
    )
    agree_bundle = bundle_agreement(bundle, prep.window, sizes.forecast_reps)
    results["forecast"] = {
        "seconds": seconds,
        "max_abs_difference_scaled": agree,
        "bundle_model": agree_bundle,
    }


def bundle_agreement(bundle: Path, window: int, reps: int) -> dict:
    """The two engines on the benchmark's own bundle: agreement and time."""
    from forecaster.bundle import load_bundle
    from forecaster.data import read_price_csv
    from forecaster.engines import KerasEngine, NumpyEngine

    loaded = load_bundle(bundle)
    args = (loaded.representation, loaded.window, loaded.horizon)
    prices = read_price_csv(ROOT / CSV, column=COLUMN).values.to_numpy()
    context = loaded.scaler.transform(prices[-loaded.window :])[None]
    keras_engine = KerasEngine.from_file(loaded.model_path, *args, jit_compile=True)
    numpy_engine = NumpyEngine(loaded.model_path, *args)
    keras_path = keras_engine.forecast(context, FORECAST_DAYS)
    numpy_path = numpy_engine.forecast(context, FORECAST_DAYS)
    return {
        "representation": loaded.representation,
        "max_abs_difference_scaled": float(np.max(np.abs(keras_path - numpy_path))),
        "keras_seconds": timed(keras_engine.forecast, context, FORECAST_DAYS)[0],
        "numpy_seconds": timed(numpy_engine.forecast, context, FORECAST_DAYS)[0],
        "numpy_fresh_process": numpy_forecast_probe(
            loaded.model_path, loaded.representation, context, reps
        ),
    }


def numpy_forecast_probe(
    model: Path, representation: str, context: np.ndarray, reps: int
) -> dict:
    """Time NumpyEngine.forecast in a fresh process that does not import TensorFlow."""
    context_file = OUT / "forecast-context.npy"
    np.save(context_file, np.asarray(context, dtype=np.float32))
    command = [sys.executable, "-m", "bench.speed", "--probe", "numpy-forecast"]
    command += ["--model", str(model), "--representation", representation]
    command += ["--context", str(context_file), "--reps", str(reps)]
    log(f"NumPy forecast in a fresh process: {Path(model).name} ({representation})")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"NumPy forecast probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def numpy_forecast(model: Path, representation: str, context: Path, reps: int) -> dict:
    """The probe's side: load, one warm-up forecast, `reps` timed ones."""
    from forecaster.engines import NumpyEngine

    context_values = np.load(context)
    engine = NumpyEngine(model, representation, context_values.shape[1], 1)
    first, _ = timed(engine.forecast, context_values, FORECAST_DAYS)
    times = [
        timed(engine.forecast, context_values, FORECAST_DAYS)[0] for _ in range(reps)
    ]
    return {
        "first_call": first,
        "seconds": times,
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def forecast_rows(forecast: dict) -> list[Row]:
    seconds, agree = forecast["seconds"], forecast["max_abs_difference_scaled"]
    agree_bundle = forecast["bundle_model"]
    section = "2 forecast 30 days"
    ref = median(seconds["tutorial"])
    first = format_value(seconds["tutorial_first_call"], "s")
    rows = [
        Row(
            section,
            f"tutorial: model.predict once per day; first call {first}",
            ref,
            "s",
        )
    ]
    for name, what in (
        (
            "keras",
            "KerasEngine.forecast, in-graph loop, jit_compile=True (class default)",
        ),
        (
            "keras_no_xla",
            "KerasEngine.forecast, jit_compile=False (predict.py's default)",
        ),
        ("numpy", "NumpyEngine.forecast (no TensorFlow; predict.py's default engine)"),
    ):
        value = median(seconds[name])
        first = seconds[f"{name}_first_call"]
        rows.append(
            Row(
                section,
                f"{what}; first call {format_value(first, 's')}",
                value,
                "s",
                speedup(ref, value),
                ">= 100x",
                ref / value >= 100,
            )
        )
    fresh = seconds.get("numpy_fresh_process")
    if fresh:  # absent from results recorded before this row existed
        rows.append(numpy_fresh_row(section, ref, fresh, "the tutorial's model, level"))
    bundle_fresh = agree_bundle.get("numpy_fresh_process")
    if bundle_fresh:
        rows.append(
            numpy_fresh_row(
                section,
                ref,
                bundle_fresh,
                f"the benchmark's bundle, {agree_bundle['representation']}",
            )
        )
    one_pass = median(seconds["tutorial_one_pass"])
    rows.append(
        Row(section, "one forward pass, 1 window: model.predict", one_pass, "s")
    )
    for name, what in (
        ("keras", "one forward pass, 1 window: KerasEngine.predict (tf.function)"),
        ("numpy", "one forward pass, 1 window: NumpyEngine.predict"),
    ):
        value = median(seconds[f"{name}_one_pass"])
        rows.append(Row(section, what, value, "s", speedup(one_pass, value)))
    worst = max(agree.values())
    rows.append(
        Row(
            section,
            "largest difference between the paths (" + ", ".join(agree) + ")",
            worst,
            "scaled",
            "",
            "<= 1e-5",
            worst <= 1e-5,
        )
    )
    bundle_diff = agree_bundle["max_abs_difference_scaled"]
    rows.append(
        Row(
            section,
            "keras vs numpy engine on the benchmark's bundle "
            f"({agree_bundle['representation']})",
            bundle_diff,
            "scaled",
            "",
            "<= 1e-5",
            bundle_diff <= 1e-5,
        )
    )
    return rows


def numpy_fresh_row(section: str, ref: float, fresh: dict, model: str) -> Row:
    value = median(fresh["seconds"])
    tensorflow = (
        "TensorFlow imported!" if fresh["tensorflow_imported"] else "no TensorFlow"
    )
    return Row(
        section,
        f"NumpyEngine.forecast, {model}, alone in a fresh process as predict.py "
        f"runs it ({tensorflow}); first call {format_value(fresh['first_call'], 's')}",
        value,
        "s",
        speedup(ref, value),
        ">= 100x",
        ref / value >= 100,
    )


# ------------------------------------------------------------------ windows


def random_walk(points: int, seed: int = 0) -> np.ndarray:
    """A positive random-walk price series (n,): 100 * exp(cumsum(N(0, 0.01)))."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, points)))


def project_scaled(prices: np.ndarray, prep):
    """The project's scaling (default representation), fitted on the training part."""
    from forecaster.windows import scaler_for, split_series

    split = split_series(len(prices), prep)
    return (
        scaler_for(prep.representation).fit(prices[: split.n_train]).transform(prices)
    )


def bench_windows(sizes: Sizes, results: dict) -> None:
    from sklearn.preprocessing import MinMaxScaler

    from bench.tutorial import create_dataset
    from forecaster.config import PrepSettings
    from forecaster.training import window_dataset
    from forecaster.windows import window_view

    prep = PrepSettings()
    prices = random_walk(sizes.points)
    tutorial_scaled = MinMaxScaler().fit_transform(prices.reshape(-1, 1))
    scaled = project_scaled(prices, prep)
    targets = (prep.window, len(prices))
    seconds = {key: [] for key in ("tutorial", "view", "build", "full", "shuffled")}
    for rep in range(sizes.reps):
        log(f"windows rep {rep + 1}/{sizes.reps} on {sizes.points:,} points")
        elapsed, made = timed(create_dataset, tutorial_scaled, prep.window)
        seconds["tutorial"].append(elapsed)
        del made
        seconds["view"].append(timed(window_view, scaled, prep.window, targets)[0])
        elapsed, dataset = timed(window_dataset, scaled, targets, prep, MEMORY_BATCH)
        seconds["build"].append(elapsed)
        seconds["full"].append(timed(lambda d=dataset: sum(1 for _ in d))[0])
        shuffled = window_dataset(scaled, targets, prep, MEMORY_BATCH, shuffle=True)
        seconds["shuffled"].append(timed(lambda d=shuffled: sum(1 for _ in d))[0])
    kinds = ("tutorial", "project", "unshuffled")
    memory = {kind: memory_probe(kind, sizes) for kind in kinds}
    results["windows"] = {"points": sizes.points, "seconds": seconds, "memory": memory}


def window_rows(windows: dict) -> list[Row]:
    seconds, memory = windows["seconds"], windows["memory"]
    section = f"3 windows, {windows['points']:,}-point random walk"
    ref = median(seconds["tutorial"])
    rows = [Row(section, "tutorial: create_dataset (Python loop)", ref, "s")]
    for key, what, target in (
        ("view", "ours: window_view (strided view, no copy)", ">= 50x"),
        ("build", "ours: build the window_dataset pipeline", ">= 50x"),
        ("full", f"ours: gather every window through it (batch {MEMORY_BATCH})", ""),
        ("shuffled", "ours: the same, shuffle=True (as in training)", ""),
    ):
        value = median(seconds[key])
        rows.append(
            Row(
                section,
                what,
                value,
                "s",
                speedup(ref, value),
                target,
                ref / value >= 50 if target else None,
            )
        )
    return rows + memory_rows(section, memory)


def memory_rows(section: str, memory: dict) -> list[Row]:
    """Peak resident memory after imports, each measured in its own process."""
    tut = memory["tutorial"]
    matrix = tut["matrix_mib"]
    rows = [
        Row(
            section,
            f"memory, tutorial: create_dataset matrices ({matrix:.0f} MiB of float64)",
            tut["peak_mib"] - tut["baseline_mib"],
            "MiB",
        )
    ]
    for kind, shuffled in (
        ("project", "shuffle=True as fit_model"),
        ("unshuffled", "shuffle=False"),
    ):
        ours = memory[kind]
        growth = ours["peak_mib"] - ours["baseline_mib"]
        rows.append(
            Row(
                section,
                f"memory, ours: window_dataset ({shuffled}) + 1 epoch of "
                f"LSTM({MEMORY_UNITS}), batch {MEMORY_BATCH}, {ours['steps']} steps in "
                f"{ours['epoch_seconds']:.0f} s",
                growth,
                "MiB",
                f"{growth / (tut['peak_mib'] - tut['baseline_mib']):.2f}x the memory",
                "< 1/4 of matrix" if kind == "project" else "",
                growth < matrix / 4 if kind == "project" else None,
            )
        )
    return rows


def memory_probe(kind: str, sizes: Sizes) -> dict:
    """Run one memory measurement in a fresh process and return what it printed."""
    command = [sys.executable, "-m", "bench.speed", "--probe", kind]
    command += ["--points", str(sizes.points)]
    if sizes.memory_steps:
        command += ["--steps", str(sizes.memory_steps)]
    log(f"memory probe: {kind}")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {kind} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_mib() -> float:
    """This process's peak resident memory, MiB (VmHWM).

    Not ru_maxrss: after fork + exec it starts at the parent's resident size
    (Linux carries the old address space's peak over), so a probe launched
    from this 1-2 GB benchmark would report at least that.
    """
    return _status_mib("VmHWM")


def current_mib() -> float:
    """This process's resident memory now, MiB (VmRSS)."""
    return _status_mib("VmRSS")


def reset_peak() -> bool:
    """Set the peak (VmHWM) back to the current RSS, so that imports do not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def probe(kind: str, points: int, steps: int | None) -> dict:
    """In a fresh process: peak RSS of one way of windowing (and training on) a series.

    Every kind imports TensorFlow and Keras first and then resets the peak, so
    the figures that matter, peak minus the resident size after imports, count
    only what windowing (and training) added.
    """
    import keras  # noqa: F401
    import tensorflow as tf  # noqa: F401

    from forecaster.config import PrepSettings

    prep = PrepSettings()
    prices = random_walk(points)
    import_peak, baseline = peak_mib(), current_mib()
    reset = reset_peak()
    if kind == "tutorial":
        from sklearn.preprocessing import MinMaxScaler

        from bench.tutorial import create_dataset

        scaled = MinMaxScaler().fit_transform(prices.reshape(-1, 1))
        x, y = create_dataset(scaled, prep.window)
        measured = {"peak_mib": peak_mib(), "matrix_mib": (x.nbytes + y.nbytes) / 2**20}
    else:
        measured = _probe_project(prices, prep, steps, shuffle=kind == "project")
    return {
        "import_peak_mib": import_peak,
        "baseline_mib": baseline,
        "peak_reset_after_imports": reset,
        **measured,
    }


def _probe_project(prices, prep, steps: int | None, shuffle: bool) -> dict:
    from forecaster.config import ModelSettings
    from forecaster.models import build_model
    from forecaster.training import window_dataset
    from forecaster.windows import window_view

    scaled = project_scaled(prices, prep)
    targets = (prep.window, len(prices))
    window_view(scaled, prep.window, targets)
    data = window_dataset(scaled, targets, prep, MEMORY_BATCH, shuffle=shuffle)
    model = build_model(ModelSettings(units=MEMORY_UNITS, layers=1), prep.window)
    started = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    n_windows = targets[1] - targets[0]
    return {
        "peak_mib": peak_mib(),
        "epoch_seconds": time.perf_counter() - started,
        "steps": steps or -(-n_windows // MEMORY_BATCH),
        "windows": n_windows,
    }


# ------------------------------------------------------------------ scripts


def train_bundle(sizes: Sizes) -> tuple[Path, float]:
    """The benchmark's own bundle, trained by train.py so the run is self-contained."""
    bundle = OUT / "speed-bundle"
    command = [sys.executable, "train.py", "--out", str(bundle), "--force", "--quiet"]
    command += sizes.bundle_args
    log("training the benchmark bundle: " + " ".join(command[1:]))
    elapsed, done = timed(
        subprocess.run,
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"train.py failed:\n{done.stderr[-2000:]}")
    return bundle, elapsed


def script_commands(bundle: Path) -> dict[str, tuple[list[str], Path]]:
    """The three forecasting scripts, each with the PNG it must write."""
    py = sys.executable
    tutorial_png = OUT / "tutorial-forecast.png"
    predict = [py, "predict.py", "--model", str(bundle), "--days", str(FORECAST_DAYS)]
    return {
        "tutorial": (
            [
                py,
                "bench/tutorial_predict.py",
                "--model",
                str(OUT / "tutorial-model.keras"),
                "--out",
                str(tutorial_png),
            ],
            tutorial_png,
        ),
        "numpy": (
            predict + ["--out", str(OUT / "predict-numpy")],
            OUT / "predict-numpy" / "forecast.png",
        ),
        "keras": (
            predict + ["--engine", "keras", "--out", str(OUT / "predict-keras")],
            OUT / "predict-keras" / "forecast.png",
        ),
    }


def run_script(command: list[str], png: Path) -> float:
    """Wall seconds from process start to exit; fails unless the PNG was written."""
    png.unlink(missing_ok=True)
    elapsed, done = timed(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def bench_scripts(sizes: Sizes, results: dict, bundle: Path) -> None:
    commands = script_commands(bundle)
    seconds = {name: [] for name in commands}
    for rep in range(sizes.predict_warmups + sizes.script_reps):
        log(f"scripts round {rep + 1}")
        for name, (command, png) in commands.items():  # interleaved: fair under load
            elapsed = run_script(command, png)
            if rep >= sizes.predict_warmups:
                seconds[name].append(elapsed)
    results["scripts"] = {
        "seconds": seconds,
        "commands": {k: " ".join(c[1:]) for k, (c, _) in commands.items()},
        "profile": profile_predict(commands),
    }


def script_rows(scripts: dict) -> list[Row]:
    seconds = scripts["seconds"]
    section = "4 script end to end"
    ref = median(seconds["tutorial"])
    rows = [Row(section, "tutorial_predict.py (TF, per-day predict)", ref, "s")]
    for name, what, limit in (
        ("numpy", "predict.py (default: NumPy engine)", 0.25),
        ("keras", "predict.py --engine keras", 0.5),
    ):
        value = median(seconds[name])
        rows.append(
            Row(
                section,
                what,
                value,
                "s",
                f"{value / ref:.2f}x the time",
                f"<= {limit}x",
                value / ref <= limit,
            )
        )
    return rows


def profile_predict(commands: dict) -> dict:
    """Where predict.py's time goes: -X importtime totals and a cProfile listing."""
    profile = {}
    for name in ("numpy", "keras"):
        command, _ = commands[name]
        done = subprocess.run(
            [command[0], "-X", "importtime", *command[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        profile[f"imports_{name}"] = top_imports(done.stderr)
    for name in ("numpy", "keras"):
        stats_file = OUT / f"predict-{name}.prof"
        command, _ = commands[name]
        subprocess.run(
            [command[0], "-m", "cProfile", "-o", str(stats_file), *command[1:]],
            cwd=ROOT,
            capture_output=True,
        )
        profile[f"cprofile_{name}"] = top_functions(stats_file)
    return profile


def top_imports(stderr: str, count: int = 8) -> list[tuple[str, float]]:
    """Top-level imports by cumulative seconds, from `python -X importtime` output."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if not name.startswith("  "):  # one leading space: imported at top level
            found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda item: -item[1])[:count]


def top_functions(stats_file: Path, count: int = 12) -> list[tuple[str, float]]:
    """Functions by cumulative seconds from a cProfile dump."""
    import pstats

    stats = pstats.Stats(str(stats_file))
    rows = [
        (f"{Path(file).parent.name}/{Path(file).name}:{line}({func})", cumulative)
        for (file, line, func), (_, _, _, cumulative, _) in stats.stats.items()
        if not file.startswith(("<frozen", "~"))  # import machinery, builtins
    ]
    return sorted(rows, key=lambda item: -item[1])[:count]


# ------------------------------------------------------------------- report


def speedup(reference: float, value: float) -> str:
    """How many times faster `value` seconds are than `reference` seconds."""
    ratio = reference / value
    if ratio >= 10:
        return f"{ratio:,.0f}x faster"
    if ratio >= 1:
        return f"{ratio:.2f}x faster"
    return f"{1 / ratio:.2f}x slower"


def format_value(value: float, unit: str) -> str:
    if unit == "scaled":
        return f"{value:.1e}"
    if unit == "s":
        return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "$":
        return f"${value:.3f}"
    return f"{value:,.0f} {unit}"


def table(rows: list[Row]) -> str:
    lines = [
        "| section | measurement | median | vs tutorial | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(
            f"| {r.section} | {r.what} | {format_value(r.value, r.unit)} | {r.versus} "
            f"| {r.target} | {met} |"
        )
    return "\n".join(lines)


def print_profile(profile: dict) -> None:
    for key, entries in profile.items():
        print(f"\n{key} (seconds, cumulative):")
        for name, seconds in entries:
            print(f"  {seconds:8.3f}  {name}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: small, 1 rep")
    p.add_argument(
        "--report",
        action="store_true",
        help="reprint the table from bench/out/speed.json (speed-quick.json with "
        "--quick) without measuring",
    )
    p.add_argument(
        "--probe",
        choices=("tutorial", "project", "unshuffled", "numpy-forecast"),
        help=argparse.SUPPRESS,
    )
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--representation", help=argparse.SUPPRESS)
    p.add_argument("--context", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--reps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--points", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def all_rows(results: dict) -> list[Row]:
    """The result table, built from what the sections recorded."""
    return (
        training_rows(results["training"])
        + forecast_rows(results["forecast"])
        + window_rows(results["windows"])
        + script_rows(results["scripts"])
    )


def report(results: dict, name: str) -> None:
    rows = all_rows(results)
    (OUT / f"{name}.md").write_text(table(rows) + "\n")
    print("machine: " + json.dumps(results["machine"], default=str))
    print(table(rows))
    print_profile(results["scripts"]["profile"])
    total = results["total_seconds"]
    print(f"\ntotal run time {total:.0f} s; wrote bench/out/{name}.json and .md")


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if str(ROOT) not in sys.path:  # `python bench/speed.py` as well as `-m bench.speed`
        sys.path.insert(0, str(ROOT))
    if args.probe == "numpy-forecast":
        found = numpy_forecast(args.model, args.representation, args.context, args.reps)
        print(json.dumps(found))
        return 0
    if args.probe:
        print(json.dumps(probe(args.probe, args.points, args.steps)))
        return 0
    name = "speed-quick" if args.quick else "speed"
    if args.report:
        report(json.loads((OUT / f"{name}.json").read_text()), name)
        return 0
    started = time.perf_counter()
    sizes = QUICK if args.quick else FULL
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict = {"quick": args.quick, "sizes": asdict(sizes)}
    results["machine"] = machine()
    bundle, results["bundle_seconds"] = train_bundle(sizes)
    bench_training(sizes, results)
    bench_forecast(sizes, results, bundle)
    bench_windows(sizes, results)
    bench_scripts(sizes, results, bundle)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - started
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    report(results, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
