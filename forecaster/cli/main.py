"""The command line: parsers built from the settings dataclasses, subcommands, errors.

`forecaster train|predict|backtest|list|serve` (and `python -m forecaster`), and
the two scripts train.py and predict.py, all come through here. Flags are
generated from the fields of forecaster.config's dataclasses, with their
defaults and their comments as help (forecaster.cli.flags). The library names
arguments in its errors ("days must be at least 1"); `run` shows them with the
flag instead ("--days must be at least 1"), as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable

from forecaster import __version__
from forecaster.cli.distributed import (
    add_per_series_flags,
    add_tune_command,
    check_ray_flags,
    per_series_command,
    start_ray_train,
)
from forecaster.cli.flags import (
    FlagsInLog,
    add_settings_flags,
    add_train_flags,
    as_flags,
    train_settings,
)
from forecaster.config import DataSettings, ForecastSettings
from forecaster.errors import ForecasterError
from forecaster.report.tables import format_backtest
from forecaster.store import listing
from forecaster.train.devices import quiet_tensorflow
from forecaster.workflows import runs

# --------------------------------------------------------------- running


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's `main`, turning errors into one line on stderr and exit code 2.

    Set FORECASTER_DEBUG=1 to see the full traceback of an unexpected error.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # yfinance under pandas 3 warns about its own internals on every download.
    warnings.filterwarnings("ignore", module="yfinance")
    library = logging.getLogger("forecaster")
    library.addFilter(LOG_FLAGS)  # its warnings name flags here; removed after
    try:
        return main(argv)
    except ForecasterError as err:
        print(f"error: {as_flags(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "error: interrupted; nothing was saved (use --resume to continue training)",
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # a bug or an environment fault: still one line
        if os.environ.get("FORECASTER_DEBUG"):
            raise
        message = (str(err).splitlines() or [""])[0][:300]
        print(
            f"error: unexpected {type(err).__name__}: {message} "
            "(set FORECASTER_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        library.removeFilter(LOG_FLAGS)


LOG_FLAGS = FlagsInLog()  # `run` names flags in the library's log lines


# ------------------------------------------------------------- the parsers


def train_parser(description: str, prog: str | None = None, backtest: bool = True):
    """The command line of train.py (and `forecaster train`)."""
    p = argparse.ArgumentParser(description=description, prog=prog)
    add_train_flags(p)
    if backtest:
        p.add_argument(
            "--backtest",
            type=int,
            metavar="K",
            help="walk-forward backtest over K folds instead of one bundle",
        )
    return p


def predict_parser(description: str, prog: str | None = None):
    """The command line of predict.py (and `forecaster predict`)."""
    p = argparse.ArgumentParser(description=description, prog=prog)
    add_settings_flags(p, ForecastSettings)
    data = p.add_argument_group("data (default: the bundle's own source)")
    add_settings_flags(
        data,
        DataSettings,
        skip=(
            "start",
            "end",
            "cache_dir",
            "calendar",
            "csv_dir",
            "skip_bad",
            "covariate",
        ),
    )
    return p


# ------------------------------------------------------------ the commands


def train_command(args: argparse.Namespace) -> int:
    """Train one bundle (or a backtest with --backtest) and print the scores."""
    settings = train_settings(args)
    if args.quiet:  # only the results: no progress, no notes (warnings still show)
        logging.getLogger("forecaster").setLevel(logging.WARNING)
    check_ray_flags(args, settings)
    if getattr(args, "per_series", False):
        return per_series_command(args, settings)
    quiet_tensorflow()
    if getattr(args, "backtest", None) is not None:
        out, table = runs.run_backtest(settings, args.backtest, args.out, args.force)
        print(format_backtest(table))
        print(f"\nwrote {out}/backtest.csv and {out}/backtest.png")
        return 0
    if settings.train.ray_workers:
        start_ray_train(args, settings)
    report = runs.run_training(settings, args.out, args.force, args.resume)
    print(f"\n{report.summary()}\n")
    files = sorted(p.name for p in report.out.iterdir() if not p.name.startswith("."))
    print(f"saved bundle {report.out}/ ({', '.join(files)})")
    print(
        f"next: {getattr(args, 'next_command', 'python predict.py')} --model "
        f"{report.out}"
    )
    return 0


def backtest_command(args: argparse.Namespace) -> int:
    """`forecaster backtest K`: walk-forward over K folds."""
    args.backtest = args.folds
    return train_command(args)


def predict_command(args: argparse.Namespace) -> int:
    """Forecast with a bundle; write forecast.csv and forecast.png."""
    forecast = ForecastSettings(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(ForecastSettings)}
    ).validate()
    data = DataSettings(
        csv=_one("csv", args.csv),
        ticker=_one("ticker", args.ticker),
        column=args.column,
        decimal=args.decimal,
    )
    report = runs.run_forecast(
        forecast.model,
        forecast.days,
        forecast.method,
        forecast.horizon,
        forecast.engine,
        data,
        forecast.out,
        calendar=forecast.calendar,
        series=forecast.series,
        samples=forecast.samples,
        seed=forecast.seed,
    )
    if report.base_rate is not None:  # a direction model: P(up), no plot
        row = report.frame.iloc[0]
        print(
            f"P(up) on {row['date']}: {row['p_up']:.3f} (base rate "
            f"{report.base_rate:.3f}; {report.engine} engine)"
        )
        print(f"wrote {report.csv}")
    else:
        _print_forecast(report)
    if report.html is not None:
        print(f"wrote {report.html} (open it in a browser)")
    return 0


def _print_forecast(report) -> None:
    """The first days of a price forecast and the files written."""
    shown = report.frame.head(5).to_string(
        index=False, float_format=lambda v: f"{v:.2f}"
    )
    print(
        f"{report.days}-day {report.method} forecast after {report.last_date} "
        f"({report.engine} engine):\n{shown}\n..."
    )
    if report.bands:
        print(report.bands)
    print(f"wrote {report.csv}\nwrote {report.png}")


def list_command(args: argparse.Namespace) -> int:
    """`forecaster list [DIR]`: every bundle under DIR, damaged ones marked."""
    frame = listing.sort_listing(listing.list_bundles(args.directory), args.sort)
    if frame.empty:
        print(f"no bundles under {args.directory}/: train one with `python train.py`")
    else:
        print(listing.format_listing(frame))
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """`forecaster serve [MODELS_DIR]`: forecasts over HTTP until interrupted."""
    if not 1 <= args.port <= 65535:
        raise ForecasterError(
            f"--port must be between 1 and 65535. Received: --port {args.port}"
        )
    try:  # lazy: FastAPI and uvicorn are the optional extra forecaster[serve]
        from forecaster.serve.server import serve
    except ImportError as err:
        raise ForecasterError(
            f"serve needs the packages of the serve extra ({err}): pip install "
            "'forecaster[serve]' (or, from a checkout, pip install '.[serve]')"
        ) from None
    try:
        serve(args.directory, args.host, args.port, args.token_file, not args.quiet)
    except ForecasterError as err:  # the library names arguments; show the flags
        message = str(err).replace("token_file", "--token-file")
        raise ForecasterError(re.sub(r"\bhost\b", "--host", message, count=1)) from None
    return 0


def add_serve_command(commands) -> None:
    """`forecaster serve [MODELS_DIR] [--host] [--port] [--token-file] [--quiet]`."""
    served = commands.add_parser(
        "serve",
        help="serve forecasts over HTTP from the saved bundles",
        description="Serve the bundles under MODELS_DIR over HTTP (NumPy engine, "
        "no TensorFlow): /models, /models/NAME/forecast, /models/NAME/report; "
        "the API is described at /docs.",
    )
    served.add_argument(
        "directory",
        nargs="?",
        default="models",
        metavar="MODELS_DIR",
        help="where the bundles are (default: models)",
    )
    served.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; any but loopback needs --token-file "
        "(default: 127.0.0.1)",
    )
    served.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: 8000)"
    )
    served.add_argument(
        "--token-file",
        metavar="FILE",
        help="a file holding a secret token; every request must then send "
        "'Authorization: Bearer TOKEN'",
    )
    served.add_argument(
        "--quiet", action="store_true", help="no line per request in the log"
    )
    served.set_defaults(handler=serve_command)


def _one(name: str, values):
    """The single value of a flag given once; predict reads one series."""
    if not values:
        return None
    if len(values) > 1:
        raise ForecasterError(
            f"{name} takes one value when forecasting. Received: {name}={values}"
        )
    return values[0]


def main_parser() -> argparse.ArgumentParser:
    """`forecaster`: the console command with its subcommands."""
    p = argparse.ArgumentParser(
        prog="forecaster",
        description="Daily stock-price forecasts with stacked LSTM, GRU and "
        "SimpleRNN networks, beside the naive forecast.",
    )
    p.add_argument("--version", action="version", version=f"forecaster {__version__}")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train a model and save a bundle",
        description="Train a "
        "model on daily prices, score it beside naive and save a bundle.",
    )
    add_train_flags(train)
    add_per_series_flags(train)
    train.set_defaults(handler=train_command, next_command="forecaster predict")
    predict = commands.add_parser(
        "predict",
        help="forecast with a saved bundle",
        description="Forecast the next trading days with a saved bundle; write "
        "forecast.csv and forecast.png.",
    )
    for action in predict_parser("")._actions[1:]:
        predict._add_action(action)
    predict.set_defaults(handler=predict_command)
    backtest = commands.add_parser(
        "backtest",
        help="walk-forward backtest, model beside naive",
        description="Retrain on K expanding windows and score each next block "
        "beside naive.",
    )
    backtest.add_argument("folds", type=int, metavar="K", help="number of folds")
    add_train_flags(backtest)
    backtest.set_defaults(handler=backtest_command)
    listed = commands.add_parser(
        "list",
        help="a table of the saved bundles",
        description=listing.parser().description,
    )
    for action in listing.parser()._actions[1:]:
        listed._add_action(action)
    listed.set_defaults(handler=list_command)
    add_tune_command(commands)
    add_serve_command(commands)
    return p


def main(argv: list[str] | None = None) -> int:
    """The `forecaster` console command."""
    args = main_parser().parse_args(argv)
    return args.handler(args)


def console() -> None:
    """Entry point of the installed `forecaster` command."""
    sys.exit(run(main))
