"""Forecast the next trading days with a saved bundle; write forecast.csv and .png.

python predict.py                                  # the default bundle, 30 days
python predict.py --model models/MSFT-gru --days 10
python predict.py --model models/AAPL-lstm --csv new_prices.csv   # reuse on new data
"""

from __future__ import annotations

import sys

from forecaster.cli import main as cli


def main(argv=None) -> int:
    args = cli.predict_parser(__doc__.splitlines()[0]).parse_args(argv)
    return cli.predict_command(args)


if __name__ == "__main__":
    sys.exit(cli.run(main))
