"""Build data/panel_long.csv, the small real long-format panel, from data/*.csv.

Takes the last DAYS rows of each of the three real sample files (AAPL, GOOG,
MSFT; Quandl WIKI prices, public domain) and writes them as one long-format
CSV, `date,ticker,open,high,low,close,adj_close,volume`, ticker by ticker,
oldest row first. Cells are copied as text, so the numbers are exactly those
of the source files.

python -m bench.make_panel_sample            # rewrites data/panel_long.csv
python -m bench.make_panel_sample --check    # exits 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKERS = ("AAPL", "GOOG", "MSFT")
DAYS = 1000  # rows kept per ticker: 2009-03-12 to 2013-03-01
SOURCE_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
HEADER = ("date", "ticker", "open", "high", "low", "close", "adj_close", "volume")


def panel_text(data_dir: Path = ROOT / "data", days: int = DAYS) -> str:
    """The long-format CSV text built from data_dir/{TICKERS}.csv."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for ticker in TICKERS:
        with open(data_dir / f"{ticker}.csv", newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
        if tuple(rows[0]) != SOURCE_COLUMNS:
            raise SystemExit(
                f"{ticker}.csv has columns {rows[0]}, not {SOURCE_COLUMNS}"
            )
        for date, *numbers in rows[1:][-days:]:
            writer.writerow([date, ticker, *numbers])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "panel_long.csv")
    args = parser.parse_args(argv)
    text = panel_text()
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
