"""Every series of a panel scored on its test days beside naive, and the panel summary.

One series is a panel of one: it is scored by the same `evaluate`; only the
panel's own outputs (one row per series, the mean and worst ratio) are added
when there are several.
"""

from __future__ import annotations

import pandas as pd

from forecaster.evaluate.evaluation import evaluate

# The test-day evaluation compiles its forecast loop with XLA (KerasEngine's
# jit_compile) only for a series of at least this many test days. XLA compiles
# once per input shape (1-3 s of CPU for these models) and its evaluation
# never repaid that in bench/jit_crossover.py: XLA's adopt took 2.9-3.6x the
# CPU time of the plain one for the tests' tiny model (53-803 days; 1.26x at
# 1,603) and 1.16x, 1.06x, 1.01x and 1.00x for Settings()' model at 125, 325,
# 1,025 and 2,025 days (BENCHMARKS.md, "The test-day evaluation with and
# without XLA"). From here on XLA is kept, as before: it costs nothing there.
XLA_MIN_TEST_DAYS = 2000


def evaluate_series(engine, parts: dict, calibrate: bool = False) -> dict:
    """{name: evaluate(engine, part)}: each series of `parts` scored beside naive.

    `parts`: name -> windows.Prepared. Each evaluation is as
    `forecaster.evaluate.evaluation.evaluate` gives it.
    """
    return {name: evaluate(engine, part, calibrate) for name, part in parts.items()}


def evaluation_jit(parts, jit_compile: bool | None = None) -> bool:
    """Whether the test-day evaluation of `parts` compiles with XLA.

    `parts`: windows.Prepared of every series. `jit_compile` True or False
    decides; None (automatic) turns XLA on when a series has at least
    XLA_MIN_TEST_DAYS test days (each series' test part is one input shape,
    one compilation). The forecasts agree either way to float32 rounding.
    """
    if jit_compile is not None:
        return bool(jit_compile)
    days = [part.split.n - part.split.test_targets[0] for part in parts]
    return max(days, default=0) >= XLA_MIN_TEST_DAYS


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
