"""Train a stacked LSTM/GRU/SimpleRNN on daily closing prices and save a bundle.

python train.py                                   # the sample in data/
python train.py --csv my_prices.csv --model gru
python train.py --ticker MSFT --start 2015-01-01  # yfinance, cached in data/cache
python train.py --backtest 4                      # walk-forward evaluation
"""

from __future__ import annotations

import argparse
import sys

from forecaster import cli
from forecaster.config import CELLS, REPRESENTATIONS, Settings


def parse_args(argv=None) -> argparse.Namespace:
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_argument_group("data")
    src.add_argument(
        "--csv", help="CSV with a date and a price column (default: data/AAPL.csv)"
    )
    src.add_argument("--ticker", help="download this symbol with yfinance instead")
    src.add_argument("--start", help="first date for --ticker (default: ten years ago)")
    src.add_argument("--end", help="last date for --ticker (default: today)")
    src.add_argument("--column", help="price column (default: Adj Close, else Close)")
    prep = p.add_argument_group("windows")
    prep.add_argument("--window", type=int, default=d.prep.window)
    prep.add_argument(
        "--horizon",
        type=int,
        default=d.prep.horizon,
        help="days predicted at once (direct multi-step when > 1)",
    )
    prep.add_argument("--train-fraction", type=float, default=d.prep.train_fraction)
    prep.add_argument(
        "--val-fraction",
        type=float,
        default=d.prep.val_fraction,
        help="newest share of training windows used for early stopping",
    )
    prep.add_argument(
        "--representation", choices=REPRESENTATIONS, default=d.prep.representation
    )
    net = p.add_argument_group("model")
    net.add_argument(
        "--model",
        dest="cell",
        default=d.model.cell,
        help=f"cell type: {', '.join(CELLS)}",
    )
    net.add_argument("--units", type=int, default=d.model.units)
    net.add_argument("--layers", type=int, default=d.model.layers)
    net.add_argument("--dropout", type=float, default=d.model.dropout)
    net.add_argument("--bidirectional", action="store_true")
    net.add_argument("--learning-rate", type=float, default=d.model.learning_rate)
    fit = p.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=d.train.epochs)
    fit.add_argument("--batch-size", type=int, default=d.train.batch_size)
    fit.add_argument("--patience", type=int, default=d.train.patience)
    fit.add_argument("--seed", type=int, default=d.train.seed)
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
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings()
    s.data.csv, s.data.ticker, s.data.column = args.csv, args.ticker, args.column
    s.data.start, s.data.end = args.start, args.end
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


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    cli.quiet_tensorflow()
    from forecaster import pipeline

    if args.backtest is not None:
        out, table = pipeline.run_backtest(
            settings, args.backtest, args.out, args.force
        )
        print(pipeline.format_backtest(table))
        print(f"\nwrote {out}/backtest.csv and {out}/backtest.png")
        return 0
    report = pipeline.run_training(settings, args.out, args.force, args.resume)
    print(f"\n{report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
