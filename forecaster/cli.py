"""Command-line plumbing: logging to stderr, one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable

from forecaster.config import CELLS, REPRESENTATIONS, Settings
from forecaster.errors import ForecasterError

DEFAULT = " (default: %(default)s)"  # appended to help texts


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a script's `main`, turning errors into one line on stderr and exit code 2.

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
        print(f"error: {err}", file=sys.stderr)
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
            "(set FORECASTER_DEBUG=1 "
            "for the traceback)",
            file=sys.stderr,
        )
        return 1


def quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN, CUDA probing) hidden.

    Those lines are written to file descriptor 2 before TensorFlow's own log
    level applies, so stderr is pointed at /dev/null while it loads. Python
    errors still propagate normally.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def train_parser(description: str) -> argparse.ArgumentParser:
    """The command line of train.py."""
    d = Settings()
    p = argparse.ArgumentParser(description=description)
    src = p.add_argument_group("data")
    src.add_argument(
        "--csv", help="CSV with a date and a price column (default: data/AAPL.csv)"
    )
    src.add_argument("--ticker", help="download this symbol with yfinance instead")
    src.add_argument("--start", help="first date for --ticker (default: ten years ago)")
    src.add_argument("--end", help="last date for --ticker (default: today)")
    src.add_argument("--column", help="price column (default: Adj Close, else Close)")
    add_decimal_flag(src)
    prep = p.add_argument_group("windows")
    prep.add_argument(
        "--window",
        type=int,
        default=d.prep.window,
        help="days in each input window" + DEFAULT,
    )
    prep.add_argument(
        "--horizon",
        type=int,
        default=d.prep.horizon,
        help="days predicted at once (direct multi-step when > 1)" + DEFAULT,
    )
    prep.add_argument(
        "--train-fraction",
        type=float,
        default=d.prep.train_fraction,
        help="oldest share of the series used for training" + DEFAULT,
    )
    prep.add_argument(
        "--val-fraction",
        type=float,
        default=d.prep.val_fraction,
        help="newest share of training windows used for early stopping" + DEFAULT,
    )
    prep.add_argument(
        "--representation",
        choices=REPRESENTATIONS,
        default=d.prep.representation,
        help="what the network sees and predicts, see README" + DEFAULT,
    )
    net = p.add_argument_group("model")
    net.add_argument(
        "--model",
        dest="cell",
        default=d.model.cell,
        help=f"cell type: {', '.join(CELLS)}" + DEFAULT,
    )
    net.add_argument(
        "--units",
        type=int,
        default=d.model.units,
        help="units per recurrent layer" + DEFAULT,
    )
    net.add_argument(
        "--layers",
        type=int,
        default=d.model.layers,
        help="stacked recurrent layers" + DEFAULT,
    )
    net.add_argument(
        "--dropout",
        type=float,
        default=d.model.dropout,
        help="Dropout after each recurrent layer" + DEFAULT,
    )
    net.add_argument(
        "--bidirectional",
        action="store_true",
        help="wrap each recurrent layer in Bidirectional",
    )
    net.add_argument(
        "--learning-rate",
        type=float,
        default=d.model.learning_rate,
        help="Adam learning rate" + DEFAULT,
    )
    fit = p.add_argument_group("training")
    fit.add_argument(
        "--epochs",
        type=int,
        default=d.train.epochs,
        help="epoch limit (early stopping usually ends sooner)" + DEFAULT,
    )
    fit.add_argument(
        "--batch-size",
        type=int,
        default=d.train.batch_size,
        help="windows per gradient step" + DEFAULT,
    )
    fit.add_argument(
        "--patience",
        type=int,
        default=d.train.patience,
        help="epochs without a better validation loss before stopping (0: never)"
        + DEFAULT,
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=d.train.seed,
        help="random seed: same seed, data and machine give the same metrics" + DEFAULT,
    )
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    run = p.add_argument_group("output")
    run.add_argument("--out", help="bundle directory (default: models/<source>-<cell>)")
    run.add_argument("--force", action="store_true", help="replace an existing bundle")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from its last completed epoch",
    )
    run.add_argument(
        "--backtest",
        type=int,
        metavar="K",
        help="walk-forward backtest over K folds instead of one bundle",
    )
    return p


def add_decimal_flag(parser) -> None:
    """--decimal: "," reads semicolon-separated CSVs with decimal commas."""
    parser.add_argument(
        "--decimal",
        choices=(".", ","),
        default=".",
        help="decimal mark of --csv; ',' reads semicolon-separated files with "
        "decimal commas, as European spreadsheets export them" + DEFAULT,
    )


def train_settings(args: argparse.Namespace) -> Settings:
    """Settings from train.py's parsed arguments, validated."""
    s = Settings()
    s.data.csv, s.data.ticker, s.data.column = args.csv, args.ticker, args.column
    s.data.start, s.data.end = args.start, args.end
    s.data.decimal = args.decimal
    s.prep.window, s.prep.horizon = args.window, args.horizon
    s.prep.train_fraction, s.prep.val_fraction = args.train_fraction, args.val_fraction
    s.prep.representation = args.representation
    s.model.cell, s.model.units, s.model.layers = (
        args.cell.lower(),
        args.units,
        args.layers,
    )
    s.model.dropout, s.model.bidirectional = args.dropout, args.bidirectional
    s.model.learning_rate = args.learning_rate
    s.train.epochs, s.train.batch_size = args.epochs, args.batch_size
    s.train.patience, s.train.seed = args.patience, args.seed
    s.train.verbose = 0 if args.quiet else 1
    return s.validate()
