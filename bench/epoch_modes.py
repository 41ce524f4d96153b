"""Epoch modes: per-epoch speed of the default LSTM(50)x3, one fresh process each.

Epochs of a plain `model.fit` alternate between a fast mode (~3,000 windows/s,
~1.75 cores) and a slow one (~1,700 windows/s, ~0.9 cores). Every candidate
below trains the default model (batch 256) on data/AAPL.csv for `--epochs`
epochs in its own process, and a Keras callback records, per epoch: the wall
time, windows/s, the process CPU time, the machine's idle CPU time
(/proc/stat), the wait before the epoch's first step ("head": where an epoch
stalls) and the summed step times. Candidates:

- bare: `model.fit(x, y, batch_size=256)` on the fit windows as in-memory
  arrays, TensorFlow's and Keras' defaults (the reference);
- arrays, tf.data AUTOTUNE / fixed prefetch: the same arrays through
  `from_tensor_slices(...).shuffle().batch(256)`, prefetch AUTOTUNE against a
  fixed depth with tf.data's autotune off (Keras re-iterates it every epoch);
- pipeline before / after: `fit_model` (patience 0, so every epoch runs, with
  its validation pass) with `training.PREFETCH_BATCHES = None` (AUTOTUNE, as
  before issue 16) and with the library default (2, autotune off);
- re-iterated before / after: our `window_dataset` as a one-pass dataset that
  Keras re-iterates every epoch (what fit_model did before da50967), AUTOTUNE
  against the library default;
- thread and runtime candidates (`--threads`): inter-op 1, intra-op 1, oneDNN
  off, OMP_NUM_THREADS=1 with KMP_BLOCKTIME=0, gc.freeze() with the collector
  off, jit_compile, each on the bare fit.

Each candidate runs once per round, the rounds one after the other, so a
spell of slower host CPU (steps 1.4x slower at the same cores, seen here for
minutes at a time) falls on more than one candidate; the table pools the
rounds' epochs.

python -m bench.epoch_modes            # 2 rounds, ~7 min on 2 cores (bench/out/)
python -m bench.epoch_modes --threads  # adds the thread/runtime candidates
python -m bench.epoch_modes --report   # reprint the tables from the JSON
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
BATCH = 256
STALL_MS = 200  # a wait this long before an epoch's first step counts as a stall

# name -> (environment, options for the probe)
MAIN = {
    "bare model.fit (TF defaults)": ({}, {"mode": "bare"}),
    "arrays, tf.data AUTOTUNE": ({}, {"mode": "arrays", "prefetch": None}),
    "arrays, prefetch 2, autotune off": ({}, {"mode": "arrays", "prefetch": 2}),
    "pipeline before (AUTOTUNE)": ({}, {"mode": "pipeline", "prefetch": None}),
    "pipeline after (default)": ({}, {"mode": "pipeline"}),
    "re-iterated before (AUTOTUNE)": ({}, {"mode": "reiterated", "prefetch": None}),
    "re-iterated after (default)": ({}, {"mode": "reiterated"}),
}
THREADS = {
    "bare, inter-op 1": ({}, {"mode": "bare", "inter": 1}),
    "bare, intra-op 1": ({}, {"mode": "bare", "intra": 1}),
    "bare, TF_ENABLE_ONEDNN_OPTS=0": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {"mode": "bare"}),
    "bare, OMP_NUM_THREADS=1 KMP_BLOCKTIME=0": (
        {"OMP_NUM_THREADS": "1", "KMP_BLOCKTIME": "0"},
        {"mode": "bare"},
    ),
    "bare, gc.freeze + gc off": ({}, {"mode": "bare", "gc": True}),
    "bare, jit_compile": ({}, {"mode": "bare", "jit": True}),
}


def machine_ticks() -> tuple[int, int]:
    """(idle, steal) clock ticks of the whole machine so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
    return fields[3] + fields[4], fields[7]


