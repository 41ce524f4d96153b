"""Anchor fits with one BLAS thread beside OpenBLAS's default, side by side.

Fits Range-GARCH(1,1)-t on AAPL's first 2,000 returns (data/AAPL.csv), in
alternating rounds: once inside `threadpool_limits(1)`, as the evaluation
does (forecaster/evaluate/anchors.py), once with the process's default BLAS
threads. Prints the median of each and their ratio. On a busy machine
OpenBLAS's threads spin for the cores while the optimiser's vectors are tiny.

    python -m bench.anchor_threads --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from forecaster.evaluate import anchors, range_garch

DATA = Path(__file__).resolve().parent.parent / "data" / "AAPL.csv"


def main(argv=None) -> None:
    """Print the medians of both ways of fitting, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    frame = pd.read_csv(DATA)
    ohlc = frame[["Open", "High", "Low", "Close"]].to_numpy()
    returns = anchors.percent_returns(frame["Close"].to_numpy())
    ranges = anchors.percent_ranges(ohlc)
    range_garch.fit(returns, ranges, False, 2000)  # imports and caches warm
    times = {"one thread": [], "default": []}
    for _ in range(args.rounds):
        for name, context in (
            ("one thread", lambda: threadpool_limits(limits=1, user_api="blas")),
            ("default", nullcontext),
        ):
            with context():
                started = time.perf_counter()
                range_garch.fit(returns, ranges, False, 2000)
                times[name].append(time.perf_counter() - started)
    one, default = (statistics.median(times[k]) for k in times)
    print(f"Range-GARCH-t fit, 2,000 AAPL returns, median of {args.rounds} rounds")
    print(
        f"  one BLAS thread {one:.3f} s, default {default:.3f} s: {default / one:.2f}x"
    )


if __name__ == "__main__":
    main()
