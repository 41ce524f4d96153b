"""Distributions benchmark: the model's one-step distribution beside GARCH-t and co.

On each sample ticker (full series, Adj Close, the default split: train 75%,
the test days train.py scores) a model is trained through the Python API
with train.py's defaults (or the loss and features named) and scored by
forecaster.evaluate.comparison exactly as train.py prints it: coverage, width and
interval score at 80% and 95%, CRPS, log score, beside a random walk with
20-day and with EWMA volatility, GARCH(1,1)-t (fitted on the training part
only) and the split-conformal bands, with Diebold-Mariano p-values of the
model against GARCH-t.

python -m bench.distributions                          # the default, 3 tickers
python -m bench.distributions --features close,range,volume
python -m bench.distributions --losses student-t normal quantile mse
python -m bench.distributions --quick                  # 2 epochs, AAPL only
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from forecaster.config import Settings  # noqa: E402
from forecaster.model.heads import DEFAULT_LOSS  # noqa: E402

log = logging.getLogger("bench")

TICKERS = ("AAPL", "GOOG", "MSFT")
OUT = Path("bench/out")
KEYS = ("crps", "crps_quantiles", "interval_score_0.8", "interval_score_0.95")
KEYS += ("coverage_0.8", "coverage_0.95", "width_0.8", "width_0.95", "log_score")
TESTS = {  # column suffix -> key in the distribution's tests
    "crps": "model_vs_garch_crps",
    "is80": "model_vs_garch_interval_score_0.8",
    "is95": "model_vs_garch_interval_score_0.95",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 epochs, AAPL only")
    p.add_argument("--tickers", nargs="+", choices=TICKERS, default=list(TICKERS))
    p.add_argument(
        "--losses", nargs="+", default=[Settings().model.loss], help="heads to train"
    )
    p.add_argument("--features", default="close", help="inputs per day (--features)")
    p.add_argument("--seed", type=int, default=Settings().train.seed)
    p.add_argument("--out", type=Path, help="CSV (default bench/out/distributions…)")
    args = p.parse_args(argv)
    if args.quick:
        args.tickers = args.tickers[:1]
    tag = "" if args.features == "close" else "-" + args.features.replace(",", "-")
    if args.losses != [Settings().model.loss]:
        tag += "-" + "-".join(str(loss) for loss in args.losses)
    args.out = (
        args.out or OUT / f"distributions{tag}{'-quick' if args.quick else ''}.csv"
    )
    return args


def run_one(ticker: str, loss: str, features: str, seed: int, quick: bool) -> dict:
    """Train one model on data/<ticker>.csv; its distribution scores, as train.py's."""
    import forecaster as fc

    keywords = {"loss": loss, "features": features, "seed": seed, "verbose": 0}
    if quick:
        keywords["epochs"] = 2
    if loss == "mse":  # the point model keeps its own best representation
        keywords["representation"] = "delta"
    path = f"data/{ticker}.csv"
    started = time.perf_counter()
    if features == "close":
        model = fc.Forecaster(**keywords).fit(fc.read_prices(path, column="Adj Close"))
    else:  # the OHLCV frame: range and volume come from its other columns
        frame = pd.read_csv(path, parse_dates=["Date"], index_col="Date")
        model = fc.Forecaster(**keywords).fit(frame, column="Adj Close")
    metrics = model.metrics_
    if "series" in metrics:  # input features make a panel of one
        metrics = next(iter(metrics["series"].values()))
    return _row(ticker, loss, features, metrics, time.perf_counter() - started)


def _row(ticker, loss, features, metrics, seconds) -> dict:
    distribution = metrics["distribution"]
    main = distribution["methods"][distribution["main"]]
    garch = distribution["methods"]["garch_t"]
    row = {"ticker": ticker, "loss": loss or f"{DEFAULT_LOSS}*", "features": features}
    row.update({"test_days": metrics["test_days"], "seconds": round(seconds, 1)})
    row["rmse_ratio_to_naive"] = metrics["rmse_ratio_to_naive"]
    for key in KEYS:
        row[f"model_{key}"], row[f"garch_{key}"] = main[key], garch[key]
    for name, key in TESTS.items():
        test = distribution["tests"][key]
        row[f"ratio_{name}"], row[f"p_{name}"] = test["ratio"], test["p_value"]
    cqr = distribution["methods"].get("model_cqr")
    for key in ("coverage_0.8", "coverage_0.95", "interval_score_0.8"):
        row[f"cqr_{key}"] = cqr[key] if cqr else None
    row["cqr_interval_score_0.95"] = cqr["interval_score_0.95"] if cqr else None
    for key in ("rw20", "ewma", "conformal"):
        row[f"{key}_crps_quantiles"] = distribution["methods"][key]["crps_quantiles"]
    row["model_direction_brier_ratio"] = (distribution.get("direction") or {}).get(
        "brier_ratio"
    )
    return row


def format_row(row: dict) -> str:
    """One line: the ratios to GARCH-t with their DM p-values, and coverage."""
    cells = [f"{row['ticker']:<5} {row['loss']:<9} {row['features']:<18}"]
    for name in TESTS:
        cells.append(f"{name} {row[f'ratio_{name}']:.3f} (p {row[f'p_{name}']:.2f})")
    cells.append(
        f"cov80 {row['model_coverage_0.8']:.3f}/{row['garch_coverage_0.8']:.3f} "
        f"cov95 {row['model_coverage_0.95']:.3f}/{row['garch_coverage_0.95']:.3f}"
    )
    cells.append(f"RMSE/naive {row['rmse_ratio_to_naive']:.4f}")
    return "  ".join(cells)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s"
    )
    rows = []
    print(
        "ticker loss      features            model/GARCH-t ratio (DM p)  "
        "coverage model/GARCH-t",
        flush=True,
    )
    for ticker in args.tickers:
        for loss in args.losses:
            row = run_one(ticker, loss, args.features, args.seed, args.quick)
            rows.append(row)
            print(format_row(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
    print("(* = the default head; ratios below 1: the model scores better; CRPS is")
    print(" closed form for normal and t heads, quantile-based for quantile heads")
    print(" and bands)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
