"""A search on one sample ticker: wall time, best validation score beside the default.

Runs `forecaster.distributed.tune.run_search` with the default search space on
data/AAPL.csv (Adj Close) on an embedded Ray runtime. The base configuration
(`Settings()` defaults) is always the first trial, so its validation score
is measured in the same run as the best one's. Only the best configuration
is scored on the test part, beside naive.

python -m bench.tune               # 20 trials, at most 50 epochs each
python -m bench.tune --quick       # smoke test: 2 trials, 2 epochs, last 600 rows
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", default="data/AAPL.csv")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=50, help="most epochs per trial")
    p.add_argument("--rows", type=int, help="use only the last ROWS prices")
    p.add_argument("--max-concurrent", type=int, help="trials at once")
    p.add_argument("--quick", action="store_true", help="2 trials, 2 epochs, 600 rows")
    args = p.parse_args(argv)
    if args.quick:
        args.trials, args.epochs, args.rows = 2, 2, 600
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from forecaster.api import settings_from_keywords
    from forecaster.data import read_price_csv
    from forecaster.distributed.runtime import start_ray, stop_ray
    from forecaster.distributed.tune import run_search

    prices = read_price_csv(args.csv)
    if args.rows:
        prices.values = prices.values.iloc[-args.rows :]
    settings = settings_from_keywords(epochs=args.epochs, verbose=0)
    name = "tune-quick" if args.quick else "tune"
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    where = start_ray()
    started = time.perf_counter()
    report = run_search(
        prices, settings, out, trials=args.trials, max_concurrent=args.max_concurrent
    )
    wall = time.perf_counter() - started
    stop_ray()
    summary = {
        "csv": args.csv,
        "rows": len(prices.values),
        "trials": args.trials,
        "epochs_cap": args.epochs,
        "runtime": where,
        "wall_s": round(wall, 1),
        "best_val_score": report.best_score,
        "default_val_score": report.default_score,
        "best": report.best,
        "test_rmse": report.metrics["model"]["rmse"],
        "test_naive_rmse": report.metrics["naive"]["rmse"],
        "trials_csv": str(out / "trials.csv"),
    }
    (OUT / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
