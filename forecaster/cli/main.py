"""The command line: parsers built from the settings dataclasses, subcommands, errors.

`forecaster train|predict|backtest|list` (and `python -m forecaster`), and
the two scripts train.py and predict.py, all come through here. Flags are
generated from the fields of forecaster.config's dataclasses, with their
defaults and their comments as help. The library names arguments in its
errors ("days must be at least 1"); `run` shows them with the flag instead
("--days must be at least 1"), as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import logging
import os
import re
import sys
import tokenize
import warnings
from collections.abc import Callable

from forecaster.config import (
    DECIMALS,
    REPRESENTATIONS,
    DataSettings,
    ForecastSettings,
    ModelSettings,
    PrepSettings,
    Settings,
    TrainSettings,
)
from forecaster.errors import ForecasterError
from forecaster.train.devices import quiet_tensorflow

DEFAULT = " (default: %(default)s)"  # appended to help texts
FLAG_NAMES = {"cell": "model"}  # fields whose flag is not their own name
NOT_FLAGS = {"verbose"}  # fields set by other flags (--quiet)
CHOICES = {
    "representation": REPRESENTATIONS,
    "method": ("recursive", "direct"),
    "engine": ("auto", "numpy", "keras"),
    "decimal": DECIMALS,
}
_flags: dict[str, str] = {}  # argument name -> flag, for the parsers built so far


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


def as_flags(message: str) -> str:
    """A library message that starts with an argument name, starting with its flag."""
    match = re.match(r"([a-z_]+)\b", message)
    if match and match.group(1) in _flags:
        return _flags[match.group(1)] + message[match.end() :]
    return message


# --------------------------------------------------- flags from dataclasses


def field_comments(cls) -> dict[str, str]:
    """Each field's trailing comment (with its `#   ` continuation lines), by name."""
    comments: dict[str, list[str]] = {}
    current = None
    source = inspect.getsource(cls)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    previous = None
    for token in tokens:
        if token.type == tokenize.OP and token.string == ":" and previous:
            if previous.type == tokenize.NAME and previous.start[1] == 4:
                current = previous.string
                comments[current] = []
        elif token.type == tokenize.COMMENT and current is not None:
            text = token.string.lstrip("#").strip()
            if text:
                comments[current].append(text)
        elif token.type == tokenize.NAME and token.string == "def":
            current = None
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            previous = token
    return {name: " ".join(lines) for name, lines in comments.items()}


def add_settings_flags(group, cls, defaults=None, skip=()) -> None:
    """One flag per field of the dataclass `cls`: --name-with-dashes, typed, helped."""
    defaults = defaults if defaults is not None else cls()
    helps = field_comments(cls)
    for field in dataclasses.fields(cls):
        if field.name in NOT_FLAGS or field.name in skip:
            continue
        flag = "--" + FLAG_NAMES.get(field.name, field.name).replace("_", "-")
        _flags[field.name] = flag
        default = getattr(defaults, field.name)
        text = helps.get(field.name, "").replace("%", "%%")  # argparse formats help
        kind = _field_type(field)
        several = "list[" in str(field.type)
        if kind is bool:
            group.add_argument(flag, dest=field.name, action="store_true", help=text)
            continue
        group.add_argument(
            flag,
            dest=field.name,
            type=kind,
            nargs="+" if several else None,
            default=default,
            choices=CHOICES.get(field.name),
            metavar=None if field.name in CHOICES else field.name.upper(),
            help=text + (DEFAULT if default is not None else ""),
        )


def _field_type(field) -> type:
    """The Python type of a field annotated like `int`, `float | None` or `str`."""
    names = {name.strip() for name in str(field.type).split("|")} - {"None"}
    names = {name.removeprefix("list[").removesuffix("]") for name in names}
    by_name = {"int": int, "float": float, "str": str, "bool": bool}
    kinds = [by_name[n] for n in names if n in by_name]
    if len(kinds) != 1:
        raise TypeError(f"field {field.name} has no single simple type: {field.type}")
    return kinds[0]


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """Copy parsed flags onto the dataclasses of `base` (fields of the same name)."""
    for part in dataclasses.fields(base):
        settings = getattr(base, part.name)
        for field in dataclasses.fields(settings):
            if hasattr(args, field.name) and field.name not in NOT_FLAGS:
                setattr(settings, field.name, getattr(args, field.name))
    return base


