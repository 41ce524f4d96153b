"""Accuracy benchmark: each cell x representation x ticker x length, model vs naive.

Each run uses the project's own pipeline with `Settings()` defaults (scaler on
the training part, early stopping on the newest training windows, best weights
restored) and is scored by `evaluation.evaluate` on the test days beside the
naive "tomorrow = today" forecast. The tutorial replica (bench/tutorial.py)
runs on each ticker's last 1,259 days in the same run.

python -m bench.accuracy                 # the full grid (long: see BENCHMARKS.md)
python -m bench.accuracy --quick         # smoke test: 2 epochs, AAPL only
python -m bench.accuracy --report        # tables from bench/out/accuracy.csv
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.tutorial import TUTORIAL_ROWS, run_tutorial  # noqa: E402
from forecaster.config import CELLS, REPRESENTATIONS, Settings  # noqa: E402

log = logging.getLogger("bench")

TICKERS = ("AAPL", "GOOG", "MSFT")
LENGTHS = {"1259": TUTORIAL_ROWS, "full": None}  # label -> rows kept (None = all)
OUT = Path("bench/out")
KEY = ["ticker", "length", "cell", "representation", "seed"]
DEFAULT_SEED = Settings().train.seed


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 epochs, AAPL only")
    p.add_argument("--tickers", nargs="+", choices=TICKERS, default=list(TICKERS))
    p.add_argument("--lengths", nargs="+", choices=list(LENGTHS), default=list(LENGTHS))
    p.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    p.add_argument(
        "--representations",
        nargs="+",
        choices=REPRESENTATIONS,
        default=list(REPRESENTATIONS),
    )
    p.add_argument("--no-tutorial", action="store_true", help="skip the replica")
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="training seed of every run"
    )
    p.add_argument("--out", type=Path, help="CSV (default: bench/out/accuracy.csv)")
    p.add_argument(
        "--resume", action="store_true", help="keep rows already in --out, run the rest"
    )
    p.add_argument("--report", action="store_true", help="only print tables from --out")
    args = p.parse_args(argv)
    if args.quick:
        args.tickers = args.tickers[:1]
    default_name = "accuracy-quick.csv" if args.quick else "accuracy.csv"
    args.out = args.out or OUT / default_name
    return args


def load_series(ticker: str, rows: int | None) -> pd.Series:
    """Adj Close of data/<ticker>.csv, the last `rows` of it (all when None)."""
    from forecaster.data import read_price_csv

    values = read_price_csv(f"data/{ticker}.csv", column="Adj Close").values
    return values if rows is None else values.iloc[-rows:]


def run_project(
    values: pd.Series, cell: str, representation: str, epochs, seed: int
) -> dict:
    """One default-settings run of the project's pipeline, scored on the test days."""
    from forecaster.evaluate.evaluation import evaluate
    from forecaster.model.keras_engine import KerasEngine
    from forecaster.prep.windows import prepare
    from forecaster.train.fit import fit_model

    settings = Settings()
    settings.model.cell = cell
    settings.prep.representation = representation
    settings.train.verbose = 0
    settings.train.seed = seed
    if epochs is not None:
        settings.train.epochs = epochs
    settings.validate()
    prepared = prepare(values, settings.prep)
    result = fit_model(prepared, settings)
    started = time.perf_counter()
    prep = settings.prep
    engine = KerasEngine(result.model, prep.representation, prep.window, prep.horizon)
    metrics = evaluate(engine, prepared)["metrics"]
    model, naive = metrics["model"], metrics["naive"]
    covered = metrics["interval_coverage_one_step"]
    return {
        "test_days": metrics["test_days"],
        "test_start": metrics["test_start"],
        "test_end": metrics["test_end"],
        "model_rmse": model["rmse"],
        "naive_rmse": naive["rmse"],
        "rmse_ratio": metrics["rmse_ratio_to_naive"],
        "mae_ratio": model["mae"] / naive["mae"],
        "directional_accuracy": model["directional_accuracy"],
        "naive_directional_accuracy": naive["directional_accuracy"],
        "coverage_80": covered["0.8"],
        "coverage_95": covered["0.95"],
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_seconds": result.seconds,
        "eval_seconds": time.perf_counter() - started,
    }


def plan(args) -> list[dict]:
    """Every run to do, tutorial replicas first within each length."""
    runs = []
    for length in args.lengths:
        for ticker in args.tickers:
            if length == "1259" and not args.no_tutorial:
                runs.append(_run_key(ticker, length, "tutorial", "level", args.seed))
            for cell in args.cells:
                for representation in args.representations:
                    key = _run_key(ticker, length, cell, representation, args.seed)
                    runs.append(key)
    return runs


def _run_key(*values) -> dict:
    return dict(zip(KEY, (str(v) for v in values), strict=True))


def run_one(key: dict, epochs) -> dict:
    values = load_series(key["ticker"], LENGTHS[key["length"]])
    seed = int(key["seed"])
    if key["cell"] == "tutorial":
        extra = {} if epochs is None else {"epochs": epochs}
        metrics = run_tutorial(values, seed=seed, **extra)
    else:
        metrics = run_project(values, key["cell"], key["representation"], epochs, seed)
    return {**key, "seed": seed, "rows": len(values), **metrics}


