"""A Ray worker's resident memory over many per-series trainings, and 1 vs 2 workers.

Part 1 (`--trainings N`, default 200): one worker (an embedded runtime with
one CPU) trains N tiny generated series in a row through the product's own
`train_per_series`, with worker recycling off (`tasks_per_worker=0`), and
records the worker's resident memory as each task begins (what earlier
trainings left behind). Target: the memory after 200 trainings at most
1.5x the memory after 10. `--in-process` runs the same tasks one after
another in this process instead of a worker, where `--no-release` can turn
the per-training cleanup (`fanout.release_worker_memory`) off: the "before".

Part 2 (`--scaling`): the same N series on one worker and on two (this
machine has 2 cores), recycling as shipped: tasks/s of each, their ratio,
and each worker's peak memory.

The series are generated random walks (not market data), 300 business days;
the model is tiny (window 20, one LSTM(8), 1 epoch, the default Student-t
head), so that 200 trainings take minutes. Writes bench/out/ray_memory.json.

    nice -n 5 python -m bench.ray_memory --trainings 200            # after
    nice -n 5 python -m bench.ray_memory --in-process --no-release --trainings 40
    flock /tmp/bench.lock python -m bench.ray_memory --scaling --trainings 200
    flock /tmp/bench.lock python -m bench.ray_memory --scaling --workers 1  # a slot
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.config import Settings
from forecaster.distributed import fanout
from forecaster.distributed.runtime import start_ray, stop_ray

OUT = Path(__file__).resolve().parent / "out" / "ray_memory.json"
DAYS = 300


def universe(count: int) -> list[tuple[str, pd.Series]]:
    """`count` generated random walks on business days, named S000, S001, ..."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2015-01-01", periods=DAYS, name="Date")
    return [
        (
            f"S{k:03d}",
            pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, DAYS))), dates),
        )
        for k in range(count)
    ]


def tiny_settings() -> Settings:
    """Window 20, one LSTM(8), 1 epoch, silent; the default head."""
    settings = Settings()
    settings.prep.window = 20
    settings.model.units, settings.model.layers = 8, 1
    settings.train.epochs, settings.train.verbose = 1, 0
    return settings


def run(count: int, cpus: int, tasks_per_worker: int) -> dict:
    """Train `count` series on an embedded runtime of `cpus` CPUs; per-task memory."""
    load_before = os.getloadavg()[0]
    start_ray(num_cpus=cpus)
    try:
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            results = fanout.train_per_series(
                universe(count),
                tiny_settings(),
                out,
                tasks_per_worker=tasks_per_worker,
            )
            seconds = time.perf_counter() - started
    finally:
        stop_ray()
    failed = [r.name for r in results if r.status != "trained"]
    if failed:
        raise SystemExit(f"failed series: {failed}: {results[0].error}")
    workers: dict[int, list] = {}
    for r in results:
        workers.setdefault(r.worker, []).append((r.held_mb, r.peak_memory_mb))
    return {
        "series": count,
        "cpus": cpus,
        "seconds": round(seconds, 2),
        "tasks_per_s": round(count / seconds, 3),
        # the 1-minute load average as the run began and as it ended
        "load": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "workers": {str(pid): rows for pid, rows in workers.items()},
    }


def in_process(count: int, release: bool) -> list[float]:
    """Memory held as each task begins, the tasks run here one after another.

    Also prints the functions registered in TensorFlow's eager context after
    each task: they grew by 78 a training before the fixes, then by 6 (the
    train step's LSTM loops, kept by a custom gradient's registry entry),
    and now stay flat (BENCHMARKS.md).
    """
    if not release:
        fanout.release_worker_memory = lambda *_: None  # the "before"
    held = []
    with tempfile.TemporaryDirectory() as out:
        for name, prices in universe(count):
            done = fanout.train_task(
                name, prices, tiny_settings(), f"{out}/{name}", None
            )
            held.append(done["held_mb"])
            functions = len(eager_functions())
            print(len(held), round(held[-1], 1), f"{functions} functions", flush=True)
    return held


def eager_functions() -> list[str]:
    """The functions registered in TensorFlow's eager context (loaded by a task)."""
    from tensorflow.python.eager import context  # lazy: the Ray driver needs no TF

    return context.context().list_function_names()


def scaling(count: int, only: int | None, saved: dict | None) -> dict:
    """Part 2: the runs on 1 and 2 workers (or `only` one, the other kept)."""
    runs = {k: v for k, v in (saved or {}).items() if k in ("1", "2")}
    for workers in (only,) if only else (1, 2):
        runs[str(workers)] = run(count, workers, fanout.TASKS_PER_WORKER)
    for workers, r in sorted(runs.items()):
        peaks = [max(p for _, p in rows) for rows in r["workers"].values()]
        print(
            f"{r['series']} series on {workers} worker(s): {r['tasks_per_s']} "
            f"tasks/s, load {r['load']}, {len(peaks)} worker processes, peak MB "
            f"{min(peaks):.0f}-{max(peaks):.0f}"
        )
    if len(runs) == 2 and runs["1"]["series"] == runs["2"]["series"]:
        ratio = runs["2"]["tasks_per_s"] / runs["1"]["tasks_per_s"]
        print(f"2 workers / 1 worker: {ratio:.2f}x (2 cores)")
    return runs


def main(argv=None) -> None:
    """Part 1, or part 2 with --scaling; prints and saves the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainings", type=int, default=200)
    parser.add_argument("--no-release", action="store_true")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        choices=(1, 2),
        help="with --scaling: only the run on this many workers (the other is "
        "kept from the last run), so each fits one benchmark slot",
    )
    args = parser.parse_args(argv)
    saved = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.scaling:
        saved["scaling"] = scaling(args.trainings, args.workers, saved.get("scaling"))
    else:
        if args.in_process:
            held = in_process(args.trainings, not args.no_release)
            key = "in process, " + ("no release" if args.no_release else "release")
            saved[key] = held
        else:
            result = run(args.trainings, 1, 0)
            [held] = [[h for h, _ in rows] for rows in result["workers"].values()]
            key = "one worker"
            saved[key] = result
        tenth = held[min(10, len(held) - 1)]
        print(
            f"{key}: {len(held)} trainings, memory as training 11 began "
            f"{tenth:.0f} MB, as the last began {held[-1]:.0f} MB: "
            f"{held[-1] / tenth:.2f}x (target <= 1.5x)"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(saved, indent=1))


if __name__ == "__main__":
    main()
