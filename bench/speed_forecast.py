"""Speed benchmark, section 2: seconds per 30-day recursive forecast.

Per-day `model.predict` (the tutorial's loop) against `KerasEngine.forecast`
(in-graph loop, with and without XLA) and `NumpyEngine.forecast`, also alone
in a fresh process that never imports TensorFlow (the `numpy-forecast`
probe). Run through `python -m bench.speed`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.speed_common import (
    COLUMN,
    CSV,
    FORECAST_DAYS,
    OUT,
    ROOT,
    Row,
    Sizes,
    format_value,
    load_aapl,
    log,
    median,
    speedup,
    timed,
)


def bench_forecast(sizes: Sizes, results: dict, bundle: Path) -> None:
    """Per-day model.predict vs the in-graph loop vs NumPy, on the tutorial's model."""
    from bench.tutorial import tutorial_forecast_loop
    from forecaster.model.engines import NumpyEngine
    from forecaster.model.keras_engine import KerasEngine

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
    from forecaster.data import read_price_csv
    from forecaster.model.engines import NumpyEngine
    from forecaster.model.keras_engine import KerasEngine
    from forecaster.store.bundle import load_bundle

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
    from forecaster.model.engines import NumpyEngine

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