def library_fingerprint() -> str:
    """12 hex digits of sha256 over forecaster/*.py: rows that differ ran other code."""
    import forecaster

    digest = hashlib.sha256()
    for path in sorted(Path(forecaster.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def save(rows: list[dict], path: Path) -> None:
    """Rewrite the CSV atomically, so a killed run keeps every finished row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s"
    )
    if not args.report:
        run_grid(args)
    print_tables(pd.read_csv(args.out))
    return 0


def run_grid(args) -> None:
    epochs = 2 if args.quick else None
    resuming = args.resume and args.out.exists()
    done = pd.read_csv(args.out).to_dict("records") if resuming else []
    for row in done:  # rows from before the seed column ran with the default seed
        seed = row.get("seed", DEFAULT_SEED)
        row["seed"] = DEFAULT_SEED if pd.isna(seed) else int(seed)
    finished = {tuple(str(row[k]) for k in KEY) for row in done}
    todo = [k for k in plan(args) if tuple(k.values()) not in finished]
    library = library_fingerprint()
    log.info("forecaster source fingerprint %s", library)
    started = time.perf_counter()
    for number, key in enumerate(todo, start=1):
        log.info("[%d/%d] %s", number, len(todo), " ".join(key.values()))
        row = {**run_one(key, epochs), "library": library}
        done.append(row)
        save(done, args.out)
        log.info(
            "    ratio %.3f, coverage80 %s, best epoch %d/%d, %.0f s train",
            row["rmse_ratio"],
            f"{row.get('coverage_80', float('nan')):.2f}",
            row["best_epoch"],
            row["epochs_run"],
            row["train_seconds"],
        )
    log.info("grid done: %d runs in %.0f s", len(todo), time.perf_counter() - started)
    if library_fingerprint() != library or len({r.get("library") for r in done}) > 1:
        log.warning(
            "forecaster/ changed while the grid ran: rows were measured on different "
            "code (see the library column); rerun from a snapshot of one commit"
        )


# ------------------------------------------------------------------ tables

TABLES = (
    ("Test RMSE / naive RMSE (below 1 beats tomorrow = today)", "rmse_ratio", "{:.3f}"),
    ("Test MAE / naive MAE", "mae_ratio", "{:.3f}"),
    ("Directional accuracy on days the price moved", "directional_accuracy", "{:.3f}"),
    (
        "80% interval: share of test days covered (target 0.70-0.90)",
        "coverage_80",
        "{:.2f}",
    ),
    ("95% interval: share of test days covered", "coverage_95", "{:.2f}"),
    ("Best epoch / epochs run", "epochs", "{}"),
)


def print_tables(frame: pd.DataFrame) -> None:
    """Markdown tables, one per metric: rows = config, columns = ticker x length."""
    frame = frame.copy()
    if "seed" not in frame:
        frame["seed"] = DEFAULT_SEED
    frame["seed"] = frame["seed"].fillna(DEFAULT_SEED).astype(int)
    frame["config"] = frame["cell"] + " / " + frame["representation"]
    frame.loc[frame["cell"] == "tutorial", "config"] = "tutorial replica (LSTM, leaky)"
    frame["column"] = frame["ticker"] + " " + frame["length"].astype(str)
    frame["epochs"] = (
        frame["best_epoch"].astype(str) + "/" + frame["epochs_run"].astype(str)
    )
    seeds = sorted(int(seed) for seed in frame["seed"].unique())
    main_seed = DEFAULT_SEED if DEFAULT_SEED in seeds else seeds[0]
    for title, metric, fmt in TABLES:
        if metric not in frame or frame[metric].isna().all():
            continue
        print(f"\n{title} (seed {main_seed})\n")
        print(_markdown(_pivot(frame[frame["seed"] == main_seed], metric, fmt)))
    if len(seeds) > 1:
        _print_seed_spread(frame, seeds)


def _print_seed_spread(frame: pd.DataFrame, seeds: list) -> None:
    """RMSE ratio as min-max over the seeds, for configurations run with several."""
    groups = frame.groupby(["config", "column"])["rmse_ratio"]
    spread = groups.agg(["min", "max", "count"]).reset_index()
    spread = spread[spread["count"] > 1]
    spread["rmse_ratio"] = spread.apply(
        lambda r: f"{r['min']:.3f}-{r['max']:.3f} ({int(r['count'])})", axis=1
    )
    print(f"\nTest RMSE / naive RMSE, min-max over seeds {seeds} (runs)\n")
    wanted = frame[frame["config"].isin(spread["config"])]
    table = spread.pivot(index="config", columns="column", values="rmse_ratio")
    order = [c for c in wanted["config"].drop_duplicates() if c in table.index]
    columns = sorted(table.columns, key=lambda c: (c.split()[1], c))
    print(_markdown(table.loc[order, columns].fillna("")))


def _pivot(frame: pd.DataFrame, metric: str, fmt: str) -> pd.DataFrame:
    table = frame.pivot(index="config", columns="column", values=metric)
    order = [c for c in frame["config"].drop_duplicates() if c in table.index]
    columns = [c for c in frame["column"].drop_duplicates() if c in table.columns]
    table = table.loc[order, sorted(columns, key=lambda c: (c.split()[1], c))]
    if metric == "rmse_ratio":
        table["worst"] = table.max(axis=1)
    return table.map(lambda v: "n/a" if pd.isna(v) else fmt.format(v))


def _markdown(table: pd.DataFrame) -> str:
    header = ["configuration", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for config, row in table.iterrows():
        lines.append("| " + " | ".join([config, *row.tolist()]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
