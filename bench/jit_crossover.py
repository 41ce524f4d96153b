"""When the test-day evaluation gains from XLA: `adopt` with jit_compile on and off.

`Forecaster.fit` ends in `adopt`, which scores the trained model on the test
days through a Keras engine whose recursive loop XLA may compile. XLA compiles
once per input shape (~0.5-1 s each) and then runs each call faster, so it
only pays over enough test origins. For each test-part length this trains one
model (the tests' tiny one, or `Settings()`'s default with `--default`) on a
generated random walk, then alternates `adopt(jit_compile=True)` and
`adopt(jit_compile=False)` on it, each with a fresh engine as a real fit has,
and prints the median wall and CPU time (user+sys of this process) of each,
their ratio, and the largest relative difference between the two runs' test
predictions and RMSE by step (the recursive paths run through the XLA loop).

    python -m bench.jit_crossover --lengths 50,100,200,400,800,1600 --rounds 3
    python -m bench.jit_crossover --default --lengths 100,300,1000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecaster.api import Forecaster  # noqa: E402
from forecaster.config import Settings  # noqa: E402
from forecaster.data.frames import panel_from_pandas  # noqa: E402
from forecaster.prep.panel import prepare_panel  # noqa: E402


def random_walk(n: int, seed: int = 0) -> pd.Series:
    """A generated geometric random walk on business days (not market data)."""
    rng = np.random.default_rng(seed)
    values = 100.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, size=n)))
    dates = pd.bdate_range("2000-01-03", periods=n, name="Date")
    return pd.Series(values, index=dates, name="Close")


def bench_settings(default: bool) -> Settings:
    """The tests' tiny model (window 10, 2 x LSTM(4)), or Settings() defaults."""
    s = Settings()
    if not default:
        s.prep.window = 10
        s.model.units, s.model.layers = 4, 2
        s.train.batch_size = 32
    s.train.epochs, s.train.verbose = 1, 0
    return s.validate()


def measure(length: int, default: bool, rounds: int) -> dict:
    """Median wall and CPU seconds of adopt with and without XLA, one trained model."""
    from forecaster.train.fit import fit_model  # lazy: TensorFlow

    settings = bench_settings(default)
    fraction = settings.prep.train_fraction
    n = int(round(settings.prep.window + length / (1 - fraction)))
    panel = panel_from_pandas(random_walk(n))
    prepared = prepare_panel(panel, settings.prep)
    part = next(iter(prepared.parts.values()))
    test_days = part.split.n - part.split.test_targets[0]
    result = fit_model(list(prepared.parts.values()), settings)
    times = {True: [], False: []}
    predicted = {}
    for _ in range(rounds):
        for jit in (True, False):
            wall, cpu = time.perf_counter(), os.times()
            fitted = Forecaster.from_settings(settings).adopt(
                panel, prepared, result, jit_compile=jit
            )
            after = os.times()
            times[jit].append(
                (
                    time.perf_counter() - wall,
                    after.user + after.system - cpu.user - cpu.system,
                )
            )
            predicted[jit] = np.concatenate(
                [
                    fitted.evaluation_["predictions"]["predicted"].to_numpy(),
                    fitted.evaluation_["by_step"]
                    .drop(columns="step")
                    .to_numpy()
                    .ravel(),
                ]
            )
    row = {"test_days": test_days}
    for jit, name in ((True, "xla"), (False, "plain")):
        row[f"{name}_wall"] = statistics.median(t[0] for t in times[jit])
        row[f"{name}_cpu"] = statistics.median(t[1] for t in times[jit])
    row["cpu_ratio"] = row["xla_cpu"] / row["plain_cpu"]
    row["max_diff"] = float(np.max(np.abs(predicted[True] / predicted[False] - 1)))
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="50,100,200,400,800,1600")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--default", action="store_true", help="Settings() model")
    args = parser.parse_args(argv)
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
    print(
        "| test days | XLA wall / CPU s | plain wall / CPU s | CPU XLA / plain "
        "| largest relative difference |"
    )
    print("|---|---|---|---|---|")
    for length in (int(x) for x in args.lengths.split(",")):
        r = measure(length, args.default, args.rounds)
        print(
            f"| {r['test_days']} | {r['xla_wall']:.2f} / {r['xla_cpu']:.2f} "
            f"| {r['plain_wall']:.2f} / {r['plain_cpu']:.2f} | {r['cpu_ratio']:.2f} "
            f"| {r['max_diff']:.1e} |",
            flush=True,
        )
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
