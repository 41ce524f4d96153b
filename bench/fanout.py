"""Per-series fan-out on Ray against a plain loop: tasks/s, overhead, memory.

The universe is GENERATED: N seeded geometric random walks (not market
data), each trained with the same short settings. Four runs, each in a
fresh process:

1. `loop-1`: a plain Python loop, TensorFlow limited to one thread (what
   one Ray worker gets), the reference for Ray's per-task overhead;
2. `loop`: the same loop with TensorFlow unrestricted, the best a single
   process does on this machine without Ray;
3. `ray-1`: `train_per_series` on an embedded runtime with 1 CPU;
4. `ray-2`: the same with 2 CPUs (two workers, one core each).

Reported: tasks/s of each, scaling ray-2 / ray-1, Ray's overhead per task
((wall of ray-1 - the tasks' own seconds) / tasks, against the mean task),
and peak resident memory per worker.

python -m bench.fanout             # 200 series (long: run on a quiet machine)
python -m bench.fanout --quick     # smoke test: 4 series, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MODES = ("loop-1", "loop", "ray-1", "ray-2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=200, help="generated series")
    p.add_argument("--days", type=int, default=1500, help="days per series")
    p.add_argument("--epochs", type=int, default=5, help="epochs per training")
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--quick", action="store_true", help="4 series, 1 epoch, 300 days")
    p.add_argument("--run", choices=MODES, help=argparse.SUPPRESS)  # one mode, inside
    args = p.parse_args(argv)
    if args.quick:
        args.series, args.epochs, args.days = 4, 1, 300
        args.units, args.layers, args.window = 8, 1, 20
    if args.run:
        print(json.dumps(_run(args.run, args)))
        return 0
    results = {}
    for mode in args.modes:
        command = [sys.executable, "-m", "bench.fanout", "--run", mode]
        command += _flags(args)
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mode}: {results[mode]}", flush=True)
    report = _report(results, args)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "fanout-quick" if args.quick else "fanout"
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(_markdown(report))
    return 0


def _flags(args) -> list[str]:
    flags = []
    for name in ("series", "days", "epochs", "units", "layers", "window"):
        flags += [f"--{name}", str(getattr(args, name))]
    return flags


def _universe(args):
    sys.path.insert(0, str(ROOT / "tests"))
    import numpy as np
    import pandas as pd

    series = []
    for seed in range(args.series):
        rng = np.random.default_rng(seed)
        steps = rng.normal(0.0003, 0.015, size=args.days)
        dates = pd.bdate_range("2015-01-01", periods=args.days, name="Date")
        values = 100.0 * np.exp(np.cumsum(steps))
        series.append((f"S{seed:04d}", pd.Series(values, index=dates, name="Close")))
    return series


def _settings(args):
    from forecaster.api import settings_from_keywords

    return settings_from_keywords(
        window=args.window,
        units=args.units,
        layers=args.layers,
        epochs=args.epochs,
        patience=0,  # every task runs all its epochs: equal work in every mode
        verbose=0,
    )


def _run(mode: str, args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    series, settings = _universe(args), _settings(args)
    out = Path(tempfile.mkdtemp(prefix="fanout-"))
    if mode.startswith("loop"):
        return _loop(series, settings, out, threads=1 if mode == "loop-1" else None)
    from forecaster.distributed.fanout import train_per_series
    from forecaster.distributed.runtime import start_ray, stop_ray

    start_ray(num_cpus=int(mode.split("-")[1]))
    started = time.perf_counter()
    results = train_per_series(series, settings, out)
    wall = time.perf_counter() - started
    stop_ray()
    failed = [r.name for r in results if r.status != "trained"]
    return {
        "wall_s": wall,
        "tasks": len(results),
        "failed": failed,
        "task_s": [r.seconds for r in results if r.seconds is not None],
        "peak_memory_mb": max(r.peak_memory_mb or 0 for r in results),
    }


def _loop(series, settings, out: Path, threads: int | None) -> dict:
    if threads:
        from forecaster.distributed.runtime import configure_tensorflow

        configure_tensorflow(threads)
    from forecaster.api import Forecaster

    started = time.perf_counter()
    task_s = []
    for name, prices in series:
        began = time.perf_counter()
        model = Forecaster.from_settings(settings).fit(prices.rename(name))
        model.save(out / name)
        task_s.append(time.perf_counter() - began)
    return {
        "wall_s": time.perf_counter() - started,
        "tasks": len(series),
        "failed": [],
        "task_s": task_s,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _report(results: dict, args) -> dict:
    report = {"settings": vars(args) | {"generated": True}, "modes": {}}
    for mode, r in results.items():
        report["modes"][mode] = {
            "tasks_per_s": r["tasks"] / r["wall_s"],
            "wall_s": r["wall_s"],
            "mean_task_s": sum(r["task_s"]) / max(1, len(r["task_s"])),
            "peak_memory_mb": r["peak_memory_mb"],
            "failed": r["failed"],
        }
    modes = report["modes"]
    if "ray-1" in results:
        one = results["ray-1"]
        overhead = (one["wall_s"] - sum(one["task_s"])) / one["tasks"]
        report["ray_overhead_s_per_task"] = overhead
        report["ray_overhead_share"] = overhead / modes["ray-1"]["mean_task_s"]
    if "ray-1" in modes and "ray-2" in modes:
        report["scaling_2_over_1"] = (
            modes["ray-2"]["tasks_per_s"] / modes["ray-1"]["tasks_per_s"]
        )
    if "loop" in modes and "ray-2" in modes:
        report["ray_2_over_plain_loop"] = (
            modes["ray-2"]["tasks_per_s"] / modes["loop"]["tasks_per_s"]
        )
    return report


def _markdown(report: dict) -> str:
    lines = [
        "| run | tasks/s | wall s | mean task s | peak memory MiB |",
        "|---|---|---|---|---|",
    ]
    for mode, m in report["modes"].items():
        lines.append(
            f"| {mode} | {m['tasks_per_s']:.3f} | {m['wall_s']:.1f} | "
            f"{m['mean_task_s']:.2f} | {m['peak_memory_mb']:.0f} |"
        )
    for key in (
        "scaling_2_over_1",
        "ray_overhead_s_per_task",
        "ray_overhead_share",
        "ray_2_over_plain_loop",
    ):
        if key in report:
            lines.append(f"\n{key}: {report[key]:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
