"""Training runs end to end: load, prepare, train, score vs naive, save; backtests."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import bundle as bundle_io
from forecaster.config import Settings
from forecaster.data import Prices, load_prices
from forecaster.errors import ForecasterError
from forecaster.evaluation import (
    INTERVAL_LEVELS,
    conformal_intervals,
    coverage,
    format_table,
    naive_scores,
    scale_of,
    scores,
    step_errors,
)
from forecaster.forecast import block_for, test_predictions
from forecaster.windows import window_view

log = logging.getLogger("forecaster")

MIN_EVAL_STEPS = 10  # error-by-step is reported for at least this many steps


def default_out(settings: Settings) -> Path:
    """models/<source>-<cell>: where a run writes its bundle unless --out says so."""
    return Path("models") / f"{source_name(settings)}-{settings.model.cell}"


def source_name(settings: Settings) -> str:
    from forecaster.data import SAMPLE_CSV

    if settings.data.ticker:
        return settings.data.ticker.strip().upper()
    return Path(settings.data.csv or SAMPLE_CSV).stem


def checkpoint_dir_for(out: Path) -> Path:
    """Where an interrupted run's checkpoint lives: hidden, beside the bundle."""
    return out.with_name(f".{out.name}.resume")


@dataclass
class TrainReport:
    """What a training run produced."""

    out: Path
    table: str
    metrics: dict
    notes: list[str]

    def summary(self) -> str:
        """What train.py prints: scores beside naive, error by step, coverage, files."""
        coverage = self.metrics["interval_coverage_one_step"]
        lines = [
            self.table,
            "",
            format_steps(self.metrics["rmse_by_step"]),
            "",
            "prediction intervals on the test days (one step ahead): "
            + ", ".join(
                f"{float(k):.0%} band covers {v:.1%}" for k, v in coverage.items()
            ),
            "",
            f"saved bundle {self.out}/ (model.keras, metrics.json, "
            "test_predictions.csv, loss.png, test_predictions.png, ...)",
            f"next: python predict.py --model {self.out}",
        ]
        return "\n".join(lines)


def format_steps(by_step: dict, shown=(1, 2, 5, 10, 20, 30)) -> str:
    """Test RMSE by horizon step for the model's methods and naive, a few steps."""
    steps = list(by_step["step"])
    picked = [steps.index(k) for k in shown if k in steps]
    if steps[-1] not in [steps[i] for i in picked]:
        picked.append(len(steps) - 1)
    header = "RMSE by step " + "".join(f"{steps[i]:>9}" for i in picked)
    rows = [header]
    for name in ("recursive", "direct", "naive"):
        if name in by_step:
            values = by_step[name]
            rows.append(f"{name:<13}" + "".join(f"{values[i]:>9.3f}" for i in picked))
    rows.append(f"(scored on the test origins with a full {steps[-1]}-day path)")
    return "\n".join(rows)


def format_backtest(table: pd.DataFrame) -> str:
    """The per-fold and mean backtest table, model beside naive."""
    columns = [
        "fold",
        "test_start",
        "test_end",
        "test_days",
        "model_rmse",
        "naive_rmse",
        "rmse_ratio",
        "model_mae",
        "naive_mae",
    ]
    return table[columns].to_string(
        index=False, na_rep="", float_format=lambda v: f"{v:.4f}"
    )


def run_training(
    settings: Settings,
    out: Path | None = None,
    force: bool = False,
    resume: bool = False,
    download=None,
) -> TrainReport:
    """Train on the configured data and write a complete bundle to `out` atomically."""
    settings.validate()
    out = Path(out) if out else default_out(settings)
    from forecaster.lock import hold

    with hold(out, "bundle"):  # one run per bundle, from here to the saved bundle
        return _train_holding_lock(settings, out, force, resume, download)


def _train_holding_lock(settings, out, force, resume, download) -> TrainReport:
    from forecaster.io import recover

    recover(out, "bundle")  # a save killed mid-swap leaves its old bundle aside
    recover(checkpoint_dir_for(out), "checkpoint")
    if out.exists() and not force and not resume:
        raise ForecasterError(
            f"Bundle {str(out)!r} already exists: add --force to replace it (the old "
            "one "
            "is kept until the new one is complete), or choose another --out."
        )
    prices = load_prices(settings.data, download=download)
    from forecaster.training import discard_checkpoint, fit_model, prepare

    prepared = prepare(prices.values, settings.prep)
    checkpoint = checkpoint_dir_for(out)
    if checkpoint.exists() and not resume:
        log.warning(
            "an interrupted run's checkpoint at %s is replaced: use --resume to "
            "continue a killed run instead",
            checkpoint,
        )
        discard_checkpoint(checkpoint)
    result = fit_model(prepared, settings, checkpoint_dir=checkpoint, resume=resume)
    evaluation = evaluate(result.model, prepared, settings)
    metadata = _metadata(settings, prices, prepared, result)
    bundle_io.write_directory_atomically(
        out,
        lambda tmp: _write_bundle(
            tmp, result, prepared, evaluation, metadata, source_name(settings)
        ),
        replace=True,
        what="bundle",
    )
    discard_checkpoint(checkpoint)
    return TrainReport(out, evaluation["table"], evaluation["metrics"], prices.notes)


