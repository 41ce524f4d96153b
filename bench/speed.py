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

This file is the entry point: it runs the sections in that order, writes the
results and prints the table. Each section lives in its own module:
bench/speed_training.py (1), speed_forecast.py (2), speed_windows.py and
speed_memory.py (3), speed_scripts.py (4); speed_common.py holds what they
share. The probes that must run in a fresh process come back through here
(`--probe`).

python -m bench.speed            # full run; raw results in bench/out/speed.json
python -m bench.speed --quick    # smoke test: one repetition, small sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/speed.py` as well as `-m bench.speed`
    sys.path.insert(0, str(ROOT))

from bench.speed_common import (  # noqa: E402
    FULL,
    OUT,
    QUICK,
    Row,
    format_value,
    train_bundle,
)
from bench.speed_forecast import bench_forecast, forecast_rows, numpy_forecast  # noqa: E402
from bench.speed_memory import probe  # noqa: E402
from bench.speed_scripts import bench_scripts, script_rows  # noqa: E402
from bench.speed_training import bench_training, training_rows  # noqa: E402
from bench.speed_windows import bench_windows, window_rows  # noqa: E402


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
