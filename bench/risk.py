"""Risk benchmark: the default model's one-step distribution against the best anchor.

Trains `Settings()` defaults, as `python train.py --csv data/<T>.csv` does, on
AAPL, GOOG and MSFT (data/) and on a close-only copy of AAPL (High, Low and
Open removed: the range anchors are left out), then prints per run, side by
side from the same test days: the model's ratio to the BEST anchor on CRPS,
IS80 and IS95 (below 1: the model is better), coverage of its 80% and 95%
intervals, its VaR backtest p-values at 1% and 5% (Kupiec, Christoffersen),
and whether it is in the 90% model confidence set. The issue's target: every
ratio <= 0.99 (close-only <= 1.00), coverage within 3 points, no VaR
backtest rejected at 5%, in the MCS.

python -m bench.risk                       # 3 tickers + close-only AAPL (long)
python -m bench.risk --tickers AAPL --epochs 2 --no-close-only   # smoke test
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from forecaster.config import DataSettings, Settings  # noqa: E402

TICKERS = ("AAPL", "GOOG", "MSFT")
OUT = Path("bench/out")
RATIOS = (
    ("CRPS", "crps"),
    ("IS80", "interval_score_0.8"),
    ("IS95", "interval_score_0.95"),
)
MULTI_LOSSES = ("qcrps", "interval_score_0.8", "interval_score_0.95")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickers", nargs="+", choices=TICKERS, default=list(TICKERS))
    p.add_argument("--epochs", type=int, help="override the default epochs (smoke)")
    p.add_argument(
        "--no-close-only", action="store_true", help="skip the close-only run"
    )
    p.add_argument("--out", type=Path, default=OUT / "risk.json")
    return p.parse_args(argv)


def run(ticker: str, close_only: bool, epochs) -> dict:
    """Train the default on data/<ticker>.csv; its distribution's record."""
    from forecaster.api import Forecaster
    from forecaster.data import load_prices
    from forecaster.data.series import Panel

    series = load_prices(DataSettings(csv=f"data/{ticker}.csv"))
    if close_only:
        series = replace(series, ohlcv=None)
    settings = Settings()
    settings.train.verbose = 0
    if epochs is not None:
        settings.train.epochs = epochs
    started = time.perf_counter()
    model = Forecaster.from_settings(settings).fit(Panel([series], []))
    metrics = model.metrics_
    if "series" in metrics:  # a Panel object reads as a panel (of one)
        metrics = next(iter(metrics["series"].values()))
    return {
        "run": ticker + (" close-only" if close_only else ""),
        "seconds": time.perf_counter() - started,
        "test_days": metrics["test_days"],
        "distribution": metrics["distribution"],
        "multi_step": metrics.get("multi_step"),
    }


def row(record: dict) -> str:
    """One printed row: ratios to the best anchor, coverage, VaR p-values, MCS."""
    result = record["distribution"]
    tests, main = result["anchors"], result["methods"][result["main"]]
    cells = [f"{record['run']:<16}"]
    for _, loss in RATIOS:
        ratio = tests["ratio_to_best"].get(loss)
        cells.append(f"{ratio:>7.3f}" if ratio is not None else f"{'n/a':>7}")
    cells += [f"{main['coverage_0.8']:>7.3f}", f"{main['coverage_0.95']:>7.3f}"]
    var = tests["var"].get(result["main"])
    for level in ("0.01", "0.05"):
        if var is None:
            cells.append(f"{'n/a':>13}")
            continue
        one = var[level]
        cells.append(
            f"{one['kupiec']['p_value']:>7.2f}{one['christoffersen']['p_value']:>6.2f}"
        )
    mcs = tests.get("mcs") or {}
    cells.append(f"{'in' if mcs.get('main_included') else 'out':>5}")
    best = ", ".join(
        sorted({result["methods"][k]["label"] for k in tests["best"].values()})
    )
    return "".join(cells) + f"  {best}"


def table(records: list[dict]) -> str:
    header = (
        f"{'run':<16}"
        + "".join(f"{label:>7}" for label, _ in RATIOS)
        + f"{'cov80':>7}{'cov95':>7}{'VaR1% pUC pInd':>15}{'VaR5% pUC pInd':>15}"
        + f"{'MCS':>5}  best anchors"
    )
    lines = [
        "the default's one-step distribution / the best anchor on the same test days "
        "(below 1: ours is better)",
        header,
    ]
    return "\n".join(lines + [row(r) for r in records])


def multi_step_table(records: list[dict]) -> str:
    """The main method's 5- and 10-day qCRPS / IS80 / IS95 over each GARCH-family
    anchor's (below 1: ours is better), with the main method's coverage."""
    lines = [
        "5- and 10-day cumulative log return: the default / each anchor "
        "(qCRPS / IS80 / IS95; cov80 / cov95 of the default)"
    ]
    for record in records:
        result = record.get("multi_step")
        if not result:
            lines.append(f"{record['run']}: no multi-step fan")
            continue
        main = result["methods"][result["main"]]
        for h in map(str, result["horizons"]):
            cells = [f"{record['run']:<16} {h:>2}d"]
            for key, by_h in result["ratio_to_anchor"].items():
                ratio = " / ".join(f"{by_h[h][loss]:.3f}" for loss in MULTI_LOSSES)
                cells.append(f"{result['methods'][key]['label']} {ratio}")
            cover = f"{main[h]['coverage_0.8']:.3f} / {main[h]['coverage_0.95']:.3f}"
            lines.append("  ".join(cells) + f"  cov {cover}")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    plan = [(t, False) for t in args.tickers]
    if not args.no_close_only:
        plan.append((args.tickers[0], True))
    records = []
    for ticker, close_only in plan:
        records.append(run(ticker, close_only, args.epochs))
        print(f"{records[-1]['run']}: {records[-1]['seconds']:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=1, allow_nan=False))
    print(table(records))
    print(multi_step_table(records))
    print(f"(records: {args.out})")


if __name__ == "__main__":
    main()
