"""Forecast the next trading days with a saved bundle; write forecast.csv and .png.

python predict.py                                  # the default bundle, 30 days
python predict.py --model models/MSFT-gru --days 10
python predict.py --model models/AAPL-lstm --csv new_prices.csv   # reuse on new data
"""

from __future__ import annotations

import argparse
import sys

from forecaster import cli
from forecaster.config import DataSettings
from forecaster.forecast import DEFAULT_BUNDLE, METHODS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        default=DEFAULT_BUNDLE,
        help=f"bundle directory (default: {DEFAULT_BUNDLE})",
    )
    p.add_argument("--days", type=int, default=30, help="trading days to forecast")
    p.add_argument(
        "--method",
        choices=METHODS,
        help="recursive one-step loop or direct multi-step (default: the "
        "bundle's: direct when trained with --horizon > 1)",
    )
    p.add_argument(
        "--horizon",
        type=int,
        help="steps kept per model call with --method direct (at most the "
        "bundle's horizon)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "numpy", "keras"),
        default="auto",
        help="numpy: no TensorFlow import (default when supported)",
    )
    p.add_argument(
        "--csv", help="forecast from this CSV instead of the bundle's source"
    )
    p.add_argument("--ticker", help="forecast from this symbol's latest prices instead")
    p.add_argument("--column", help="price column of --csv")
    cli.add_decimal_flag(p)
    p.add_argument("--out", help="directory for forecast.csv/png (default: the bundle)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from forecaster.forecast import run_forecast

    data = DataSettings(
        csv=args.csv, ticker=args.ticker, column=args.column, decimal=args.decimal
    )
    report = run_forecast(
        args.model, args.days, args.method, args.horizon, args.engine, data, args.out
    )
    shown = report.frame.head(5).to_string(
        index=False, float_format=lambda v: f"{v:.2f}"
    )
    print(
        f"{args.days}-day {report.method} forecast after {report.last_date} "
        f"({report.engine} engine):\n{shown}\n..."
    )
    print(f"wrote {report.csv}\nwrote {report.png}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
