"""Distributions benchmark: the model's conformal bands beside RW, EWMA and GARCH-t.

On each sample ticker (full series, Adj Close, `Settings()` defaults: train
75%, the test days train.py scores) the default model is trained with
`pipeline.run_training` into a temporary bundle; its one-step predictions and
split-conformal bands (test_predictions.csv, intervals.json) are scored on
the test days beside three baselines fitted on the training part only
(forecaster.baselines): coverage, width and interval score at 80% and 95%,
CRPS, log score, and the Diebold-Mariano test of bands vs GARCH.

python -m bench.distributions            # AAPL, GOOG, MSFT (a few minutes)
python -m bench.distributions --quick    # smoke test: 2 epochs, AAPL only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from forecaster import baselines, scores  # noqa: E402
from forecaster.config import Settings  # noqa: E402
from forecaster.significance import diebold_mariano, verdict  # noqa: E402

log = logging.getLogger("bench")

TICKERS = ("AAPL", "GOOG", "MSFT")
LEVELS = (0.8, 0.95)
OUT = Path("bench/out")
COLUMNS = [  # (label, key, format) of the printed table
    ("cov80", "coverage_0.8", "{:.3f}"),
    ("width80", "width_0.8", "{:.3f}"),
    ("IS80", "interval_score_0.8", "{:.3f}"),
    ("cov95", "coverage_0.95", "{:.3f}"),
    ("width95", "width_0.95", "{:.3f}"),
    ("IS95", "interval_score_0.95", "{:.3f}"),
    ("qCRPS", "crps_quantiles", "{:.4f}"),
    ("CRPS", "crps", "{:.4f}"),
    ("logS", "log_score", "{:.3f}"),
]
RATIOS = {
    key for _, key, _ in COLUMNS if key.startswith(("width", "interval", "crps_q"))
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 epochs, AAPL only")
    p.add_argument("--tickers", nargs="+", choices=TICKERS, default=list(TICKERS))
    p.add_argument(
        "--seed", type=int, default=Settings().train.seed, help="training seed"
    )
    p.add_argument("--out", type=Path, help="CSV (default bench/out/distributions.csv)")
    args = p.parse_args(argv)
    if args.quick:
        args.tickers = args.tickers[:1]
    suffix = ("-quick" if args.quick else "") + (
        f"-seed{args.seed}" if args.seed != Settings().train.seed else ""
    )
    args.out = args.out or OUT / f"distributions{suffix}.csv"
    return args


def train_bundle(ticker: str, bundle: Path, epochs: int | None, seed: int) -> Settings:
    """Train the default model on data/<ticker>.csv into `bundle`; its settings."""
    from forecaster.pipeline import run_training

    settings = Settings()
    settings.data.csv, settings.data.column = f"data/{ticker}.csv", "Adj Close"
    settings.train.verbose, settings.train.seed = 0, seed
    if epochs is not None:
        settings.train.epochs = epochs
    run_training(settings.validate(), out=bundle)
    return settings


def distributions(ticker: str, epochs: int | None, seed: int):
    """The four predictive distributions of the test days, their prices, their span."""
    from forecaster.data import read_price_csv
    from forecaster.windows import prepare

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        settings = train_bundle(ticker, bundle, epochs, seed)
        predictions = pd.read_csv(bundle / "test_predictions.csv")
        intervals = json.loads((bundle / "intervals.json").read_text())["recursive"]
    values = read_price_csv(settings.data.csv, column=settings.data.column).values
    prepared = prepare(values, settings.prep)
    prices, n_train = prepared.prices, prepared.split.n_train
    test_dates = prepared.dates[n_train:].strftime("%Y-%m-%d")
    if list(test_dates) != list(predictions["date"]):
        raise RuntimeError(f"{ticker}: the bundle's test days are not the split's")
    window = settings.prep.window
    found = {
        "conformal": baselines.conformal_bands(
            predictions["predicted"].to_numpy(), prices, n_train, window, intervals
        ),
        "rw20": baselines.rolling_normal(prices, n_train),
        "ewma": baselines.ewma_normal(prices, n_train),
        "garch_t": baselines.garch_t(prices, n_train),
    }
    period = {"seed": seed, "test_days": len(test_dates), "first": test_dates[0]}
    period["last"] = test_dates[-1]
    return found, prices[n_train:], period


def compare(ticker: str, found: dict, actual: np.ndarray, period: dict) -> list[dict]:
    """One row per method: mean scores, plus DM of conformal vs GARCH-t."""
    rows = []
    for key, predictive in found.items():
        row = {"ticker": ticker, "method": key, "name": predictive.name, **period}
        row.update(scores.score_predictive(predictive, actual, LEVELS))
        if hasattr(predictive, "cdf"):
            pit = scores.pit_histogram(predictive.cdf(actual))
            row["pit_counts"] = " ".join(str(c) for c in pit)
        if key == "garch_t":
            row["garch_params"] = json.dumps(
                {k: round(v, 4) for k, v in predictive.params.items()}
            )
        rows.append(row)
    rows[0].update(dm_against(found["conformal"], found["garch_t"], actual))
    return rows


def dm_against(bands, garch, actual: np.ndarray) -> dict:
    """DM p-values and verdicts of bands vs GARCH on per-day losses."""
    out = {}
    for level in LEVELS:
        losses = [
            scores.interval_score(actual, *d.interval(level), level)
            for d in (bands, garch)
        ]
        result = diebold_mariano(*losses)
        out[f"dm_p_is{level:g}"] = result.p_value
        out[f"dm_verdict_is{level:g}"] = verdict(result, "conformal", "GARCH-t")
    grid = scores.quantile_levels(LEVELS)
    losses = [
        scores.crps_quantiles(actual, np.stack([d.quantile(t) for t in grid], 1), grid)
        for d in (bands, garch)
    ]
    result = diebold_mariano(*losses)
    out["dm_p_qcrps"] = result.p_value
    out["dm_verdict_qcrps"] = verdict(result, "conformal", "GARCH-t")
    return out


def format_table(rows: list[dict]) -> str:
    """Scores of one ticker's methods, with the bands / GARCH ratio and DM lines."""
    first = rows[0]
    lines = [
        f"{first['ticker']}: {first['test_days']} test days, "
        f"{first['first']} to {first['last']}",
        f"{'method':<10}" + "".join(f"{label:>9}" for label, _, _ in COLUMNS),
    ]
    for row in rows:
        cells = "".join(f"{_cell(row[key], fmt):>9}" for _, key, fmt in COLUMNS)
        lines.append(f"{row['method']:<10}{cells}")
    garch = next(r for r in rows if r["method"] == "garch_t")
    ratios = "".join(
        f"{_cell(first[key] / garch[key], '{:.3f}'):>9}" if key in RATIOS else " " * 9
        for _, key, _ in COLUMNS
    )
    lines.append(f"{'conf/GARCH':<10}{ratios}")
    for key in ("is0.8", "is0.95", "qcrps"):
        lines.append(f"  DM on {key}: {first[f'dm_verdict_{key}']}")
    return "\n".join(lines)


def _cell(value: float, fmt: str) -> str:
    return "n/a" if np.isnan(value) else fmt.format(value)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s"
    )
    epochs = 2 if args.quick else None
    all_rows = []
    for ticker in args.tickers:
        started = time.perf_counter()
        found, actual, period = distributions(ticker, epochs, args.seed)
        rows = compare(ticker, found, actual, period)
        log.info("%s done in %.0f s", ticker, time.perf_counter() - started)
        print(format_table(rows), flush=True)
        print(flush=True)
        all_rows.extend(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(all_rows).to_csv(args.out, index=False)
    print("(width and interval score in dollars; CRPS for the bands is n/a;")
    print(" qCRPS = 2 x mean pinball loss at 0.025, 0.1, 0.5, 0.9, 0.975 for all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
