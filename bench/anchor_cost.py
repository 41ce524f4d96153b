"""What the anchors cost one series of a panel: CPU seconds of each part of a run.

A run (train.py, a panel's every series, a backtest's every fold) scores
the anchors of forecaster.evaluate.baselines on each series: the fixed ones
and the refitted best ("best, refit/20d", one fit per 20 test days), the
pool's candidates on the validation slice (forecaster.evaluate.combination)
and the 5- and 10-day fans (forecaster.evaluate.multistep). This times
those parts, with no network, on a small panel: the sample tickers with
their High/Low and the same three close-only (the refit row is then an
`arch` family). The fit cache is emptied between series, as a new series
would find it. CPU time (user + sys of this process), one BLAS thread.

python -m bench.anchor_cost --rounds 3                       # this checkout
cd OTHER && PYTHONPATH=. python /path/to/bench/anchor_cost.py  # another one
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from threadpoolctl import threadpool_limits

from forecaster.config import DataSettings, PrepSettings
from forecaster.data import load_prices
from forecaster.evaluate import anchors, baselines, combination, multistep
from forecaster.prep.panel import series_ohlc
from forecaster.prep.windows import prepare

TICKERS = ("AAPL", "GOOG", "MSFT")
PARTS = ("fixed", "refit", "validation", "multi_step")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1, help="passes over the panel")
    p.add_argument("--data", type=Path, default=Path("data"), help="the CSVs' folder")
    p.add_argument("--out", type=Path, help="write the record here (JSON)")
    return p.parse_args(argv)


def panel(data: Path) -> list:
    """(name, prepared) for the sample tickers, with and without High/Low."""
    found = []
    for ticker in TICKERS:
        series = load_prices(DataSettings(csv=str(data / f"{ticker}.csv")))
        prepared = prepare(series.values, PrepSettings())
        ohlc = series_ohlc(series, series.values.index)
        found.append((ticker, replace(prepared, ohlc=ohlc)))
        found.append((f"{ticker} close-only", prepared))
    return found


def cost(prepared) -> dict:
    """CPU seconds of each part of the anchors' work on one series."""
    forget = getattr(anchors, "forget_fits", None)  # an older checkout has none
    forget() if forget else anchors._FITS.clear()  # nothing of another series'
    split = prepared.split
    days = baselines.TestDays(prepared.prices, split.n_train, ohlc=prepared.ohlc)
    seconds, found = {}, {}
    start = time.process_time()
    for key, entry in baselines.REGISTRY.items():
        if key in ("conformal", "best_refit"):  # the model's bands; timed below
            continue
        found[key] = entry.make(days)
    seconds["fixed"] = time.process_time() - start
    start = time.process_time()
    found["best_refit"] = baselines.distribution("best_refit", days)
    seconds["refit"] = time.process_time() - start
    start = time.process_time()
    validation = combination.validation_days(days, prepared.split.val_targets[0])
    for key in combination.ANCHORS:
        baselines.distribution(key, validation)
    seconds["validation"] = time.process_time() - start
    start = time.process_time()
    at = multistep.origins(days.n_train, len(days.prices), max(multistep.HORIZONS))
    for family in multistep.FAMILIES:
        if found.get(family) is None:
            continue
        state = multistep.anchor_state(family, days.prices, days.n_train, days.ohlc, at)
        multistep.anchor_quantiles(state)
    seconds["multi_step"] = time.process_time() - start
    return seconds


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    series = panel(args.data)
    cost(series[0][1])  # imports (arch, scipy) and first calls: not counted
    rows = {name: dict.fromkeys(PARTS, 0.0) for name, _ in series}
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.rounds):
            for name, prepared in series:
                for part, value in cost(prepared).items():
                    rows[name][part] += value / args.rounds
    print(f"{'series':<18}" + "".join(f"{p:>11}" for p in PARTS) + f"{'total':>9}")
    for name, row in rows.items():
        cells = "".join(f"{row[p]:>11.3f}" for p in PARTS)
        print(f"{name:<18}{cells}{sum(row.values()):>9.3f}")
    total = sum(sum(row.values()) for row in rows.values())
    print(f"all {len(rows)} series: {total:.2f} CPU s (mean of {args.rounds} rounds)")
    if args.out:
        args.out.write_text(json.dumps({"rounds": args.rounds, "series": rows}))


if __name__ == "__main__":
    main()
