"""Panels at scale: batched forecasts, global-model training speed, memory.

All panels here are generated: random walks with volatility clustering and
OHLCV columns (tests/panel_fakes.py), not market data.

1. Forecast: one batched 30-day recursive forecast of 500 series against
   500 separate single-series forecasts with the same engine (NumPy, then
   Keras), equal to 1e-6; the default LSTM(50)x3 (weights as initialised:
   speed does not depend on them).
2. Training: windows/s of the default model on 50 series together against
   the single-series default on data/AAPL.csv, the same epochs in one run.
3. Memory: one training epoch of a 500-series x 5,000-day panel with three
   inputs (close, range, volume), in a fresh process: peak resident memory.

    python -m bench.panel_speed             # all three, about 15 min here
    python -m bench.panel_speed --only forecast
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def generated_panel(n_series: int, days: int, seed: int = 0) -> dict:
    from panel_fakes import random_walk_ohlcv

    return {
        f"S{k:03d}": random_walk_ohlcv(days, seed=seed + k) for k in range(n_series)
    }


def bench_forecast(n_series: int = 500, days: int = 30, repeats: int = 3) -> dict:
    """Median seconds of one batched forecast vs n separate ones, per engine."""
    import tempfile

    from forecaster.config import ModelSettings
    from forecaster.model.engines import NumpyEngine
    from forecaster.model.factory import build_model
    from forecaster.model.keras_engine import KerasEngine

    model = build_model(ModelSettings(), window=100)
    path = Path(tempfile.mkdtemp()) / "model.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    contexts = np.cumsum(rng.normal(0, 0.01, (n_series, 100)), axis=1) + 0.5
    engines = {
        "numpy": NumpyEngine(path, "delta", 100, 1),
        "keras": KerasEngine(model, "delta", 100, 1, jit_compile=False),
    }
    result = {}
    for name, engine in engines.items():
        engine.forecast(contexts[:2], days)  # warm up (tracing, caches)
        batched, separate = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            together = engine.forecast(contexts, days)
            batched.append(time.perf_counter() - started)
            started = time.perf_counter()
            alone = np.concatenate([engine.forecast(c[None], days) for c in contexts])
            separate.append(time.perf_counter() - started)
        result[name] = {
            "batched_s": float(np.median(batched)),
            "separate_s": float(np.median(separate)),
            "ratio": float(np.median(separate) / np.median(batched)),
            "max_abs_diff": float(np.abs(together - alone).max()),
        }
    return result


def bench_training(n_series: int = 50, epochs: int = 3) -> dict:
    """Windows/s of the default model: a 50-series panel vs the AAPL sample."""
    from forecaster.api import settings_from_keywords
    from forecaster.data import read_price_csv
    from forecaster.data.frames import panel_from_pandas
    from forecaster.prep.panel import prepare_panel
    from forecaster.prep.windows import prepare
    from forecaster.train.fit import fit_model

    settings = settings_from_keywords(epochs=epochs, patience=0, verbose=0)
    single = prepare(read_price_csv(ROOT / "data" / "AAPL.csv").values, settings.prep)
    panel = panel_from_pandas(generated_panel(n_series, 1000, seed=100))
    parts = list(prepare_panel(panel, settings.prep).parts.values())
    result = {}
    for name, prepared, n_fit in (
        ("single AAPL", single, single.split.n_fit),
        (f"panel of {n_series}", parts, sum(p.split.n_fit for p in parts)),
    ):
        run = fit_model(prepared, settings)
        result[name] = {
            "fit_windows": n_fit,
            "seconds": run.seconds,
            "windows_per_s": n_fit * epochs / run.seconds,
        }
    return result


def memory_probe(n_series: int, days: int) -> dict:
    """In this process: prepare the panel and train one epoch; peak RSS in MiB."""
    from forecaster.api import settings_from_keywords
    from forecaster.data.frames import panel_from_pandas
    from forecaster.prep.panel import prepare_panel
    from forecaster.train.fit import fit_model

    settings = settings_from_keywords(
        features="close,range,volume", units=8, layers=1, epochs=1, verbose=0
    )
    panel = panel_from_pandas(generated_panel(n_series, days, seed=1000))
    parts = list(
        prepare_panel(panel, settings.prep, settings.prep.features).parts.values()
    )
    started = time.perf_counter()
    fit_model(parts, settings)
    windows = sum(p.split.n_fit for p in parts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "series": n_series,
        "days": days,
        "fit_windows": windows,
        "epoch_seconds": time.perf_counter() - started,
        "peak_rss_mib": peak,
    }


def bench_memory(n_series: int = 500, days: int = 5000) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.panel_speed",
            "--probe",
            str(n_series),
            str(days),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("forecast", "training", "memory"))
    p.add_argument("--probe", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(memory_probe(*args.probe)))
        return 0
    parts = {
        "forecast": bench_forecast,
        "training": bench_training,
        "memory": bench_memory,
    }
    results = {name: run() for name, run in parts.items() if args.only in (None, name)}
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "panel_speed.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
