"""Issue 27: the direct multi-horizon head against the sampled fan, 5 and 10 days out.

Trains `Settings()` defaults, as `python train.py --csv data/<T>.csv
--horizon H` does, on AAPL, GOOG and MSFT (data/), once per H in
`--horizons` (1: the default one-step model, whose 5- and 10-day quantiles
come from 256 of its own sampled paths; 10 or 30: a direct model, whose
output h is the distribution of the h-day move, read from one call). Each
model is scored by forecaster.evaluate.multistep on the same test origins:
the outcome 100 ln(P[t + h - 1] / P[t - 1]), coverage and interval score
of the 80% and 95% intervals, qCRPS of five quantiles, for the network
alone and for the pool with an anchor where validation chose it, beside the
GARCH-family anchors (the best one on qCRPS shown). Two origin sets: every
10th test day (metrics.json's record, Keras engine) and every `--stride`-th
(the saved bundle's NumPy engine, as predict.py runs it). Training is
deterministic on CPU (seed 42).

python -m bench.direct_fan                           # 3 tickers x H 1, 10, 30 (long)
python -m bench.direct_fan --tickers AAPL --horizons 1 30 --epochs 2   # smoke test
python -m bench.direct_fan --report bench/out/direct_fan.json   # reprint, no training
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from forecaster.config import DataSettings, Settings  # noqa: E402

TICKERS = ("AAPL", "GOOG", "MSFT")
OUT = Path("bench/out/direct_fan.json")
LOSSES = ("coverage_0.8", "coverage_0.95", "interval_score_0.8")
LOSSES += ("interval_score_0.95", "qcrps")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickers", nargs="+", choices=TICKERS, default=list(TICKERS))
    p.add_argument("--horizons", nargs="+", type=int, default=[1, 10, 30])
    p.add_argument("--epochs", type=int, help="override the default epochs (smoke)")
    p.add_argument("--patience", type=int, help="override early stopping's patience")
    p.add_argument("--stride", type=int, default=1, help="the dense origins' stride")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--report", nargs="+", type=Path, help="reprint these records, no training"
    )
    return p.parse_args(argv)


def run(ticker: str, horizon: int, epochs, stride: int, patience=None) -> dict:
    """Train the default with `horizon` on data/<ticker>.csv; its 5/10-day scores."""
    import forecaster as fc
    from forecaster.data import load_prices
    from forecaster.data.series import Panel
    from forecaster.evaluate.multistep import multi_step

    series = load_prices(DataSettings(csv=f"data/{ticker}.csv"))
    settings = Settings()
    settings.prep.horizon = horizon
    settings.train.verbose = 0
    if epochs is not None:
        settings.train.epochs = epochs
    if patience is not None:
        settings.train.patience = patience
    started = time.perf_counter()
    model = fc.Forecaster.from_settings(settings).fit(Panel([series], []))
    seconds = time.perf_counter() - started
    metrics = model.metrics_
    if "series" in metrics:  # a Panel object reads as a panel (of one)
        metrics = next(iter(metrics["series"].values()))
    prepared = next(iter(model.panel_.parts.values()))
    main = metrics["distribution"]["main"]
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "bundle")
        engine = fc.load(Path(tmp) / "bundle").get_engine("numpy")
        dense = multi_step(engine, prepared, metrics["distribution"], stride=stride)
        widths = width_record(engine, prepared, stride)
    return {
        "ticker": ticker,
        "horizon": horizon,
        "seconds": seconds,
        "best_epoch": int(model.best_epoch_),
        "main": metrics["distribution"]["main"],
        "pool": {  # the pool validation chose: its weight and anchor
            key: value
            for key, value in (metrics["distribution"].get("combination") or {}).items()
            if key != "future"
        },
        "one_step": {  # the main distribution's one-step test scores
            key: metrics["distribution"]["methods"][main][key]
            for key in ("crps", "coverage_0.8", "coverage_0.95")
        },
        "every_10th": metrics["multi_step"],
        "dense": dense,
        "widths": widths,
    }


def width_record(engine, prepared, stride: int) -> dict:
    """{h: the network's 80% interval width over GARCH(1,1)-t's, on average, and
    the correlation of the two widths across the dense origins}: whether a
    fan is too wide overall, and whether it widens when volatility does."""
    import numpy as np

    from forecaster.evaluate import multistep

    at = multistep.origins(
        prepared.split.n_train, len(prepared.prices), max(multistep.HORIZONS), stride
    )
    ours = multistep.model_quantiles(engine, prepared, at)
    state = multistep.anchor_state(
        "garch_t", prepared.prices, prepared.split.n_train, prepared.ohlc, at
    )
    garch = multistep.anchor_quantiles(state)
    record = {}
    for h in multistep.HORIZONS:
        width, reference = (
            ours[h][:, 3] - ours[h][:, 1],
            garch[h][:, 3] - garch[h][:, 1],
        )
        record[str(h)] = {
            "mean_ratio_to_garch_t": float(width.mean() / reference.mean()),
            "correlation_with_garch_t": float(np.corrcoef(width, reference)[0, 1]),
        }
    return record


def best_anchor(block: dict, h: str) -> str:
    """The anchor with the lowest qCRPS at `h` on these origins."""
    anchors = [key for key in block["methods"] if key not in ("model", "combined")]
    return min(anchors, key=lambda key: block["methods"][key][h]["qcrps"])


def cells(scored: dict) -> str:
    cover = f"{100 * scored['coverage_0.8']:5.1f} {100 * scored['coverage_0.95']:5.1f}"
    losses = (scored[k] for k in ("interval_score_0.8", "interval_score_0.95", "qcrps"))
    return cover + "".join(f"{value:8.3f}" for value in losses)


def table(records: list[dict], origins: str) -> str:
    """Per ticker and h: each model's network alone, its main fan, the best anchor."""
    header = f"{'ticker':<6}{'h':>3} {'fan':<22}{'cov80':>6}{'cov95':>6}"
    header += f"{'IS80':>8}{'IS95':>8}{'qCRPS':>8}"
    lines = [f"origins: {origins}", header]
    tickers = dict.fromkeys(r["ticker"] for r in records)
    for ticker in tickers:
        runs = [r for r in records if r["ticker"] == ticker and r[origins]]
        for h in map(str, runs[0][origins]["horizons"] if runs else []):
            first = runs[0][origins]
            lines.append(f"{ticker:<6}{h:>3} ({first['origins']} origins)")
            for record in runs:
                block = record[origins]
                name = "sampled" if int(h) > block["model_horizon"] else "head"
                label = f"H={record['horizon']} {name}"
                lines.append(
                    f"{'':<10}{label:<22}{cells(block['methods']['model'][h])}"
                )
                if block["main"] != "model":
                    label = f"H={record['horizon']} pooled"
                    main = block["methods"][block["main"]][h]
                    lines.append(f"{'':<10}{label:<22}{cells(main)}")
            anchor = best_anchor(first, h)
            label = first["methods"][anchor]["label"]
            lines.append(f"{'':<10}{label:<22}{cells(first['methods'][anchor][h])}")
    return "\n".join(lines)


