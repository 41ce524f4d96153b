"""Speed benchmark, section 3 (memory): peak resident memory of each way of windowing.

Each figure comes from a fresh process (`python -m bench.speed --probe
tutorial|project|unshuffled`) that imports TensorFlow, resets its peak, then
builds the tutorial's window matrix or the project's windows plus one
training epoch, and prints its peak. Run through `python -m bench.speed`.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.speed_common import ROOT, Row, Sizes, log, project_scaled, random_walk

MEMORY_BATCH = 1024  # batch of the small model trained on the 1M-point series
MEMORY_UNITS = 8  # one LSTM(8) layer: LSTM(50)x3 over 1M windows is hours on 2 cores


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
    from forecaster.model.factory import build_model
    from forecaster.prep.windows import window_view
    from forecaster.train.fit import window_dataset

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
