"""Every series of a panel scored on its test days beside naive, and the panel summary.

One series is a panel of one: it is scored by the same `evaluate`; only the
panel's own outputs (one row per series, the mean and worst ratio) are added
when there are several.
"""

from __future__ import annotations

import pandas as pd

from forecaster.evaluate.evaluation import evaluate


def evaluate_series(engine, parts: dict, calibrate: bool = False) -> dict:
    """{name: evaluate(engine, part)}: each series of `parts` scored beside naive.

    `parts`: name -> windows.Prepared. Each evaluation is as
    `forecaster.evaluate.evaluation.evaluate` gives it.
    """
    return {name: evaluate(engine, part, calibrate) for name, part in parts.items()}


def panel_summary(table: pd.DataFrame) -> dict:
    """The panel's number of series, mean and worst ratio to naive (and which)."""
    worst = table.loc[table["ratio"].idxmax()]
    return {
        "series": len(table),
        "mean_ratio": float(table["ratio"].mean()),
        "worst_ratio": float(worst["ratio"]),
        "worst_series": str(worst["series"]),
    }


def series_table(metrics: dict) -> pd.DataFrame:
    """One row per series from {name: metrics}: scores beside naive, coverage."""
    rows = []
    for name, one in metrics.items():
        coverage = one["interval_coverage_one_step"]
        rows.append(
            {
                "series": name,
                "test_days": one["test_days"],
                "model_rmse": one["model"]["rmse"],
                "naive_rmse": one["naive"]["rmse"],
                "ratio": one["rmse_ratio_to_naive"],
                "direction": one["model"]["directional_accuracy"],
                "coverage_80": coverage["0.8"],
                "coverage_95": coverage["0.95"],
            }
        )
    return pd.DataFrame(rows)
