"""Reading prices: forecaster's readers beside pandas.read_csv on the same files.

Generates (once, in bench/out/) a long-format CSV of 500 tickers x 2,000
days (1,000,000 rows) and a one-series Yahoo-layout CSV of 50,000 days, then
times, alternating in rounds: pandas.read_csv of the file, and forecaster's
reader of it (read_long_csv; read_price_csv, read_price_file, which
`fc.read_prices` uses for one file, read_prices itself and read_series_csv).
Prints the median of each, the ratio to pandas and rows per second, wall
and CPU, with the load average. `--reference DIR` times the same readers
of another checkout (e.g. `git worktree add /tmp/reader-ref main`) side by
side, in a second process that reads when asked, alternating with this one.

    python -m bench.read_speed --rounds 3
    python -m bench.read_speed --rounds 9 --single   # the one-series file only
    python -m bench.read_speed --rounds 9 --single --reference /tmp/reader-ref
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import read_prices
from forecaster.data.csv import read_price_csv
from forecaster.data.panel import read_long_csv
from forecaster.data.tables import read_price_file, read_series_csv

OUT = Path(__file__).resolve().parent / "out"


def long_file(tickers: int = 500, days: int = 2000) -> Path:
    """date,ticker,open,high,low,close,adj_close,volume random walks (made once)."""
    path = OUT / f"long_{tickers}x{days}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2000-01-03", periods=days).strftime("%Y-%m-%d")
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (tickers, days)), axis=1))
    close = close.ravel()
    frame = pd.DataFrame(
        {
            "date": np.tile(dates, tickers),
            "ticker": np.repeat([f"T{i:03d}" for i in range(tickers)], days),
            "open": close * (1 + rng.normal(0, 0.002, close.size)),
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "adj_close": close * 0.9,
            "volume": rng.integers(100_000, 10_000_000, close.size),
        }
    )
    frame.to_csv(path, index=False, float_format="%.4f")
    return path


def single_file(days: int = 50_000) -> Path:
    """A Yahoo-layout CSV of one series, 1901 onwards (made once)."""
    path = OUT / f"single_{days}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(1)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    pd.DataFrame(
        {
            "Date": pd.bdate_range("1901-01-01", periods=days).strftime("%Y-%m-%d"),
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Adj Close": close * 0.9,
            "Volume": rng.integers(100_000, 10_000_000, days),
        }
    ).to_csv(path, index=False, float_format="%.4f")
    return path


def seconds(read, path: Path) -> tuple[float, float]:
    """Wall and CPU time of one read (CPU moves less on a shared machine)."""
    started, cpu = time.perf_counter(), time.process_time()
    read(path)
    return time.perf_counter() - started, time.process_time() - cpu


# Runs in the reference checkout's own process: times one read per request.
REFERENCE_WORKER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from forecaster import read_prices
from forecaster.data.csv import read_price_csv
from forecaster.data.panel import read_long_csv
from forecaster.data.tables import read_price_file, read_series_csv
from forecaster import read_prices
readers = {f.__name__: f for f in (read_price_csv, read_price_file,
                                   read_series_csv, read_long_csv, read_prices)}
for line in sys.stdin:
    name, path = line.rstrip("\\n").split("\\t")
    started, cpu = time.perf_counter(), time.process_time()
    readers[name](path)
    print(time.perf_counter() - started, time.process_time() - cpu, flush=True)
"""


class Reference:
    """Another checkout's readers, timed in their own process when asked."""

    def __init__(self, root: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", REFERENCE_WORKER, str(root.resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )

    def timer(self, name: str):
        def timed(path: Path) -> tuple[float, float]:
            self.process.stdin.write(f"{name}\t{path}\n")
            self.process.stdin.flush()
            wall, cpu = self.process.stdout.readline().split()
            return float(wall), float(cpu)

        return timed

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def timers(readers: dict, reference: Reference | None) -> dict:
    """{label: path -> (wall s, CPU s)}: each reader here, then the reference's."""
    timed = {name: functools.partial(seconds, read) for name, read in readers.items()}
    if reference is not None:
        for name in readers:
            if name != "pandas.read_csv":
                timed[f"{name} (reference)"] = reference.timer(name)
    return timed


def compare(path: Path, readers: dict, rounds: int) -> None:
    """Time each reader on `path`, alternating; print medians, ratios, rows/s."""
    rows = sum(1 for _ in path.open()) - 1
    times: dict[str, list[float]] = {name: [] for name in readers}
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    load_before = os.getloadavg()
    for _ in range(rounds):
        for name, timed in readers.items():
            wall, used = timed(path)
            times[name].append(wall)
            cpu[name].append(used)
    load_after = os.getloadavg()
    reference = statistics.median(times["pandas.read_csv"])
    cpu_reference = statistics.median(cpu["pandas.read_csv"])
    print(
        f"\n{path.name}: {rows:,} rows, median of {rounds} alternating rounds; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        "| reader | median s | vs pandas.read_csv | rows/s | CPU s | CPU vs pandas "
        "| rows per CPU s |\n|---|---|---|---|---|---|---|"
    )
    for name, measured in times.items():
        median, used = statistics.median(measured), statistics.median(cpu[name])
        print(
            f"| {name} | {median:.3f} | {median / reference:.2f}x | "
            f"{rows / median:,.0f} | {used:.3f} | {used / cpu_reference:.2f}x | "
            f"{rows / used:,.0f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--single", action="store_true", help="the one-series file only")
    p.add_argument(
        "--reference", type=Path, help="another checkout, timed side by side"
    )
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    reference = None if args.reference is None else Reference(args.reference)
    if not args.single:
        readers = {"pandas.read_csv": pd.read_csv, "read_long_csv": read_long_csv}
        compare(long_file(), timers(readers, reference), args.rounds)
    readers = {
        "pandas.read_csv": pd.read_csv,
        "read_price_csv": read_price_csv,
        "read_price_file": read_price_file,
        "read_prices": read_prices,
        "read_series_csv": read_series_csv,
    }
    compare(single_file(), timers(readers, reference), args.rounds + 2)
    if reference is not None:
        reference.close()


if __name__ == "__main__":
    main()
