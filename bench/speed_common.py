"""What every section of the speed benchmark shares: paths, sizes, rows, timing.

Part of `python -m bench.speed` (bench/speed.py runs every section). Also the
data both sides train and forecast on (data/AAPL.csv, a generated random
walk), the benchmark's own bundle, and how values and ratios are printed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CSV = "data/AAPL.csv"
COLUMN = "Adj Close"
FORECAST_DAYS = 30


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


def load_aapl():
    """AAPL Adj Close and the project's split of it (default PrepSettings)."""
    from forecaster.config import PrepSettings
    from forecaster.data import read_price_csv
    from forecaster.prep.windows import prepare

    values = read_price_csv(ROOT / CSV, column=COLUMN).values
    prep = PrepSettings()
    return values, prep, prepare(values, prep)


def random_walk(points: int, seed: int = 0) -> np.ndarray:
    """A positive random-walk price series (n,): 100 * exp(cumsum(N(0, 0.01)))."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, points)))


def project_scaled(prices: np.ndarray, prep):
    """The project's scaling (default representation), fitted on the training part."""
    from forecaster.prep.windows import scaler_for, split_series

    split = split_series(len(prices), prep)
    return (
        scaler_for(prep.representation).fit(prices[: split.n_train]).transform(prices)
    )


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
