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
- "g1": the t head's df weight with a gain of 1 (the default: the df stays
  at 6.0);
- "g20": the df that trains (ModelSettings.df_gain = model.heads.DF_GAIN);
- "ens": an equal mixture of `--seeds` models of the last gain listed (seeds
  42, 43, ...; the first is that gain's own model), pooled on a quantile grid;
- `--features close,vol_return`: every model above with those inputs (an
  input normalised by recent volatility; the label gains " +vol_return").

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
TICKERS = ("AAPL", "GOOG", "MSFT")
LOSSES = (
    ("qCRPS", "crps_quantiles"),
    ("IS80", "interval_score_0.8"),
    ("IS95", "interval_score_0.95"),
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticker", default="AAPL", choices=(*TICKERS, "panel"))
    p.add_argument("--gains", nargs="+", type=float, default=[1.0, 20.0])
    p.add_argument("--seeds", type=int, default=1, help="ensemble size (1: none)")
    p.add_argument("--epochs", type=int, help="override the default epochs (screen)")
    p.add_argument("--close-only", action="store_true", help="drop Open/High/Low")
    p.add_argument("--features", default="close", help="the models' inputs")
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--cache",
        type=Path,
        help="keep each trained model's distributions here and reuse them, so "
        "models can be trained one per invocation (one lock hold each)",
    )
    p.add_argument(
        "--summary",
        nargs="+",
        type=Path,
        help="print the targets of --variant from these saved records, and stop",
    )
    p.add_argument("--variant", default="g20", help="the variant --summary reads")
    p.add_argument(
        "--train-only",
        type=int,
        metavar="SEED",
        help="with --cache: train the first gain's model with this seed, and stop",
    )
    return p.parse_args(argv)


def member(ticker: str, gain: float, seed: int, args) -> tuple:
    """({series: (prepared, validation and test distributions)}, seconds)."""
    name = f"{ticker}{'-close' if args.close_only else ''}-g{gain:g}-s{seed}"
    if args.features != "close":
        name += "-" + args.features.replace(",", "+")
    path = args.cache / f"{name}-e{args.epochs}.pkl" if args.cache else None
    if path is not None and path.exists():
        found = pickle.loads(path.read_bytes())
        if len(found) == 4:  # a cache written before panels: (prepared, val, test, s)
            return {ticker: found[:3]}, found[3]
        return found
    model, seconds = train(ticker, gain, seed, args)
    engine = model.get_engine("keras")
    parts = {
        name: (prepared, *distributions(prepared, engine))
        for name, prepared in model.panel_.parts.items()
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps((parts, seconds)))
    return parts, seconds


def train(ticker: str, gain: float, seed: int, args) -> tuple:
    """The default trained on data/<ticker>.csv, or on the three ("panel")."""
    from forecaster.api import Forecaster
    from forecaster.data import load_prices
    from forecaster.data.series import Panel

    tickers = TICKERS if ticker == "panel" else (ticker,)
    series = [load_prices(DataSettings(csv=f"data/{t}.csv")) for t in tickers]
    if args.close_only:
        series = [replace(one, ohlcv=None) for one in series]
    settings = Settings()
    settings.train.verbose, settings.train.seed = 0, seed
    if args.epochs is not None:
        settings.train.epochs = args.epochs
    settings.model.df_gain = gain
    settings.prep.features = args.features
    started = time.perf_counter()
    model = Forecaster.from_settings(settings).fit(Panel(series, []))
    return model, time.perf_counter() - started


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
        "pool_validation": None if pool is None else pool.record()["validation"],
        "anchor_tests": {
            "best": tests["best"],
            "ratio_to_best": tests["ratio_to_best"],
            "dm_p_vs_best": {
                loss: tests["dm"][best][loss].get("p_value")
                for loss, best in tests["best"].items()
            },
            "mcs": tests.get("mcs"),
        },
    }


TARGETS = (("CRPS", "crps"), ("IS80", "interval_score_0.8"))
TARGETS += (("IS95", "interval_score_0.95"),)


def summary(paths: list[Path], variant: str) -> str:
    """The issue's targets for one variant across saved records, with DM p."""
    lines = [
        f"{variant}: the default's distribution / the best anchor on each loss "
        "(DM p against it); target <= 0.99 (close-only <= 1.00)",
        f"{'run':<16}"
        + "".join(f"{label:>15}" for label, _ in TARGETS)
        + f"{'cov80':>7}{'cov95':>7}{'VaR min p':>10}{'MCS':>5}",
    ]
    for path in paths:
        for record in json.loads(Path(path).read_text()):
            if not record["variant"].startswith(variant):
                continue
            tests, main = record["anchor_tests"], record["test_main"]
            cells = [f"{path.stem.replace('risk_variants_', '')[:8]:<8}"]
            cells.append(f"{record['variant'][len(variant) :]:<8}")
            for _, loss in TARGETS:
                ratio, p = tests["ratio_to_best"][loss], tests["dm_p_vs_best"][loss]
                cells.append(f"{ratio:>8.3f} ({p:.2f})")
            cells.append(f"{main['coverage_0.8']:>7.3f}{main['coverage_0.95']:>7.3f}")
            var = record["var"] or {}
            worst = min(
                min(one["kupiec"]["p_value"], one["christoffersen"]["p_value"])
                for one in var.values()
            )
            cells.append(f"{worst:>10.2f}{'in' if record['mcs_in'] else 'out':>5}")
            lines.append("".join(cells))
    return "\n".join(lines)


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
    if args.summary:
        print(summary(args.summary, args.variant))
        return
    if args.train_only is not None:
        seconds = member(args.ticker, args.gains[0], args.train_only, args)[-1]
        print(f"trained in {seconds:.0f} s", flush=True)
        return
    records, anchors, members = [], {}, []
    for gain in args.gains:
        parts, seconds = member(args.ticker, gain, 42, args)
        for name, (prepared, val, test) in parts.items():
            anchors[name] = anchors.get(name) or anchors_of(prepared)
            label = f"g{gain:g}" + (f" {name}" if len(parts) > 1 else "")
            label += "".join(f" +{f}" for f in args.features.split(",")[1:])
            records.append(judge(label, val, test, anchors[name], seconds))
            print(line(records[-1]), flush=True)
    members = [(parts, seconds)]
    for seed in range(43, 42 + args.seeds):
        members.append(member(args.ticker, args.gains[-1], seed, args))
    if len(members) > 1:
        total = sum(seconds for _, seconds in members)
        for name in members[0][0]:
            val = mixture([parts[name][1] for parts, _ in members])
            test = mixture([parts[name][2] for parts, _ in members])
            label = f"ens{len(members)}" + (f" {name}" if len(parts) > 1 else "")
            records.append(judge(label, val, test, anchors[name], total))
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
