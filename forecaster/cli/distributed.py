"""The command line of the Ray commands: train --per-series or --ray-workers, tune.

Kept apart from forecaster.cli.main so the distributed flags and their printing
live beside each other; forecaster.cli.main only adds them to its parsers.
Ray itself is imported by forecaster.distributed, only when a command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import pandas as pd

from forecaster.cli.flags import add_train_flags, train_settings
from forecaster.config import DataSettings, Settings
from forecaster.data import load_prices
from forecaster.data.panel import is_long_format, read_long_csv
from forecaster.data.series import Panel
from forecaster.data.tables import read_series_csv
from forecaster.distributed.fanout import train_per_series, write_summary
from forecaster.distributed.runtime import start_ray
from forecaster.distributed.tune import METRIC, run_search
from forecaster.errors import ForecasterError
from forecaster.model.heads import require_price_objective
from forecaster.report.tables import training_summary
from forecaster.train.devices import quiet_tensorflow
from forecaster.train.progress import Progress

log = logging.getLogger("forecaster")
DEFAULT_TRIALS = 20


def add_ray_flags(p: argparse.ArgumentParser) -> None:
    """--ray-address and --dashboard: where the work runs."""
    ray = p.add_argument_group('Ray (pip install "forecaster[ray]")')
    ray.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="run on this Ray cluster (default: $RAY_ADDRESS, else an embedded "
        "runtime on this machine)",
    )
    ray.add_argument(
        "--dashboard",
        action="store_true",
        help="start Ray's dashboard with the embedded runtime (on 127.0.0.1)",
    )


def add_per_series_flags(p: argparse.ArgumentParser) -> None:
    """--per-series and its retries, on `forecaster train`."""
    group = p.add_argument_group("per-series fan-out")
    group.add_argument(
        "--per-series",
        action="store_true",
        help="one Ray task per series of --csv, --csv-dir or --ticker (a --csv "
        "directory means its *.csv files); bundles go to OUT/<name>/",
    )
    group.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="N",
        help="times a series is rerun when its worker process dies (default: 2)",
    )
    add_ray_flags(p)


def add_tune_command(commands) -> None:
    """`forecaster tune`: a hyperparameter search on Ray Tune."""
    tune = commands.add_parser(
        "tune",
        help="search cell, units, layers, window, dropout, learning rate and "
        "representation on Ray Tune",
        description="Search configurations with Ray Tune and ASHA on the "
        "validation score; write trials.csv and retrain the best into OUT/best/, "
        "scored on the test part beside naive. The other flags are the base "
        "configuration, which is always the first trial; --epochs caps each "
        "trial and --seed seeds the search.",
    )
    add_train_flags(tune)
    search = tune.add_argument_group("search")
    search.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        metavar="N",
        help=f"configurations tried (default: {DEFAULT_TRIALS})",
    )
    search.add_argument(
        "--max-concurrent",
        type=int,
        metavar="N",
        help="trials at once (default: one per CPU; 1 repeats a search exactly)",
    )
    add_ray_flags(tune)
    tune.set_defaults(
        handler=lambda args: tune_command(args, train_settings(args)),
    )


# ------------------------------------------------------------ the commands


def series_sources(data: DataSettings) -> list[tuple[str, object]]:
    """(name, prices or the error loading them) for every series the flags name.

    `--csv` paths (a directory means its *.csv files; a long-format file
    gives each of its tickers), `--csv-dir`, and `--ticker` symbols. Each is
    loaded on its own, so one that cannot be read fails alone.
    """
    paths = [Path(text) for text in _listed(data.csv)]
    if data.csv_dir:
        paths.append(Path(data.csv_dir))
    sources: list[tuple[str, object]] = []
    for path in paths:
        files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise ForecasterError(f"The directory {str(path)!r} holds no *.csv files.")
        for file in files:
            if is_long_format(file):
                panel = read_long_csv(file, column=data.column, skip_bad=True)
                sources += [(name, series.values) for name, series in panel.items()]
                continue
            sources.append((file.stem, _load_file(file, data)))
    for ticker in _listed(data.ticker):
        one = dataclasses.replace(data, csv=None, ticker=ticker, csv_dir=None)
        sources.append((ticker.upper(), _load(load_prices, one)))
    if not sources:
        raise ForecasterError(
            "--per-series needs the series to train: give --csv a.csv b.csv (or a "
            "directory of CSV files), --csv-dir or --ticker AAPL MSFT."
        )
    return sources


def _load_file(file: Path, data: DataSettings):
    """One CSV with its OHLCV columns (so features work), or the error reading it."""
    try:
        return Panel([read_series_csv(file, column=data.column)])
    except ForecasterError as err:  # reported with the others, not fatal
        return err


def shared_cutoff(series, train_fraction: float):
    """The cut-off a panel of these series would use, so per-series models are
    scored on the same days as the global model (None if nothing loaded)."""
    dates = pd.DatetimeIndex([])
    for _, prices in series:
        if isinstance(prices, Panel):
            dates = dates.union(prices.dates)
        elif not isinstance(prices, BaseException):
            dates = dates.union(getattr(prices, "index", pd.DatetimeIndex([])))
    if len(dates) < 2:
        return None
    return dates[int(len(dates) * train_fraction)]


def _load(load_prices, data: DataSettings):
    try:
        return load_prices(data)
    except ForecasterError as err:  # reported with the others, not fatal
        return err


def check_ray_flags(args: argparse.Namespace, settings: Settings) -> None:
    """One line for --ray-workers beside a command that trains many models.

    Also for --ray-address with nothing to run on Ray.
    """
    workers = settings.train.ray_workers
    per_series = getattr(args, "per_series", False)
    if workers and per_series:
        raise ForecasterError(
            "--ray-workers trains one global model over the panel and --per-series "
            f"one model per series: choose one. Received: --ray-workers {workers} "
            "--per-series"
        )
    folds = getattr(args, "backtest", None)
    if workers and folds is not None:
        raise ForecasterError(
            "--ray-workers trains one bundle and a backtest retrains a model per "
            "fold in this process: leave out --ray-workers. Received: --ray-workers "
            f"{workers} with a backtest of {folds} folds"
        )
    address = getattr(args, "ray_address", None)
    if address and not (workers or per_series):
        raise ForecasterError(
            "--ray-address says where --ray-workers or --per-series run: add one "
            f"of them, or leave out --ray-address. Received: --ray-address {address}"
        )


def start_ray_train(args: argparse.Namespace, settings: Settings) -> None:
    """Start or join Ray for `--ray-workers` (--ray-address, RAY_ADDRESS, embedded)."""
    where = start_ray(
        getattr(args, "ray_address", None), dashboard=getattr(args, "dashboard", False)
    )
    log.info(
        "training one model on %d Ray Train workers on %s",
        settings.train.ray_workers,
        where,
    )


def per_series_command(args: argparse.Namespace, settings: Settings) -> int:
    """Train one bundle per series on Ray; print each as it finishes."""
    if getattr(args, "backtest", None) is not None:
        raise ForecasterError("--per-series trains bundles: leave out --backtest.")
    require_price_objective(settings.model.objective, "--per-series")
    if settings.data.covariate:
        raise ForecasterError(
            "--per-series trains each series on its own prices: leave out "
            "--covariate (a panel model takes covariates: drop --per-series)."
        )
    series = series_sources(settings.data)
    cutoff = shared_cutoff(series, settings.prep.train_fraction)
    out = Path(args.out or f"models/per-series-{settings.model.cell}")
    where = start_ray(args.ray_address, dashboard=args.dashboard)
    log.info("training %d series on %s", len(series), where)
    progress = Progress(total=len(series), noun="series", write=log.info)

    def report(result) -> None:
        _print_result(result)
        progress.done(result.name)

    results = train_per_series(
        series,
        settings,
        out,
        resume=args.resume,
        force=args.force,
        max_retries=args.max_retries,
        on_result=report,
        cutoff=cutoff,
    )
    summary = write_summary(results, out)
    failed = [r for r in results if r.status == "failed"]
    print(f"\nwrote {len(results) - len(failed)} bundle(s) under {out}/ and {summary}")
    if failed:
        print(
            f"error: {len(failed)} of {len(results)} series failed "
            f"({', '.join(r.name for r in failed)}); the others are saved. Fix them "
            "and run again with --resume to train only what is missing.",
            file=sys.stderr,
        )
        return 1
    return 0


def tune_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the search, print the trials and the best one's test scores."""
    require_price_objective(settings.model.objective, "tune")
    if settings.train.ray_workers:
        raise ForecasterError(
            "--ray-workers trains one global model and tune trains many small "
            "ones, one Ray task each: leave out --ray-workers. Received: "
            f"--ray-workers {settings.train.ray_workers}"
        )
    where = start_ray(args.ray_address, dashboard=args.dashboard)
    prices = load_prices(settings.data)
    quiet_tensorflow()  # the best configuration is retrained here
    log.info("searching %d configurations on %s", args.trials, where)
    report = run_search(
        prices,
        settings,
        args.out,
        trials=args.trials,
        max_concurrent=args.max_concurrent,
        resume=args.resume,
        force=args.force,
    )
    shown = report.trials.drop(columns=["error", "naive_val_rmse"]).head(10)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    default = (
        f"{report.default_score:.4f}" if report.default_score is not None else "n/a"
    )
    print(
        f"\nbest {METRIC} ({report.metric}, lower is better): "
        f"{report.best_score:.4f}; the base configuration's: {default}"
        + (f"; yardstick: {report.reference}" if report.reference else "")
    )
    print(f"best configuration: {report.best}")
    print(f"\n{training_summary(report.metrics, report.table)}\n")
    print(f"wrote {report.out / 'trials.csv'}\nsaved bundle {report.bundle}/")
    return 0


def _print_result(result) -> None:
    if result.status == "failed":
        print(f"{result.name:<12} failed: {result.error}", flush=True)
        return
    model = result.metrics.get("model", {}).get("rmse")
    naive = result.metrics.get("naive", {}).get("rmse")
    took = f"{result.seconds:6.1f} s" if result.seconds is not None else "      -"
    scores = (
        f"rmse {model:.4g} (naive {naive:.4g})" if model is not None else "no scores"
    )
    print(f"{result.name:<12} {result.status:<8} {took}  {scores}", flush=True)


def _listed(values) -> list[str]:
    """A flag's values: one string or several (`--csv a.csv b.csv`)."""
    if values is None:
        return []
    values = [values] if isinstance(values, str) else list(values)
    return [str(value).strip() for value in values if str(value).strip()]
