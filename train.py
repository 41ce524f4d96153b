"""Train a stacked LSTM/GRU/SimpleRNN on daily closing prices and save a bundle.

python train.py                                   # the sample in data/
python train.py --csv my_prices.csv --model gru
python train.py --ticker MSFT --start 2015-01-01  # yfinance, cached in data/cache
python train.py --backtest 4                      # walk-forward evaluation
"""

from __future__ import annotations

import sys

from forecaster.cli import main as cli


def main(argv=None) -> int:
    args = cli.train_parser(__doc__.splitlines()[0]).parse_args(argv)
    return cli.train_command(args)


if __name__ == "__main__":
    sys.exit(cli.run(main))
