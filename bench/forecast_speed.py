"""Distribution forecasts at the cost of a point forecast: timings and band accuracy.

Three parts, each printed side by side from one run:

- predict: `predict.py --days 30` as whole processes, alternating: the
  default Student-t bundle against a point bundle (`--loss mse`) of the same
  network, both trained here (`--epochs 1`: speed does not depend on the
  weights); the Student-t bundle in a worktree of `--reference` too (before);
  and a 200-series panel bundle against a one-series bundle of the same small
  model (generated random walks, 400 days; LSTM 16 x 2, window 30), each
  also as a "network" copy with its pool records dropped, so that every
  series' paths are sampled (no series pools at network weight 0).
- bands: the 80% and 95% bands (and the median) of day 30 of the default
  bundle's forecast, from the default draws (model.draws) and from the plain
  random draws of before, each against a reference of 20,000 paths: the error
  of each over `--repeats` seeds, beside the Monte Carlo standard error of
  1,000 plain draws (from the reference's density at each quantile).
- blas: the NumPy engine's batched 30-day forecast of 200 series with its
  one-thread BLAS limit and without it (OpenBLAS's own threads), alone and
  beside `--load` busy-loop processes started and stopped here.

    python -m bench.forecast_speed --only predict --rounds 3 --reference main
    python -m bench.forecast_speed --only panels --rounds 3   # 1 vs 200 series only
    python -m bench.forecast_speed --only predict --only panels --direct 30
    python -m bench.forecast_speed --only bands --repeats 8
    python -m bench.forecast_speed --only blas --load 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "forecast_speed"
SMALL = ["--window", "30", "--units", "16", "--layers", "2"]
LEVELS = {"lower_95": 0.025, "lower_80": 0.1, "median": 0.5, "upper_80": 0.9}
LEVELS["upper_95"] = 0.975


def random_walks(series: int, days: int = 400, seed: int = 7) -> pd.DataFrame:
    """A long frame date, ticker, close: Student-t random walks from 50."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=days).strftime("%Y-%m-%d")
    frames = [
        pd.DataFrame(
            {
                "date": dates,
                "ticker": f"S{i:03d}",
                "close": (
                    50 * np.exp(np.cumsum(rng.standard_t(5, days) * 0.012))
                ).round(4),
            }
        )
        for i in range(series)
    ]
    return pd.concat(frames, ignore_index=True)


def bundle(name: str, flags: list[str]) -> Path:
    """bench/out/forecast_speed/NAME, trained once with train.py FLAGS --epochs 1."""
    path = OUT / name
    if not (path / "manifest.json").exists():
        command = [sys.executable, "train.py", *flags, "--epochs", "1", "--quiet"]
        subprocess.run([*command, "--out", str(path), "--force"], cwd=ROOT, check=True)
    return path


def network_only(path: Path) -> Path:
    """A copy of bundle `path` whose series keep the network's own bands.

    Every series' pool record (metrics.json distribution.combination) is
    dropped, so predict.py samples every series' paths: the case where
    validation chose the pool with the network at weight 0 for none of them.
    """
    import json
    import shutil

    from forecaster.store.manifest import write_manifest

    copy = path.with_name(f"{path.name}-network")
    if (copy / "manifest.json").exists():
        return copy
    shutil.copytree(path, copy, dirs_exist_ok=True)
    metrics = json.loads((copy / "metrics.json").read_text())
    for one in [metrics, *(metrics.get("series") or {}).values()]:
        (one.get("distribution") or {}).pop("combination", None)
    (copy / "metrics.json").write_text(json.dumps(metrics))
    (copy / "manifest.json").unlink()
    write_manifest(copy)
    return copy


def panel_csv(series: int) -> Path:
    path = OUT / f"walks-{series}.csv"
    if not path.exists():
        random_walks(series).to_csv(path, index=False)
    return path


CPU_SECONDS: list[float] = []  # each `seconds` run's CPU time (user + system)


