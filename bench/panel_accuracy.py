"""Global model vs per-series models vs naive on the sample panel, same test days.

The panel is the three real sample files (data/AAPL.csv, GOOG.csv, MSFT.csv,
full length), cut at one shared date (the 75% point of the union of their
dates). For each feature set, one global model is trained on all three
series, and one model per series with the same settings and the same cut-off.
Every series is scored on its own test days beside naive. Settings are the
defaults of train.py (LSTM 50x3, delta, window 100) unless overridden.

    python -m bench.panel_accuracy                      # about 15-25 min here
    python -m bench.panel_accuracy --quick              # smoke test: tiny models
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forecaster.data.panel import read_panel_csvs  # noqa: E402
from forecaster.prep.panel import cutoff_date  # noqa: E402

FEATURE_SETS = ("close", "close,range,volume")
FILES = [ROOT / "data" / f"{name}.csv" for name in ("AAPL", "GOOG", "MSFT")]


def run(features: str, quick: bool, seed: int) -> pd.DataFrame:
    """Global and per-series ratios to naive for one feature set."""
    import forecaster as fc

    panel = read_panel_csvs([str(f) for f in FILES])
    settings = dict(features=features, seed=seed, verbose=0)
    if quick:
        settings.update(units=4, layers=1, epochs=2)
    cutoff = cutoff_date(panel)
    started = time.perf_counter()
    global_model = fc.Forecaster(**settings).fit(panel)
    seconds = time.perf_counter() - started
    table = global_model.evaluate().set_index("series")
    rows = []
    for name in panel.names:
        started = time.perf_counter()
        alone = fc.Forecaster(**settings).fit(panel.select([name]), cutoff=cutoff)
        own = alone.evaluate().set_index("series").loc[name]
        rows.append(
            {
                "features": features,
                "series": name,
                "test_days": int(table.loc[name, "test_days"]),
                "naive_rmse": table.loc[name, "naive_rmse"],
                "global_rmse": table.loc[name, "model_rmse"],
                "global_ratio": table.loc[name, "ratio"],
                "per_series_rmse": own["model_rmse"],
                "per_series_ratio": own["ratio"],
                "per_series_seconds": time.perf_counter() - started,
                "global_seconds": seconds,
            }
        )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    lines = [
        "| features | series | test days | naive RMSE | global / naive | "
        "per-series / naive |",
        "|---|---|---|---|---|---|",
    ]
    for _, row in frame.iterrows():
        lines.append(
            f"| {row['features']} | {row['series']} | {row['test_days']} | "
            f"{row['naive_rmse']:.4f} | {row['global_ratio']:.3f} | "
            f"{row['per_series_ratio']:.3f} |"
        )
    for features, part in frame.groupby("features", sort=False):
        lines.append(
            f"| {features} | **panel mean** | | | "
            f"{part['global_ratio'].mean():.3f} (worst "
            f"{part['global_ratio'].max():.3f}) | "
            f"{part['per_series_ratio'].mean():.3f} (worst "
            f"{part['per_series_ratio'].max():.3f}) |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny models, a smoke test")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--features", nargs="+", default=list(FEATURE_SETS))
    args = p.parse_args(argv)
    frames = [run(features, args.quick, args.seed) for features in args.features]
    frame = pd.concat(frames, ignore_index=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"panel_accuracy_seed{args.seed}.csv", index=False)
    print(markdown(frame))
    return 0


if __name__ == "__main__":
    sys.exit(main())