# ------------------------------------------------------------- the parsers


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The flags of training: data, windows, model, training, output."""
    add_settings_flags(p.add_argument_group("data"), DataSettings)
    add_settings_flags(p.add_argument_group("windows"), PrepSettings)
    add_settings_flags(p.add_argument_group("model"), ModelSettings)
    fit = p.add_argument_group("training")
    add_settings_flags(fit, TrainSettings)
    fit.add_argument(
        "--quiet",
        action="store_true",
        help="print only the results: no progress bar or per-epoch lines, no notes",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out", help="bundle directory (default: models/<source>-<cell>)")
    out.add_argument("--force", action="store_true", help="replace an existing bundle")
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from its last completed epoch",
    )


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


def train_settings(args: argparse.Namespace) -> Settings:
    """Settings from train.py's parsed arguments, validated."""
    from forecaster.data.calendars import validate_calendar

    settings = settings_from_args(args, Settings())
    for name in ("csv", "ticker"):  # one value keeps the single-series path
        value = getattr(settings.data, name)
        if isinstance(value, list) and len(value) == 1:
            setattr(settings.data, name, value[0])
    settings.model.cell = settings.model.cell.lower()
    settings.train.verbose = 0 if args.quiet else 1
    settings.data.calendar = validate_calendar(settings.data.calendar)
    return settings.validate()


# ------------------------------------------------------------ the commands


def train_command(args: argparse.Namespace) -> int:
    """Train one bundle (or a backtest with --backtest) and print the scores."""
    settings = train_settings(args)
    if args.quiet:  # only the results: no progress, no notes (warnings still show)
        logging.getLogger("forecaster").setLevel(logging.WARNING)
    if getattr(args, "per_series", False):
        from forecaster.cli.distributed import per_series_command

        return per_series_command(args, settings)
    quiet_tensorflow()
    from forecaster.report.tables import format_backtest
    from forecaster.workflows import runs as pipeline

    if getattr(args, "backtest", None) is not None:
        out, table = pipeline.run_backtest(
            settings, args.backtest, args.out, args.force
        )
        print(format_backtest(table))
        print(f"\nwrote {out}/backtest.csv and {out}/backtest.png")
        return 0
    report = pipeline.run_training(settings, args.out, args.force, args.resume)
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
    from forecaster.workflows.runs import run_forecast

    forecast = ForecastSettings(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(ForecastSettings)}
    ).validate()
    data = DataSettings(
        csv=_one("csv", args.csv),
        ticker=_one("ticker", args.ticker),
        column=args.column,
        decimal=args.decimal,
    )
    report = run_forecast(
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
    print(f"wrote {report.csv}\nwrote {report.png}")


def list_command(args: argparse.Namespace) -> int:
    """`forecaster list [DIR]`: every bundle under DIR, damaged ones marked."""
    from forecaster.store import listing

    frame = listing.sort_listing(listing.list_bundles(args.directory), args.sort)
    if frame.empty:
        print(f"no bundles under {args.directory}/: train one with `python train.py`")
    else:
        print(listing.format_listing(frame))
    return 0


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
    from forecaster.cli.distributed import add_per_series_flags, add_tune_command
    from forecaster.version import __version__

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
    from forecaster.store import listing

    listed = commands.add_parser(
        "list",
        help="a table of the saved bundles",
        description=listing.parser().description,
    )
    for action in listing.parser()._actions[1:]:
        listed._add_action(action)
    listed.set_defaults(handler=list_command)
    add_tune_command(commands, add_train_flags, train_settings)
    return p


def main(argv: list[str] | None = None) -> int:
    """The `forecaster` console command."""
    args = main_parser().parse_args(argv)
    return args.handler(args)


def console() -> None:
    """Entry point of the installed `forecaster` command."""
    sys.exit(run(main))
