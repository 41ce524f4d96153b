"""Ray Train on this machine: windows/s with 1 and 2 workers, and the all-reduce a step.

One global model (the default: window 100, 3 x LSTM(50), Student-t head) on
the three-series sample panel (data/AAPL, GOOG, MSFT), at the default global
batch of 256 windows, trained four ways, one after the other:
- in this process, TensorFlow on every core (`fit_model`): the reference;
- on Ray Train with 1 worker (one CPU), batch 256;
- on Ray Train with 2 workers (one CPU each), 128 windows each a step;
- the all-reduce alone: 2 workers sum the model's weights (the tensors the
  optimizer reduces each step) `--reduces` times; the median time of one.
Ray runs embedded (one node, 2 CPUs). Windows/s is the fit windows of an
epoch over the median epoch time, the first epoch (tracing) left out; an
epoch includes its validation pass and checkpoint, in every run. Writes
bench/out/ray_train.json.

    flock /tmp/bench.lock python -m bench.ray_train --part training
    flock /tmp/bench.lock python -m bench.ray_train --part all-reduce
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

import forecaster as fc
from bench.speed_training import epoch_timer
from forecaster.config import Settings
from forecaster.data.panel import load_panel
from forecaster.distributed.runtime import start_ray, stop_ray
from forecaster.prep.panel import prepare_panel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "ray_train.json"
TICKERS = ("AAPL", "GOOG", "MSFT")


def settings_for(workers: int | None, epochs: int) -> Settings:
    """The default model at the default global batch, split over `workers`."""
    settings = fc.Forecaster(epochs=epochs, patience=epochs, verbose=0).settings
    settings.train.ray_workers = workers
    if workers:
        settings.train.batch_size //= workers
    return settings


def local_run(parts: list, epochs: int) -> dict:
    """The reference: fit_model in this process, every core."""
    from forecaster.train.fit import fit_model

    timer = epoch_timer()
    fit_model(parts, settings_for(None, epochs), callbacks=[timer])
    return {"epoch_seconds": timer.seconds}


def ray_run(parts: list, workers: int, epochs: int) -> dict:
    """The product's Ray Train run; its epoch times as rank 0 measured them."""
    from forecaster.distributed.train import fit_on_ray

    started = time.perf_counter()
    result = fit_on_ray(parts, settings_for(workers, epochs))
    record = result.runtime["ray_train"]
    return {
        "epoch_seconds": record["epoch_seconds"],
        "wall_seconds": time.perf_counter() - started,
        "nodes": len(record["nodes"]),
        "steps_per_epoch": record["steps_per_epoch"],
    }


def all_reduce_loop(config: dict) -> None:
    """In each worker: sum the model's weights over the workers, `reduces` times."""
    import ray.train
    import tensorflow as tf

    from forecaster.distributed.runtime import configure_tensorflow
    from forecaster.model.factory import build_model

    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    configure_tensorflow()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    settings = Settings.from_dict(config["settings"])
    prep = settings.prep
    model = build_model(settings.model, prep.window, prep.horizon, config["features"])
    tensors = [tf.Variable(w) for w in model.get_weights()]

    @tf.function
    def reduce_once():
        def replica():
            context = tf.distribute.get_replica_context()
            return context.all_reduce("SUM", [t.read_value() for t in tensors])

        return strategy.run(replica)

    seconds = []
    for index in range(config["warmup"] + config["reduces"]):
        started = time.perf_counter()
        summed = reduce_once()
        float(summed[0].numpy().ravel()[0])  # wait for it
        if index >= config["warmup"]:
            seconds.append(time.perf_counter() - started)
    measured = {
        "median_s": statistics.median(seconds),
        "p90_s": float(np.percentile(seconds, 90)),
        "tensors": len(tensors),
        "parameters": int(sum(np.size(w) for w in model.get_weights())),
    }
    if ray.train.get_context().get_world_rank() == 0:  # Ray Train keeps metrics
        Path(config["out"]).write_text(json.dumps(measured))  # only with checkpoints


def all_reduce_run(features: int, reduces: int, workers: int = 2) -> dict:
    """Time all_reduce_loop on `workers` Ray Train workers (one CPU each)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    storage = Path("/tmp") / "forecaster-bench-ray-train"
    out = storage / "all_reduce.json"
    storage.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    trainer = TensorflowTrainer(
        all_reduce_loop,
        train_loop_config={
            "settings": settings_for(None, 1).to_dict(),
            "features": features,
            "warmup": 20,
            "reduces": reduces,
            "out": str(out),
        },
        scaling_config=ScalingConfig(
            num_workers=workers, resources_per_worker={"CPU": 1}
        ),
        run_config=RunConfig(name="all-reduce", storage_path=str(storage)),
    )
    trainer.fit()
    return json.loads(out.read_text())


def windows_per_s(run: dict, windows: int) -> float:
    return windows / statistics.median(run["epoch_seconds"][1:])


def main(argv=None) -> int:
    """Run the measurements; print them side by side; write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4, help="per training (default 4)")
    p.add_argument("--reduces", type=int, default=200, help="timed all-reduces")
    p.add_argument(
        "--part",
        choices=("all", "training", "all-reduce"),
        default="all",
        help="the trainings, the all-reduce, or both (default); one lock hold each",
    )
    args = p.parse_args(argv)
    panel = load_panel(csv=[str(ROOT / "data" / f"{t}.csv") for t in TICKERS])
    settings = settings_for(None, args.epochs)
    parts = list(prepare_panel(panel, settings.prep).parts.values())
    windows = sum(part.split.n_fit for part in parts)
    found = json.loads(OUT.read_text()) if OUT.exists() else {}
    found["windows"] = windows
    runs, reduce = {}, None
    if args.part != "all-reduce":  # each result is saved as it comes
        runs["local (this process, 2 cores)"] = local_run(parts, args.epochs)
        save({**found, "runs": runs})
    start_ray(num_cpus=2)
    try:
        if args.part != "all-reduce":
            runs["Ray Train, 1 worker"] = ray_run(parts, 1, args.epochs)
            save({**found, "runs": runs})
            runs["Ray Train, 2 workers"] = ray_run(parts, 2, args.epochs)
        if args.part != "training":
            reduce = all_reduce_run(parts[0].n_features, args.reduces)
    finally:
        stop_ray()
    print(f"{windows} fit windows an epoch, global batch {settings.train.batch_size}")
    if runs:
        print_runs(runs, windows)
        found["runs"] = runs
    if reduce:
        print_all_reduce(reduce)
        found["all_reduce"] = reduce
    save(found)
    print(f"wrote {OUT}")
    return 0


def save(found: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(found, indent=2))


def print_runs(runs: dict, windows: int) -> None:
    """Windows/s of each run beside the 1-worker run's."""
    ref = windows_per_s(runs["Ray Train, 1 worker"], windows)
    print(f"{'run':<32}{'windows/s':>10}{'vs 1 worker':>13}  epoch seconds")
    for name, run in runs.items():
        rate = windows_per_s(run, windows)
        run["windows_per_s"] = rate
        times = " ".join(f"{s:.2f}" for s in run["epoch_seconds"])
        print(f"{name:<32}{rate:>10.0f}{rate / ref:>12.2f}x  {times}")


def print_all_reduce(reduce: dict) -> None:
    megabytes = reduce["parameters"] * 4 / 1e6
    print(
        f"all-reduce of the weights ({reduce['parameters']} float32 = "
        f"{megabytes:.3f} MB in {reduce['tensors']} tensors), 2 workers: median "
        f"{reduce['median_s'] * 1e3:.2f} ms, p90 {reduce['p90_s'] * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