def epoch_recorder():
    """A Keras callback recording each epoch's wall, CPU, idle, head and steps."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows: list[dict] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._steps, self._head = 0.0, None
            self._ticks = machine_ticks()
            self._cpu = time.process_time()
            self._wall = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            self._step = time.perf_counter()
            if self._head is None:
                self._head = self._step - self._wall

        def on_train_batch_end(self, batch, logs=None):
            self._steps += time.perf_counter() - self._step

        def on_epoch_end(self, epoch, logs=None):
            wall = time.perf_counter() - self._wall
            cpu = time.process_time() - self._cpu
            idle, steal = (
                b - a for a, b in zip(self._ticks, machine_ticks(), strict=True)
            )
            tick = os.sysconf("SC_CLK_TCK")
            self.rows.append(
                {
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "idle_cpu_s": idle / tick,
                    "steal_s": steal / tick,
                    "head_s": self._head or 0.0,
                    "steps_s": self._steps,
                }
            )

    return EpochRecorder()


def probe(options: dict, epochs: int) -> dict:
    """Train one candidate in this (fresh) process; per-epoch rows."""
    import tensorflow as tf

    if "inter" in options:
        tf.config.threading.set_inter_op_parallelism_threads(options["inter"])
    if "intra" in options:
        tf.config.threading.set_intra_op_parallelism_threads(options["intra"])
    import gc

    import keras

    from bench.speed_common import load_aapl
    from forecaster.config import ModelSettings, Settings
    from forecaster.model.factory import build_model
    from forecaster.train import fit as training

    if "prefetch" in options:
        training.PREFETCH_BATCHES = options["prefetch"]
    _, prep, prepared = load_aapl()
    recorder = epoch_recorder()
    mode = options["mode"]
    if options.get("gc"):
        gc.collect()
        gc.freeze()
        gc.disable()
    if mode == "pipeline":
        settings = Settings()
        settings.train.epochs, settings.train.patience = epochs, 0
        settings.train.verbose = 0
        training.fit_model(prepared, settings, callbacks=[recorder])
    else:
        keras.utils.set_random_seed(42)
        model = build_model(ModelSettings(), prep.window, prep.horizon)
        if options.get("jit"):
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=True
            )
        targets = prepared.split.fit_targets
        if mode == "reiterated":
            data = training.window_dataset(
                prepared.scaled, targets, prep, BATCH, shuffle=True, seed=42
            )
            model.fit(data, epochs=epochs, verbose=0, callbacks=[recorder])
        else:
            whole = training.window_dataset(prepared.scaled, targets, prep, 10**6)
            x, y = (t.numpy() for t in next(iter(whole)))
            if mode == "bare":
                model.fit(
                    x,
                    y,
                    batch_size=BATCH,
                    epochs=epochs,
                    verbose=0,
                    callbacks=[recorder],
                )
            else:  # arrays through tf.data, re-iterated every epoch
                data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
                    len(x), seed=42
                )
                data = training.with_input_options(data.batch(BATCH))
                model.fit(data, epochs=epochs, verbose=0, callbacks=[recorder])
    return {"windows": prepared.split.n_fit, "epochs": recorder.rows}


def summary(runs: list[dict]) -> dict:
    """Medians and spread over the timed epochs of every run of one candidate.

    The first epoch of each run (tracing) is left out. "outside steps" is an
    epoch's wall time less its training steps: the wait before the first
    step, the validation pass, callbacks.
    """
    windows = runs[0]["windows"]
    rows = [row for run in runs for row in run["epochs"][1:]]
    speeds = [windows / r["wall_s"] for r in rows]
    walls = [r["wall_s"] for r in rows]
    return {
        "median_windows_per_s": statistics.median(speeds),
        "fastest": max(speeds),
        "slowest": min(speeds),
        "spread": max(walls) / min(walls),  # slowest epoch / fastest epoch
        "stalled_epochs": sum(r["head_s"] * 1000 > STALL_MS for r in rows),
        "median_cores": statistics.median(r["cpu_s"] / r["wall_s"] for r in rows),
        "median_step_cores": statistics.median(
            r["cpu_s"] / (r["steps_s"] or r["wall_s"]) for r in rows
        ),
        "max_head_s": max(r["head_s"] for r in rows),
        "median_steps_s": statistics.median(r["steps_s"] for r in rows),
        "median_outside_s": statistics.median(r["wall_s"] - r["steps_s"] for r in rows),
        "max_outside_s": max(r["wall_s"] - r["steps_s"] for r in rows),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in rows),
        "timed_epochs": len(rows),
    }


def run_candidates(candidates: dict, epochs: int, rounds: int) -> dict:
    """Every candidate in a fresh process, in turn; `rounds` times over the list."""
    results = {name: [] for name in candidates}
    for _, (name, (env, options)) in itertools.product(
        range(rounds), candidates.items()
    ):
        load = os.getloadavg()[0]
        print(f"{time.strftime('%H:%M:%S')} {name} (load {load:.2f})", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "bench.epoch_modes", "--probe", json.dumps(options)]
            + ["--epochs", str(epochs)],
            check=False,
            cwd=ROOT,
            env={**os.environ, **env, "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(load_before=load, env=env, options=options)
        results[name].append(result)
    return results


def tables(results: dict, reference: str = "bare model.fit (TF defaults)") -> str:
    before = results.get("pipeline before (AUTOTUNE)")
    base = results.get(reference)
    lines = [
        (
            "| candidate | median win/s | fastest | slowest | slowest/fastest epoch "
            "| stalled epochs | max stall s | steps s/epoch | outside steps s/epoch "
            "(max) | CPU s/epoch | cores | vs bare | vs pipeline before |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        s = summary(result)
        median = s["median_windows_per_s"]
        ratio = f"{median / summary(base)['median_windows_per_s']:.2f}x" if base else ""
        versus = (
            f"{median / summary(before)['median_windows_per_s']:.2f}x" if before else ""
        )
        lines.append(
            f"| {name} | {median:,.0f} | {s['fastest']:,.0f} "
            f"| {s['slowest']:,.0f} | {s['spread']:.2f} "
            f"| {s['stalled_epochs']}/{s['timed_epochs']} | {s['max_head_s']:.2f} "
            f"| {s['median_steps_s']:.3f} "
            f"| {s['median_outside_s']:.3f} ({s['max_outside_s']:.3f}) "
            f"| {s['median_cpu_s']:.2f} | {s['median_cores']:.2f} "
            f"| {ratio} | {versus} |"
        )
    lines.append("")
    lines.append("Per-epoch windows/s (epoch 1, tracing, first; * = stalled > 0.2 s):")
    for name, runs in results.items():
        for number, result in enumerate(runs, 1):
            cells = [
                f"{result['windows'] / r['wall_s']:.0f}"
                + ("*" if r["head_s"] > 0.2 else "")
                for r in result["epochs"]
            ]
            lines.append(f"- {name} (round {number}): {' '.join(cells)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--rounds", type=int, default=2, help="passes over the list")
    p.add_argument(
        "--threads", action="store_true", help="add thread/runtime candidates"
    )
    p.add_argument("--only-threads", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--report", action="store_true", help="reprint from the JSON")
    p.add_argument("--probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe), args.epochs)))
        return 0
    name = "epoch_modes-threads" if args.only_threads else "epoch_modes"
    path = OUT / f"{name}.json"
    if args.report:
        results = json.loads(path.read_text())["results"]
    else:
        candidates = {} if args.only_threads else dict(MAIN)
        if args.threads or args.only_threads:
            candidates.update(THREADS)
        started = time.perf_counter()
        results = run_candidates(candidates, args.epochs, args.rounds)
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "results": results,
                    "epochs": args.epochs,
                    "rounds": args.rounds,
                    "cores": len(os.sched_getaffinity(0)),
                    "load_after": os.getloadavg(),
                    "seconds": time.perf_counter() - started,
                },
                indent=1,
            )
        )
    print(tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