def evaluate(model, prepared, settings: Settings) -> dict:
    """Test metrics beside naive, error by step, intervals and their test coverage."""
    from forecaster.engines import KerasEngine

    prep = settings.prep
    engine = KerasEngine(model, prep.representation, prep.window, prep.horizon)
    predictions = test_predictions(engine, prepared)
    actual, previous = predictions["actual"], predictions["naive"]
    model_scores = scores(actual, predictions["predicted"], previous)
    baseline = naive_scores(actual, previous)
    default_method = "direct" if prep.horizon > 1 else "recursive"
    intervals = {
        method: conformal_intervals(engine, prepared, block_for(method, prep.horizon))
        for method in ({"recursive", default_method})
    }
    one_step = intervals["recursive"]["levels"]
    split = prepared.split
    scale = scale_of(
        window_view(prepared.prices, split.window, (split.n_train, split.n))
    )
    achieved = {
        str(level): coverage(
            actual, predictions["predicted"], scale, one_step[str(level)][0]
        )
        for level in INTERVAL_LEVELS
    }
    by_step = step_errors(engine, prepared, max(prep.horizon, MIN_EVAL_STEPS))
    metrics = {
        "test_days": len(predictions),
        "test_start": predictions["date"].iloc[0],
        "test_end": predictions["date"].iloc[-1],
        "model": model_scores,
        "naive": baseline,
        "rmse_ratio_to_naive": model_scores["rmse"] / baseline["rmse"],
        "interval_coverage_one_step": achieved,
        "rmse_by_step": by_step.to_dict(orient="list"),
    }
    return {
        "predictions": predictions,
        "metrics": metrics,
        "intervals": intervals,
        "by_step": by_step,
        "table": format_table(model_scores, baseline),
        "default_method": default_method,
    }


def _metadata(settings: Settings, prices: Prices, prepared, result) -> dict:
    split = prepared.split
    return {
        "format_version": bundle_io.FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": prices.source,
        "column": prices.source.get("column"),
        "date_range": {
            "first": prices.first_date,
            "last": prices.last_date,
            "train_end": prepared.dates[split.n_train - 1].strftime("%Y-%m-%d"),
            "test_start": prepared.dates[split.n_train].strftime("%Y-%m-%d"),
        },
        "rows": {
            "total": split.n,
            "train": split.n_train,
            "fit_windows": split.n_fit,
            "validation_windows": split.n_val,
            "test_windows": split.n_test,
        },
        "settings": settings.to_dict(),
        "training": {
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "resumed_from_epoch": result.resumed_from,
        },
        "versions": bundle_io.library_versions(),
    }


def _write_bundle(
    tmp: Path, result, prepared, evaluation: dict, metadata: dict, title: str
) -> None:
    from forecaster import plotting

    metadata["default_method"] = evaluation["default_method"]
    metadata["manifest"] = bundle_io.MANIFEST_FILE  # load_bundle then requires it
    result.model.save(tmp / bundle_io.MODEL_FILE)
    bundle_io.write_json(tmp / bundle_io.SCALER_FILE, prepared.scaler.to_dict())
    bundle_io.write_json(tmp / bundle_io.METADATA_FILE, metadata)
    bundle_io.write_json(tmp / bundle_io.METRICS_FILE, evaluation["metrics"])
    bundle_io.write_json(tmp / bundle_io.INTERVALS_FILE, evaluation["intervals"])
    evaluation["predictions"].to_csv(tmp / "test_predictions.csv", index=False)
    evaluation["by_step"].to_csv(tmp / "rmse_by_step.csv", index=False)
    history = pd.DataFrame(result.history)
    history.to_csv(tmp / "history.csv", index=False)
    plotting.plot_loss(history, tmp / "loss.png", result.best_epoch)
    metrics = evaluation["metrics"]
    plotting.plot_test(
        evaluation["predictions"],
        tmp / "test_predictions.png",
        title,
        metrics["model"]["rmse"],
        metrics["naive"]["rmse"],
    )
    bundle_io.write_manifest(tmp)  # last: it lists every file written above


# -------------------------------------------------------------------- backtest


def run_backtest(
    settings: Settings,
    folds: int,
    out: Path | None = None,
    force: bool = False,
    download=None,
) -> tuple[Path, pd.DataFrame]:
    """Walk-forward: retrain on K expanding windows, score each following block.

    The part after `train_fraction` is cut into `folds` equal blocks; fold k
    trains (scaler, validation and all) on everything before block k and is
    scored one step ahead on block k, beside the naive forecast.
    """
    settings.validate()
    if folds < 1:
        raise ForecasterError(
            f"--backtest must be at least 1. Received: backtest={folds}"
        )
    out = (
        Path(out)
        if out
        else default_out(settings).with_name(default_out(settings).name + "-backtest")
    )
    if out.exists() and not force:
        raise ForecasterError(
            f"{str(out)!r} already exists: add --force to replace it, or choose --out."
        )
    prices = load_prices(settings.data, download=download)
    values = prices.values
    from forecaster.windows import split_series

    first = split_series(len(values), settings.prep).n_train
    edges = np.linspace(first, len(values), folds + 1).astype(int)
    rows = [
        _fold(values, settings, k, int(a), int(b))
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=False), start=1)
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
    table = pd.concat([table, pd.DataFrame([mean])], ignore_index=True)

    def write(tmp: Path) -> None:
        from forecaster import plotting

        table.to_csv(tmp / "backtest.csv", index=False)
        plotting.plot_backtest(
            table.iloc[:-1],
            tmp / "backtest.png",
            f"{source_name(settings)} walk-forward, {folds} folds",
        )

    bundle_io.write_directory_atomically(out, write, replace=True, what="backtest")
    return out, table


def _fold(values: pd.Series, settings: Settings, k: int, start: int, stop: int) -> dict:
    from forecaster.training import fit_model, prepare

    log.info("fold %d: train on %d days, test %d days", k, start, stop - start)
    prepared = prepare(values.iloc[:stop], settings.prep, n_train=start)
    result = fit_model(prepared, settings)
    from forecaster.engines import KerasEngine

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
