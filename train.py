"""Train a stacked LSTM/GRU/SimpleRNN on daily closing prices and save a bundle.

python train.py                                   # the sample in data/
python train.py --csv my_prices.csv --model gru
python train.py --ticker MSFT --start 2015-01-01  # yfinance, cached in data/cache
python train.py --backtest 4                      # walk-forward evaluation
"""

from __future__ import annotations

import logging
import sys

from forecaster import cli


def main(argv=None) -> int:
    args = cli.train_parser(__doc__.splitlines()[0]).parse_args(argv)
    settings = cli.train_settings(args)
    if args.quiet:  # only the results: no progress, no notes (warnings still show)
        logging.getLogger("forecaster").setLevel(logging.WARNING)
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
