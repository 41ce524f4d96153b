"""Speed benchmark, section 3 (time): building windows over a long random walk.

The tutorial's `create_dataset` (a Python loop) against `window_view` and the
`window_dataset` pipeline on a generated random walk (1,000,000 points in a
full run), with the memory figures of bench/speed_memory.py beside them. Run
through `python -m bench.speed`.
"""

from __future__ import annotations

from bench.speed_common import (
    Row,
    Sizes,
    log,
    median,
    project_scaled,
    random_walk,
    speedup,
    timed,
)
from bench.speed_memory import MEMORY_BATCH, memory_probe, memory_rows


def bench_windows(sizes: Sizes, results: dict) -> None:
    from sklearn.preprocessing import MinMaxScaler

    from bench.tutorial import create_dataset
    from forecaster.config import PrepSettings
    from forecaster.prep.windows import window_view
    from forecaster.train.fit import window_dataset

    prep = PrepSettings()
    prices = random_walk(sizes.points)
    tutorial_scaled = MinMaxScaler().fit_transform(prices.reshape(-1, 1))
    scaled = project_scaled(prices, prep)
    targets = (prep.window, len(prices))
    seconds = {key: [] for key in ("tutorial", "view", "build", "full", "shuffled")}
    for rep in range(sizes.reps):
        log(f"windows rep {rep + 1}/{sizes.reps} on {sizes.points:,} points")
        elapsed, made = timed(create_dataset, tutorial_scaled, prep.window)
        seconds["tutorial"].append(elapsed)
        del made
        seconds["view"].append(timed(window_view, scaled, prep.window, targets)[0])
        elapsed, dataset = timed(window_dataset, scaled, targets, prep, MEMORY_BATCH)
        seconds["build"].append(elapsed)
        seconds["full"].append(timed(lambda d=dataset: sum(1 for _ in d))[0])
        shuffled = window_dataset(scaled, targets, prep, MEMORY_BATCH, shuffle=True)
        seconds["shuffled"].append(timed(lambda d=shuffled: sum(1 for _ in d))[0])
    kinds = ("tutorial", "project", "unshuffled")
    memory = {kind: memory_probe(kind, sizes) for kind in kinds}
    results["windows"] = {"points": sizes.points, "seconds": seconds, "memory": memory}


def window_rows(windows: dict) -> list[Row]:
    seconds, memory = windows["seconds"], windows["memory"]
    section = f"3 windows, {windows['points']:,}-point random walk"
    ref = median(seconds["tutorial"])
    rows = [Row(section, "tutorial: create_dataset (Python loop)", ref, "s")]
    for key, what, target in (
        ("view", "ours: window_view (strided view, no copy)", ">= 50x"),
        ("build", "ours: build the window_dataset pipeline", ">= 50x"),
        ("full", f"ours: gather every window through it (batch {MEMORY_BATCH})", ""),
        ("shuffled", "ours: the same, shuffle=True (as in training)", ""),
    ):
        value = median(seconds[key])
        rows.append(
            Row(
                section,
                what,
                value,
                "s",
                speedup(ref, value),
                target,
                ref / value >= 50 if target else None,
            )
        )
    return rows + memory_rows(section, memory)
