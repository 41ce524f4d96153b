"""Risk variants of the network, side by side: validation scores first, then test.

For one ticker at a time (data/<T>.csv), trains the default model under each
variant asked for and prints, from the same days, its one-step distribution's
ratio to the BEST anchor on qCRPS, IS80 and IS95:
- on the validation slice (the anchors fitted on the days before it): the
  figures a choice may be made on;
- on the test days (the anchors fitted on the whole training part): the
  figures it is judged by, with the pool with an anchor (chosen on
  validation, as every run does), coverage, VaR backtests and the 90% MCS.

Variants:
- "gain1": the t head's df weight with a gain of 1 (main before this change:
  the df stays at 6.0);
- "gain20": the df that trains (model.heads.DF_GAIN = 20, the default now);
- "ens": an equal mixture of `--seeds` models of the last gain listed (seeds
  42, 43, ...; the first is that gain's own model), pooled on a quantile grid.

python -m bench.risk_variants --ticker AAPL --gains 1 20 --seeds 3
python -m bench.risk_variants --ticker GOOG --gains 20 --epochs 3   # screen
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from forecaster.config import DataSettings, Settings  # noqa: E402

OUT = Path("bench/out")
LOSSES = (
    ("qCRPS", "crps_quantiles"),
    ("IS80", "interval_score_0.8"),
    ("IS95", "interval_score_0.95"),
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticker", default="AAPL", choices=("AAPL", "GOOG", "MSFT"))
    p.add_argument("--gains", nargs="+", type=float, default=[1.0, 20.0])
    p.add_argument("--seeds", type=int, default=1, help="ensemble size (1: none)")
    p.add_argument("--epochs", type=int, help="override the default epochs (screen)")
    p.add_argument("--close-only", action="store_true", help="drop Open/High/Low")
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--cache",
        type=Path,
        help="keep each trained model's distributions here and reuse them, so "
        "models can be trained one per invocation (one lock hold each)",
    )
    p.add_argument(
        "--train-only",
        type=int,
        metavar="SEED",
        help="with --cache: train the first gain's model with this seed, and stop",
    )
    return p.parse_args(argv)


def member(ticker: str, gain: float, seed: int, args) -> tuple:
    """(prepared, validation and test distributions, seconds) of one model."""
    name = f"{ticker}{'-close' if args.close_only else ''}-g{gain:g}-s{seed}"
    path = args.cache / f"{name}-e{args.epochs}.pkl" if args.cache else None
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    prepared, engine, seconds = train(ticker, gain, seed, args)
    found = (prepared, *distributions(prepared, engine), seconds)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(found))
    return found


def train(ticker: str, gain: float, seed: int, args) -> tuple:
    """A default model on data/<ticker>.csv: (prepared part, engine, seconds)."""
    from forecaster.api import Forecaster
    from forecaster.data import load_prices
    from forecaster.data.series import Panel
    from forecaster.model import keras_heads

    series = load_prices(DataSettings(csv=f"data/{ticker}.csv"))
    if args.close_only:
        series = replace(series, ohlcv=None)
    settings = Settings()
    settings.train.verbose, settings.train.seed = 0, seed
    if args.epochs is not None:
        settings.train.epochs = args.epochs
    keras_heads.DF_GAIN = gain  # read when the head layer is built
    started = time.perf_counter()
    model = Forecaster.from_settings(settings).fit(Panel([series], []))
    prepared = next(iter(model.panel_.parts.values()))
    return prepared, model.get_engine("keras"), time.perf_counter() - started


def distributions(prepared, engine) -> tuple:
    """The model's one-step distributions on the validation slice and test days."""
    from forecaster.evaluate.comparison import head_distribution, model_distribution

    split = prepared.split
    val = head_distribution(engine, prepared, (split.val_targets[0], split.n_train))
    return val, model_distribution(engine, prepared)


def anchors_of(prepared) -> dict:
    """The anchors on the test days and on validation (fitted on the days before)."""
    from forecaster.evaluate import baselines, combination

    split = prepared.split
    days = baselines.TestDays(
        prepared.prices, split.n_train, None, split.window, None, prepared.ohlc
    )
    val_start = split.val_targets[0]
    val_days = combination.validation_days(days, val_start)

    def fitted(on):  # every baseline but the model's own conformal bands
        keys = [k for k in baselines.REGISTRY if k != "conformal"]
        found = {k: baselines.distribution(k, on) for k in keys}
        return {k: d for k, d in found.items() if d is not None}

    return {
        "days": days,
        "val_start": val_start,
        "test": fitted(days),
        "val": fitted(val_days),
    }


def mixture(parts: list, name: str = "ensemble"):
    """An equal mixture of distributions with a cdf, as quantiles on the pool's grid.

    Each level's quantile lies between the parts' quantiles at that level, so
    bisection between them converges; 40 halvings leave < 1e-9 of the bracket.
    """
    from forecaster.evaluate.combination import GRID
    from forecaster.evaluate.predictive import QuantileSet

    values = []
    for level in GRID:
        ends = np.stack([part.quantile(level) for part in parts])
        low, high = ends.min(axis=0), ends.max(axis=0)
        for _ in range(40):
            mid = 0.5 * (low + high)
            below = np.mean([part.cdf(mid) for part in parts], axis=0) < level
            low, high = np.where(below, mid, low), np.where(below, high, mid)
        values.append(0.5 * (low + high))
    return QuantileSet(name, np.stack(values, axis=1), GRID)