def seconds(command: list[str], cwd: Path) -> float:
    """Wall time of one run of `command` in `cwd` (it must exit 0).

    Its CPU time (user + system, the children's) goes to CPU_SECONDS: on a
    machine shared beyond its cores, it moves less than the wall time.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    CPU_SECONDS.append(used)
    return wall


def reference_checkout(rev: str) -> Path:
    """A detached worktree of `rev` under bench/out (made once)."""
    path = ROOT / "bench" / "out" / f"reference-{rev}"
    if not path.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return path


def bench_predict(
    rounds: int,
    reference: str | None,
    panels: bool,
    points: bool = True,
    direct: int | None = None,
) -> None:
    """predict.py --days 30 end to end, alternating; medians and ratios.

    `points`: the point and distribution bundles of AAPL; `panels`: the
    one-series and 200-series panel bundles (both the default Student-t
    distribution, the same small network). `direct`: each also trained with
    --horizon `direct` (a direct model: 30 days from one call when `direct`
    >= 30, no sampled paths), rows "...-hN" beside.
    """
    bundles = {}
    variants = {"": []}
    if direct:
        variants[f"-h{direct}"] = ["--horizon", str(direct)]
    if points:
        bundles["point"] = bundle("aapl-mse", ["--loss", "mse"])
    for tag, horizon in variants.items():
        if points:
            bundles[f"distribution{tag}"] = bundle(f"aapl-student-t{tag}", horizon)
        if panels:
            for series in (1, 200):
                flags = ["--csv", str(panel_csv(series)), *SMALL, *horizon]
                bundles[f"panel-{series}{tag}"] = bundle(f"walks-{series}{tag}", flags)
    if panels:
        for series in (1, 200):
            bundles[f"network-{series}"] = network_only(bundles[f"panel-{series}"])
    runs = {name: (path, ROOT) for name, path in bundles.items()}
    if reference:
        checkout = reference_checkout(reference)
        for name in [*bundles]:
            if name in bundles:
                runs[f"{name}@{reference}"] = (bundles[name], checkout)
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (path, cwd) in runs.items():
            out = OUT / "predict-out" / name
            command = [sys.executable, "predict.py", "--model", str(path)]
            command += ["--days", "30", "--out", str(out)]
            times[name].append(seconds(command, cwd))
            cpu[name].append(CPU_SECONDS[-1])
            print(f"  {name}: {times[name][-1]:.2f} s ({cpu[name][-1]:.2f} s CPU)")
    print(f"predict.py --days 30, whole process, {rounds} alternating rounds")
    for name, values in times.items():
        runs_text = " ".join(f"{v:.2f}" for v in values)
        print(f"  {name:26s} median {statistics.median(values):7.2f} s  ({runs_text})")
        runs_text = " ".join(f"{v:.2f}" for v in cpu[name])
        print(f"  {'':26s}    CPU {statistics.median(cpu[name]):7.2f} s  ({runs_text})")
    median = {name: statistics.median(values) for name, values in times.items()}
    if panels:
        for tag in ("", f"@{reference}") if reference else ("",):
            for kind in ("panel", "network"):
                ratio = statistics.median(cpu[f"{kind}-200{tag}"]) / statistics.median(
                    cpu[f"{kind}-1{tag}"]
                )
                print(f"  {kind}-200{tag} / {kind}-1{tag}, CPU time: {ratio:.2f}")
    for tag in variants:
        if panels and tag:
            ratio = statistics.median(cpu[f"panel-200{tag}"]) / statistics.median(
                cpu[f"panel-1{tag}"]
            )
            print(f"  panel-200{tag} / panel-1{tag}, CPU time: {ratio:.2f}")
        if points:
            name = f"distribution{tag}"
            ratio = statistics.median(cpu[name]) / statistics.median(cpu["point"])
            wall = median[name] / median["point"]
            print(f"  {name} / point, CPU time: {ratio:.2f}, wall: {wall:.2f}")
    for tag in ("", f"@{reference}") if reference else ("",):
        if points:
            ratio = median[f"distribution{tag}"] / median[f"point{tag}"]
            print(f"  distribution{tag} / point{tag}: {ratio:.2f}")
        if panels:
            for kind in ("panel", "network"):
                ratio = median[f"{kind}-200{tag}"] / median[f"{kind}-1{tag}"]
                print(f"  {kind}-200{tag} / {kind}-1{tag}, wall: {ratio:.2f}")


def day_quantiles(engine, context, uniforms) -> np.ndarray:
    """The LEVELS quantiles of the last day of paths drawn with `uniforms`."""
    paths = engine._draw_paths(context, uniforms, 1)[:, -1]
    return np.quantile(paths.astype(np.float64), list(LEVELS.values()))


def bench_bands(repeats: int, days: int = 30) -> None:
    """Day-30 quantiles of the default draws and of plain draws beside 20,000 paths."""
    from scipy import stats

    import forecaster as fc
    from forecaster.model.draws import path_uniforms

    model = fc.load(bundle("aapl-student-t", []))
    engine = model.get_engine("numpy")
    part = next(iter(model.panel_.parts.values()))
    context = part.scaled[-engine.window :][None].astype(np.float32)

    def default(samples, seed):
        return path_uniforms(seed, samples, days).T[..., None]

    def plain(samples, seed):
        return np.random.default_rng(seed).random((days, samples, 1))

    reference_paths = np.concatenate(
        [
            engine._draw_paths(context, default(4000, 10_000 + k), 1)[:, -1]
            for k in range(5)
        ]
    ).astype(np.float64)
    reference = np.quantile(reference_paths, list(LEVELS.values()))
    density = stats.gaussian_kde(reference_paths)(reference)
    levels = np.array(list(LEVELS.values()))
    plain_se = np.sqrt(levels * (1 - levels) / 1000) / density
    rows = {"MC error of 1,000 plain draws": plain_se}
    for name, draw, samples in [
        ("plain draws, 1,000 (before)", plain, 1000),
        ("default draws, 512", default, 512),
        ("default draws, 1,000", default, 1000),
    ]:
        errors = np.array(
            [
                day_quantiles(engine, context, draw(samples, s)) - reference
                for s in range(repeats)
            ]
        )
        rows[f"{name}: RMS error"] = np.sqrt((errors**2).mean(axis=0))
    to_price = part.scaler.inverse_transform
    spread = to_price(reference[-1:])[0] - to_price(reference[:1])[0]
    print(
        f"day {days} of the default bundle, scaled units x 1000; reference 20,000 "
        f"paths (its 95% band: {spread:.2f} in price)"
    )
    print(f"  {'':40s}" + "".join(f"{name:>10s}" for name in LEVELS))
    print(
        f"  {'reference quantile':40s}"
        + "".join(f"{v * 1000:10.3f}" for v in reference)
    )
    for name, values in rows.items():
        print(f"  {name:40s}" + "".join(f"{v * 1000:10.3f}" for v in values))


def busy_loop() -> None:
    while True:
        pass


def bench_blas(load: int, rounds: int = 1) -> None:
    """200 series x 30 days through the NumPy engine, with and without the limit."""
    import forecaster.model.engines as engines

    model = fc_load_default()
    engine = model.get_engine("numpy")
    context = np.random.default_rng(0).normal(0.5, 0.01, (200, engine.window))
    limit = engines.SMALL_BATCH

    def timed(small_batch):
        engines.SMALL_BATCH = small_batch
        started = time.perf_counter()
        engine.forecast(context, 30)
        return time.perf_counter() - started

    print(f"NumPy engine, 200 series x 30 days, median of {rounds}")
    for busy in (0, load):
        workers = [multiprocessing.Process(target=busy_loop) for _ in range(busy)]
        for worker in workers:
            worker.start()
        one = [timed(limit) for _ in range(rounds)]
        default = [timed(0) for _ in range(rounds)]
        for worker in workers:
            worker.terminate()
        print(
            f"  {busy} busy processes: one thread {statistics.median(one):.2f} s, "
            f"OpenBLAS default {statistics.median(default):.2f} s"
        )
    engines.SMALL_BATCH = limit


def fc_load_default():
    import forecaster as fc

    return fc.load(bundle("aapl-student-t", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=("predict", "panels", "bands", "blas"), action="append"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--reference", help="git revision for the 'before' rows")
    parser.add_argument("--repeats", type=int, default=8, help="seeds per estimator")
    parser.add_argument("--panels", action="store_true", help="1 vs 200 series")
    parser.add_argument("--load", type=int, default=3, help="busy-loop processes")
    parser.add_argument(
        "--direct", type=int, help="also time bundles trained with --horizon N"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    parts = args.only or ["predict", "bands", "blas"]
    if "predict" in parts or "panels" in parts:
        panels = args.panels or "panels" in parts
        points = "predict" in parts
        bench_predict(args.rounds, args.reference, panels, points, args.direct)
    if "bands" in parts:
        bench_bands(args.repeats)
    if "blas" in parts:
        bench_blas(args.load)


if __name__ == "__main__":
    main()
