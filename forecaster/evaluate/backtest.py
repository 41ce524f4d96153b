"""Walk-forward backtests: retrain on expanding windows, score each following block.

One series is a panel of one: every fold trains one model on every series'
days before its block (one shared cut-off) and scores each series one step
ahead on that block, beside naive; its CRPS sits beside every baseline of the
registry (forecaster.evaluate.baselines), scored by the same `evaluate` as a run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from forecaster.config import Settings, check_at_least
from forecaster.data.series import Panel
from forecaster.errors import ForecasterError
from forecaster.evaluate.evaluation import evaluate
from forecaster.evaluate.panel import evaluation_jit
from forecaster.model.heads import require_price_objective
from forecaster.model.keras_engine import KerasEngine
from forecaster.prep.panel import cutoff_date, prepare_panel

log = logging.getLogger("forecaster")

SCORED = ("rmse", "mae", "mape", "ratio")  # columns averaged in the mean rows,
#   and every crps_* column (the model and each baseline)


def walk_forward(
    panel: Panel, settings: Settings, folds: int, single: bool = True
) -> pd.DataFrame:
    """Retrain on K expanding windows and score each next block, model beside naive.

    The panel's dates after its `train_fraction` cut-off are cut into
    `folds` equal blocks; fold k trains (scalers, validation and all) on
    every series' days before block k and is scored one step ahead on block
    k. Returns one row per fold and series with a mean row per fold, or, for
    one series shown as such (`single`), one row per fold and a mean row.
    """
    settings.validate()
    require_price_objective(settings.model.objective, "backtest")
    if settings.train.ray_workers:
        raise ForecasterError(
            "ray_workers trains one bundle on Ray Train and walk_forward retrains a "
            "model per fold in this process: leave ray_workers unset. Received: "
            f"ray_workers={settings.train.ray_workers}"
        )
    check_at_least("folds", folds)
    dates = panel.dates
    first = int(dates.searchsorted(cutoff_date(panel, settings.prep.train_fraction)))
    edges = np.linspace(first, len(dates), folds + 1).astype(int)
    rows = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True), start=1):
        log.info("fold %d: test %s to %s", k, dates[a].date(), dates[b - 1].date())
        rows += fold_rows(truncate(panel, dates[b - 1]), settings, k, dates[a])
    table = pd.DataFrame(rows)
    if single:
        table = table.drop(columns="series")
        return pd.concat([table, mean_row(table, "mean")], ignore_index=True)
    frames = []
    for k, fold in table.groupby("fold", sort=False):
        frames += [fold, mean_row(fold, k).assign(series="mean")]
    return pd.concat(frames, ignore_index=True)


def fold_rows(panel: Panel, settings: Settings, k: int, cutoff) -> list[dict]:
    """Fold `k`: one model trained before `cutoff`, each series scored from it."""
    from forecaster.train.fit import fit_model  # lazy: it imports Keras

    prep = settings.prep
    prepared = prepare_panel(panel, prep, prep.features, cutoff)
    result = fit_model(list(prepared.parts.values()), settings)
    args = (prep.representation, prep.window, prep.horizon)
    jit = evaluation_jit(prepared.parts.values())  # XLA over a long block only
    engine = KerasEngine(result.model, *args, jit_compile=jit)
    rows = []
    for name, part in prepared.parts.items():
        evaluation = evaluate(engine, part, settings.train.calibrate)
        rows.append(
            {"fold": k, "series": name, **fold_scores(evaluation, part, result)}
        )
    return rows


def fold_scores(evaluation: dict, part, result) -> dict:
    """One series' fold beside naive, and the CRPS of the model and every baseline.

    `evaluation` as `forecaster.evaluate.evaluation.evaluate` gives it: the
    baselines are those of the registry (forecaster.evaluate.baselines).
    """
    predictions, metrics = evaluation["predictions"], evaluation["metrics"]
    model, naive = metrics["model"], metrics["naive"]
    methods = metrics["distribution"]["methods"]
    return {
        "train_days": part.split.n_train,
        "test_start": predictions["date"].iloc[0],
        "test_end": predictions["date"].iloc[-1],
        "test_days": len(predictions),
        "model_rmse": model["rmse"],
        "naive_rmse": naive["rmse"],
        "rmse_ratio": model["rmse"] / naive["rmse"] if naive["rmse"] else math.nan,
        "model_mae": model["mae"],
        "naive_mae": naive["mae"],
        "model_mape": model["mape"],
        "naive_mape": naive["mape"],
        "best_epoch": result.best_epoch,
        "crps_main": methods[metrics["distribution"]["main"]].get("crps"),
        **{f"crps_{key}": method.get("crps") for key, method in methods.items()},
    }


def mean_row(table: pd.DataFrame, fold) -> pd.DataFrame:
    """One row: `fold` and the mean of every score column of `table`."""
    scored = [c for c in table if c.endswith(SCORED) or c.startswith("crps_")]
    means = {c: pd.to_numeric(table[c]).mean() for c in scored}
    return pd.DataFrame([{"fold": fold, **means}])


def truncate(panel: Panel, last) -> Panel:
    """The panel with every series' days after `last` removed."""
    last = pd.Timestamp(last)
    kept = []
    for item in panel.values():
        values = item.values[item.values.index <= last]
        ohlcv = None if item.ohlcv is None else item.ohlcv.loc[values.index]
        kept.append(replace(item, values=values, ohlcv=ohlcv))
    return Panel(kept, panel.notes)