def ratios(model, anchors: dict, actual) -> dict:
    """The model's score / the best anchor's, per loss; and the best anchor's key."""
    from forecaster.evaluate import scores

    def score(d):
        return scores.score_predictive(d, actual, (0.8, 0.95))

    ours = score(model)
    theirs = {key: score(d) for key, d in anchors.items() if key != "conformal"}
    result = {
        "coverage_0.8": ours["coverage_0.8"],
        "coverage_0.95": ours["coverage_0.95"],
    }
    for label, loss in LOSSES:
        best = min(theirs, key=lambda k: theirs[k][loss])
        result[label] = ours[loss] / theirs[best][loss]
        result[label + "_best"] = best
    return result


def judge(name: str, val, test, anchors: dict, seconds: float) -> dict:
    """One variant's record: validation and test ratios, the pool, VaR and MCS."""
    from forecaster.evaluate import combination
    from forecaster.evaluate.risk_tests import anchor_comparison

    days, val_start = anchors["days"], anchors["val_start"]
    actual_val = days.prices[val_start : days.n_train]
    actual = days.prices[days.n_train :]
    pool = combination.combine(val, test, days, val_start, anchors["test"])
    main = pool.distribution if pool is not None and pool.preferred else test
    keys = [k for k in anchors["test"] if k != "conformal"]
    methods = {"main": main, **{k: anchors["test"][k] for k in keys}}
    tests = anchor_comparison("main", methods, actual, keys)
    df = getattr(test, "params", {}).get("df") if hasattr(test, "params") else None
    return {
        "variant": name,
        "seconds": seconds,
        "df": df,
        "validation": ratios(val, anchors["val"], actual_val),
        "test_model": ratios(test, anchors["test"], actual),
        "test_main": ratios(main, anchors["test"], actual),
        "pool": None
        if pool is None
        else {"anchor": pool.anchor, "weight": pool.weight},
        "var": tests["var"]["main"],
        "mcs_in": (tests.get("mcs") or {}).get("main_included"),
    }


def line(record: dict) -> str:
    """One printed row per variant."""
    cells = [f"{record['variant']:<10}"]
    for part in ("validation", "test_model", "test_main"):
        cells += [f"{record[part][label]:>7.3f}" for label, _ in LOSSES]
        cells.append(" |")
    main = record["test_main"]
    cells.append(f"{main['coverage_0.8']:>6.3f}{main['coverage_0.95']:>6.3f}")
    var = record["var"] or {}
    pvalues = [
        min(var[lv]["kupiec"]["p_value"], var[lv]["christoffersen"]["p_value"])
        for lv in ("0.01", "0.05")
        if lv in var
    ]
    cells.append(f"{min(pvalues) if pvalues else float('nan'):>7.2f}")
    cells.append(f"{'in' if record['mcs_in'] else 'out':>5}")
    pool = record["pool"] or {}
    cells.append(f"  w={pool.get('weight')} {pool.get('anchor')}")
    df = record["df"]
    cells.append(f" df={df:.2f} {record['seconds']:.0f}s" if df else "")
    return "".join(cells)


def header() -> str:
    names = "".join(f"{label:>7}" for label, _ in LOSSES)
    return (
        f"{'':<10}{'validation (model)':>21}  |{'test (model)':>21}  |"
        f"{'test (default: pool)':>21}  |\n"
        f"{'variant':<10}{names} |{names} |{names} |{'cov80':>6}{'cov95':>6}"
        f"{'VaR p':>7}{'MCS':>5}  pool; df; train time"
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.train_only is not None:
        seconds = member(args.ticker, args.gains[0], args.train_only, args)[-1]
        print(f"trained in {seconds:.0f} s", flush=True)
        return
    records, anchors = [], None
    for gain in args.gains:
        prepared, val, test, seconds = member(args.ticker, gain, 42, args)
        anchors = anchors or anchors_of(prepared)
        records.append(judge(f"gain{gain:g}", val, test, anchors, seconds))
        print(line(records[-1]), flush=True)
    members = [(val, test, seconds)]
    for seed in range(43, 42 + args.seeds):
        members.append(member(args.ticker, args.gains[-1], seed, args)[1:])
    if len(members) > 1:
        val = mixture([m[0] for m in members])
        test = mixture([m[1] for m in members])
        total = sum(m[2] for m in members)
        records.append(judge(f"ens{len(members)}", val, test, anchors, total))
    title = f"{args.ticker}{' close-only' if args.close_only else ''}"
    print(f"{title}: ratio to the best anchor (below 1: ours is better)")
    print(header())
    print("\n".join(line(r) for r in records))
    out = args.out or OUT / f"risk_variants_{args.ticker}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1, default=float))
    print(f"(records: {out})")


if __name__ == "__main__":
    main()