RATIO_LOSSES = ("interval_score_0.8", "interval_score_0.95", "qcrps")


def width_table(records: list[dict]) -> str:
    """Each model's 80% width over GARCH-t's (mean) and their correlation."""
    lines = ["80% interval width on the dense origins: mean / GARCH(1,1)-t's, corr"]
    for record in records:
        for h, one in (record.get("widths") or {}).items():
            lines.append(
                f"{record['ticker']:<6}{h:>3} H={record['horizon']:<4}"
                f"{one['mean_ratio_to_garch_t']:7.3f}"
                f"{one['correlation_with_garch_t']:7.3f}"
            )
    return "\n".join(lines)


def against_one_step(records: list[dict], origins: str) -> str:
    """Each model's coverage error (|coverage - level|, points) and each direct
    model's losses over the H=1 model's on the same origins, network alone and
    pooled; then the mean coverage error of each H and fan over every row."""
    lines = [
        f"origins: {origins}; |cov - level| in points, then loss / H=1's "
        "(below 1: the direct model is better)",
        f"{'ticker':<6}{'h':>3} {'fan':<12}{'err80':>6}{'err95':>6}"
        f"{'IS80':>7}{'IS95':>7}{'qCRPS':>7}",
    ]
    by_key = {(r["ticker"], r["horizon"]): r[origins] for r in records if r[origins]}
    errors = {}  # (H, fan) -> [err80, err95] of every row
    for (ticker, horizon), block in by_key.items():
        base = by_key.get((ticker, 1))
        fans = dict.fromkeys(("model", block["main"]))
        for h in map(str, block["horizons"]):
            for fan in fans:
                ours = block["methods"][fan][h]
                label = f"H={horizon} {'alone' if fan == 'model' else 'pooled'}"
                error = [100 * abs(ours[f"coverage_{v}"] - v) for v in (0.8, 0.95)]
                errors.setdefault(label, []).append(error)
                cells = "".join(f"{value:6.1f}" for value in error)
                if base is not None and horizon != 1:
                    own = base["methods"].get(fan, base["methods"]["model"])[h]
                    cells += "".join(
                        f"{ours[loss] / own[loss]:7.3f}" for loss in RATIO_LOSSES
                    )
                lines.append(f"{ticker:<6}{h:>3} {label:<12}{cells}")
    for label, rows in errors.items():
        mean = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
        lines.append(f"{'mean':<10}{label:<12}{mean[0]:6.1f}{mean[1]:6.1f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.report:
        records = [r for path in args.report for r in json.loads(path.read_text())]
    else:
        records = []
        for ticker in args.tickers:
            for horizon in args.horizons:
                records.append(
                    run(ticker, horizon, args.epochs, args.stride, args.patience)
                )
                print(
                    f"{ticker} H={horizon}: {records[-1]['seconds']:.0f} s, "
                    f"best epoch {records[-1]['best_epoch']}",
                    flush=True,
                )
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(records, indent=1, allow_nan=False))
    for origins in ("every_10th", "dense"):
        print(table(records, origins))
        print(against_one_step(records, origins))
    print(width_table(records))
    print(f"(records: {', '.join(map(str, args.report or [args.out]))})")


if __name__ == "__main__":
    main()
