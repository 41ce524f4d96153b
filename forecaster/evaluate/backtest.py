"""Walk-forward backtests: retrain on expanding windows, score each following block."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from forecaster.config import Settings, check_at_least

log = logging.getLogger("forecaster")


def walk_forward(values: pd.Series, settings: Settings, folds: int) -> pd.DataFrame:
    """Retrain on K expanding windows and score each next block, model beside naive.

    The part after `train_fraction` is cut into `folds` equal blocks; fold k
    trains (scaler, validation and all) on everything before block k and is
    scored one step ahead on block k. Returns one row per fold and a mean row.
    """
    from forecaster.model.heads import require_price_objective
    from forecaster.prep.windows import split_series

    settings.validate()
    require_price_objective(settings.model.objective, "backtest")
    check_at_least("folds", folds)
    first = split_series(len(values), settings.prep).n_train
    edges = np.linspace(first, len(values), folds + 1).astype(int)
    rows = [
        _fold(values, settings, k, int(a), int(b))
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True), start=1)
    ]
    table = pd.DataFrame(rows)
    mean = {
        "fold": "mean",
        **{
            c: table[c].mean()
            for c in table.columns
            if c.endswith(("rmse", "mae", "mape", "ratio"))
        },
    }
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def _fold(values: pd.Series, settings: Settings, k: int, start: int, stop: int) -> dict:
    from forecaster.evaluate.evaluation import naive_scores, scores, test_predictions
    from forecaster.model.keras_engine import KerasEngine
    from forecaster.prep.windows import prepare
    from forecaster.train.fit import fit_model

    log.info("fold %d: train on %d days, test %d days", k, start, stop - start)
    prepared = prepare(values.iloc[:stop], settings.prep, n_train=start)
    result = fit_model(prepared, settings)
    prep = settings.prep
    engine = KerasEngine(result.model, prep.representation, prep.window, prep.horizon)
    predictions = test_predictions(engine, prepared)
    model = scores(
        predictions["actual"], predictions["predicted"], predictions["naive"]
    )
    naive = naive_scores(predictions["actual"], predictions["naive"])
    return {
        "fold": k,
        "train_days": start,
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
    }


def walk_forward_panel(panel, settings: Settings, folds: int) -> pd.DataFrame:
    """Walk-forward over a panel: K global models, each scored per series beside naive.

    The panel's dates after its cut-off are cut into `folds` equal blocks;
    fold k trains one global model on every series' days before block k (one
    shared cut-off) and scores each series one step ahead on block k. Returns
    one row per fold and series, and a mean row per fold.
    """
    from forecaster.api import Forecaster
    from forecaster.data.panel import cutoff_date

    settings.validate()
    check_at_least("folds", folds)
    dates = panel.dates
    first = int(dates.searchsorted(cutoff_date(panel, settings.prep.train_fraction)))
    edges = np.linspace(first, len(dates), folds + 1).astype(int)
    frames = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True), start=1):
        log.info("fold %d: test %s to %s", k, dates[a].date(), dates[b - 1].date())
        part = truncate(panel, dates[b - 1])
        model = Forecaster.from_settings(settings).fit(part, cutoff=dates[a])
        table = model.evaluate()
        table.insert(0, "fold", k)
        mean = {"fold": k, "series": "mean", "ratio": table["ratio"].mean()}
        frames += [table, pd.DataFrame([mean])]
    return pd.concat(frames, ignore_index=True)


def truncate(panel, last):
    """The panel with every series' days after `last` removed."""
    from dataclasses import replace

    from forecaster.data.panel import Panel

    last = pd.Timestamp(last)
    kept = []
    for item in panel.values():
        values = item.values[item.values.index <= last]
        ohlcv = None if item.ohlcv is None else item.ohlcv.loc[values.index]
        kept.append(replace(item, values=values, ohlcv=ohlcv))
    return Panel(kept, panel.notes)
