"""Direction benchmark: the up/down classifier and a P(up) beside the base rate.

On each sample ticker (full series, Adj Close, the default split) two models
are trained through the Python API: the direction classifier
(`objective="direction"`: sigmoid output, binary cross-entropy) and the
default Student-t model, whose P(up) is its distribution's mass above the
last price. Both are scored on the test days that moved, as train.py scores
them (forecaster.evaluate.direction): Brier score and log loss beside the base rate
("up with the training part's frequency"), the DM test and a moving-block
bootstrap interval of the Brier difference, accuracy beside "always up".

python -m bench.direction            # AAPL, GOOG, MSFT (a few minutes)
python -m bench.direction --quick    # 2 epochs, AAPL only
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TICKERS = ("AAPL", "GOOG", "MSFT")
OUT = Path("bench/out")
KEYS = (
    *("days", "base_rate", "brier", "brier_base_rate", "brier_ratio", "dm_p_value"),
    *("brier_difference_lower", "brier_difference_upper", "log_loss_ratio"),
    *("accuracy", "accuracy_always_up"),
)


def scores_of(ticker: str, objective: str, epochs: int | None) -> dict:
    """Train one model on data/<ticker>.csv; the direction scores of its P(up)."""
    import forecaster as fc

    keywords = {"objective": objective, "verbose": 0}
    if epochs is not None:
        keywords["epochs"] = epochs
    prices = fc.read_prices(f"data/{ticker}.csv", column="Adj Close")
    metrics = fc.Forecaster(**keywords).fit(prices).metrics_
    if objective == "direction":
        return metrics["direction"]
    return metrics["distribution"]["direction"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 epochs, AAPL only")
    args = p.parse_args(argv)
    tickers = TICKERS[:1] if args.quick else TICKERS
    rows = []
    for ticker in tickers:
        for objective, label in (("direction", "classifier"), ("price", "P(up) of t")):
            found = scores_of(ticker, objective, 2 if args.quick else None)
            rows.append(
                {"ticker": ticker, "model": label, **{k: found[k] for k in KEYS}}
            )
            print(_line(rows[-1]), flush=True)
    out = OUT / f"direction{'-quick' if args.quick else ''}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    print("(Brier ratio: model / base rate, below 1 is better; interval: 95%")
    print(" moving-block bootstrap of the mean Brier difference, model - base rate)")
    return 0


def _line(row: dict) -> str:
    return (
        f"{row['ticker']:<5} {row['model']:<11} Brier {row['brier']:.4f} vs "
        f"{row['brier_base_rate']:.4f} (ratio {row['brier_ratio']:.4f}, DM p "
        f"{row['dm_p_value']:.2f}, diff [{row['brier_difference_lower']:+.4f}, "
        f"{row['brier_difference_upper']:+.4f}])  accuracy {row['accuracy']:.3f} vs "
        f"always up {row['accuracy_always_up']:.3f}  ({row['days']} days)"
    )


if __name__ == "__main__":
    sys.exit(main())
