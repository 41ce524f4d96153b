"""Hyperparameter search on Ray Tune: ASHA on the validation score, best one retrained.

    forecaster tune --csv data/AAPL.csv --trials 20 --out models/AAPL-search

Every trial trains on the fit windows and is scored, after every epoch, on
the validation windows (the newest of the training part) in price units: a
distribution head's CRPS divided by the best anchor's on the same days (the
anchors of train.py's table, forecaster.evaluate.baselines, each fitted on
the days before the validation slice; the one with the lowest validation
CRPS is the yardstick, so below 1 beats every anchor there); a point head's
RMSE divided by the naive forecast's. Those ratios are comparable across
windows and representations, and ASHA stops the trials whose score lags.
The test part is never seen by the search: only the best configuration,
retrained into a normal bundle, is scored there, beside naive and every
anchor (train.py's table).

The search directory holds `trials.csv` (one row per trial), `best/` (the
bundle, whose metadata.json records the search) and `tune/` (Ray Tune's
state, which `resume=True` continues).

Reproducibility on one machine: the configurations come from a sampler
seeded with `settings.train.seed`, and every trial trains with that same
seed, so the same trials get the same scores. Which trials ASHA stops
depends on the order results arrive in; with `max_concurrent=1` that order
is fixed and the whole search repeats exactly.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.api import Forecaster
from forecaster.config import CELLS, REPRESENTATIONS, Settings
from forecaster.data.frames import prices_from_pandas
from forecaster.data.series import Series
from forecaster.distributed.fanout import registered_gradients, release_worker_memory
from forecaster.distributed.runtime import (
    configure_tensorflow,
    gpus_per_task,
    import_ray,
    one_line,
    start_ray,
)
from forecaster.errors import ForecasterError
from forecaster.evaluate import baselines
from forecaster.evaluate.comparison import head_distribution
from forecaster.evaluate.scores import grid_crps
from forecaster.io import write_file_atomically
from forecaster.model.heads import head_kind, require_price_objective
from forecaster.model.keras_engine import KerasEngine
from forecaster.prep.panel import series_ohlc
from forecaster.prep.windows import prepare, window_view
from forecaster.train.progress import Progress
from forecaster.workflows.runs import source_name

log = logging.getLogger("forecaster")

METRIC = "val_score"  # lower is better: a distribution head's validation CRPS /
#   the best anchor's (on the quantile grid CRPS_LEVELS); a point head's
#   validation RMSE / naive's
METRIC_TEXT = {
    True: "validation CRPS / the best anchor's validation CRPS",
    False: "validation RMSE / naive validation RMSE (price units)",
}  # what METRIC is, for a distribution head (True) and a point head
CRPS_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95
DISTRIBUTION_LOSSES = ("student-t", "normal", "quantile")  # searched unless mse
SEARCHED = (
    "cell",
    "units",
    "layers",
    "window",
    "dropout",
    "learning_rate",
    "representation",
    "loss",
)
GRACE_EPOCHS = 2  # ASHA lets every trial run this many epochs before stopping it
REDUCTION_FACTOR = 3  # ASHA keeps about 1 trial in 3 at each rung
TRIALS_FILE = "trials.csv"
BEST_DIR = "best"
TUNE_DIR = "tune"


def default_space(settings: Settings | None = None) -> dict:
    """The search space: Ray Tune sampling domains for the searched settings.

    The loss is searched among the distribution heads unless `settings` asks
    for a point forecast (loss "mse"): scores of the two kinds do not compare.
    """
    from ray import tune

    space = {
        "cell": tune.choice(list(CELLS)),
        "units": tune.choice([16, 32, 64]),
        "layers": tune.choice([1, 2, 3]),
        "window": tune.choice([20, 40, 60, 100]),
        "dropout": tune.choice([0.0, 0.1, 0.2]),
        "learning_rate": tune.loguniform(3e-4, 3e-3),
        "representation": tune.choice(list(REPRESENTATIONS)),
    }
    if settings is None or settings.model.loss != "mse":
        space["loss"] = tune.choice(list(DISTRIBUTION_LOSSES))
    return space


def default_search_out(settings: Settings) -> Path:
    """models/<source>-search: where a search goes unless told otherwise."""
    return Path("models") / f"{source_name(settings)}-search"


@dataclass
class SearchReport:
    """What a search produced."""

    out: Path  # the search directory
    trials: pd.DataFrame  # one row per trial, best first (also trials.csv)
    best: dict  # the best trial's configuration
    best_score: float  # its validation score
    default_score: float | None  # the base settings' own validation score
    bundle: Path  # the best configuration, retrained
    table: str  # its test scores beside naive (the only test scores shown)
    metrics: dict
    metric: str = ""  # what the validation score is (METRIC_TEXT)
    reference: str | None = None  # the best trial's yardstick anchor, by key


def run_search(
    prices,
    settings: Settings,
    out: str | os.PathLike | None = None,
    trials: int = 20,
    max_concurrent: int | None = None,
    space: dict | None = None,
    resume: bool = False,
    force: bool = False,
) -> SearchReport:
    """Search `trials` configurations around `settings`; retrain the best into a bundle.

    `prices`: one series, as `Forecaster.fit` takes it. `settings` gives
    everything not searched (epochs is each trial's most, patience its early
    stopping) and the first trial: the search always scores the base
    configuration, so the best is shown beside it. `space`: Ray Tune domains
    by setting name (default `default_space()`). Ray must be running
    (forecaster.distributed.runtime.start_ray); it is started here otherwise.
    """
    require_price_objective(settings.model.objective, "tune")
    ray = import_ray()
    space = _checked_request(settings, trials, max_concurrent, space)
    out = Path(out) if out else default_search_out(settings)
    _prepare_out(out, resume, force)
    if not ray.is_initialized():
        start_ray()
    series = _as_series(prices, settings.data.column)
    grid = _fit(series, settings, out, trials, max_concurrent, space, resume)
    table = trials_table(grid, settings)
    write_file_atomically(out / TRIALS_FILE, lambda t: table.to_csv(t, index=False))
    scored = table[table["status"] != "error"]
    if scored.empty:
        raise ForecasterError(
            f"every trial failed; see the error column of {out / TRIALS_FILE}. "
            f"First error: {table['error'].iloc[0]}"
        )
    best_row = scored.iloc[0]
    best = {name: _plain(best_row[name]) for name in SEARCHED if name in table}
    bundle, model = _retrain(series, settings, best, best_row, out, len(table))
    return SearchReport(
        out=out,
        trials=table,
        best=best,
        best_score=float(best_row[METRIC]),
        default_score=_default_score(table),
        bundle=bundle,
        table=model.evaluation_["table"],
        metrics=model.metrics_,
        metric=model.metadata_["search"]["metric"],
        reference=_reference(best_row),
    )


def _checked_request(settings: Settings, trials, max_concurrent, space) -> dict:
    """The search space (`space` or the default), once the request is checked."""
    settings.validate()
    if trials < 1:
        raise ForecasterError(f"trials must be at least 1. Received: trials={trials}")
    if max_concurrent is not None and max_concurrent < 1:
        raise ForecasterError(
            "max_concurrent must be at least 1. Received: "
            f"max_concurrent={max_concurrent}"
        )
    if settings.train.ray_workers:
        raise ForecasterError(
            "ray_workers trains one global model and the search trains many small "
            "ones, one Ray task each: leave ray_workers unset. Received: "
            f"ray_workers={settings.train.ray_workers}"
        )
    if settings.data.covariate:
        raise ForecasterError(
            "The search trains models on the price alone. Received: "
            f"covariate={settings.data.covariate!r}; leave out covariates."
        )
    if settings.prep.features != "close":
        raise ForecasterError(
            "The search trains models on the price alone. Received: "
            f"features={settings.prep.features!r}; leave features at 'close'."
        )
    space = space if space is not None else default_space(settings)
    unknown = sorted(set(space) - set(SEARCHED))
    if unknown:
        raise ForecasterError(
            f"space has setting(s) the search cannot change: {', '.join(unknown)}; "
            f"choose among {', '.join(SEARCHED)}."
        )
    return space


def _as_series(prices, column) -> Series:
    """A `Series` as it is; a pandas Series or DataFrame through the public loader."""
    return prices if isinstance(prices, Series) else prices_from_pandas(prices, column)


def _default_score(table: pd.DataFrame) -> float | None:
    """The base settings' validation score, None if that trial has none."""
    default = table[table["default"]]
    if len(default) and not pd.isna(default[METRIC].iloc[0]):
        return float(default[METRIC].iloc[0])
    return None


def trials_table(grid, settings: Settings) -> pd.DataFrame:
    """One row per trial: its settings, validation score, epochs, seconds, status.

    Sorted best first; `default` marks the trial run with the base settings.
    """
    base = _searched_values(settings)
    rows = []
    for result in grid:
        config = result.config or {}
        metrics = result.metrics or {}
        row = {"trial": metrics.get("trial_id") or _trial_id(result)}
        row.update({name: config.get(name, base[name]) for name in SEARCHED})
        row[METRIC] = metrics.get("best_val_score", math.nan)
        row["val_rmse"] = metrics.get("best_val_rmse", math.nan)
        row["naive_val_rmse"] = metrics.get("naive_val_rmse", math.nan)
        row["reference"] = metrics.get("reference")
        row["best_epoch"] = metrics.get("best_epoch")
        row["epochs"] = metrics.get("epoch")
        row["seconds"] = round(float(metrics.get("time_total_s", math.nan)), 2)
        row["status"] = "error" if result.error else "done"
        row["error"] = (
            one_line(getattr(result.error, "cause", None) or result.error)
            if result.error
            else ""
        )
        row["default"] = all(row[name] == base[name] for name in SEARCHED)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(
        [METRIC, "trial"], na_position="last", kind="stable"
    ).reset_index(drop=True)


# ------------------------------------------------------------------ the trial


def _trial(config: dict, prices, base: Settings) -> None:
    """One trial, in a Ray worker: train, reporting the validation score each epoch."""
    configure_tensorflow()
    from forecaster.train.fit import fit_model  # Keras: imported in the worker only

    settings = _with_config(base, config)
    settings.train.verbose = 0
    prepared = prepare(prices.values, settings.prep)
    prepared = replace(prepared, ohlc=series_ohlc(prices, prices.values.index))
    gradients_before = registered_gradients()
    try:  # Tune reuses a worker for later trials: release what this one left
        fit_model(
            prepared, settings, callbacks=[_validation_reporter(prepared, settings)]
        )
    finally:
        release_worker_memory(gradients_before)


def _validation_reporter(prepared, settings: Settings):
    """A Keras callback reporting the validation score to Ray Tune after each epoch."""
    import keras
    from ray import tune

    split, prep = prepared.split, settings.prep
    start, stop = split.val_targets
    contexts = window_view(prepared.scaled, split.window, (start, stop))
    actual = prepared.prices[start:stop]
    naive = _rmse(prepared.prices[start - 1 : stop - 1], actual)
    anchor, reference = None, math.nan
    if _probabilistic(settings):
        anchor, reference = baselines.best_anchor_crps(
            prepared.prices, prepared.ohlc, (start, stop), CRPS_LEVELS
        )

    class Report(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best = (math.inf, math.nan, 0)  # score, rmse, epoch
            self.engine = None  # built once: it traces a tf.function

        def on_epoch_end(self, epoch, logs=None):
            if self.engine is None:
                self.engine = KerasEngine(
                    self.model, prep.representation, prep.window, prep.horizon, False
                )
            predicted = prepared.scaler.inverse_transform(
                self.engine.predict(contexts)[:, 0]
            )
            rmse = _rmse(predicted, actual)
            score = rmse / naive if naive > 0 else math.inf
            if self.engine.head.probabilistic:
                crps = _model_crps(self.engine, prepared, (start, stop), actual)
                score = crps / reference if reference > 0 else math.inf
            if not math.isfinite(score):
                score = 1e9  # a diverged trial: ranked last, not an error
            if score < self.best[0]:
                self.best = (score, rmse, epoch + 1)
            tune.report(
                {
                    METRIC: score,
                    "val_rmse": rmse,
                    "naive_val_rmse": naive,
                    "best_val_score": self.best[0],
                    "best_val_rmse": self.best[1],
                    "best_epoch": self.best[2],
                    "epoch": epoch + 1,
                    "reference": anchor,
                }
            )

    return Report()


def _model_crps(engine, prepared, targets, actual) -> float:
    """The head's mean CRPS on the days `targets`, on the quantile grid CRPS_LEVELS."""
    return grid_crps(head_distribution(engine, prepared, targets), actual, CRPS_LEVELS)


def _rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - actual) ** 2)))


# ------------------------------------------------------------------ Ray Tune


def _fit(series, settings, out, trials, max_concurrent, space, resume):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # The legacy reporter honours verbose=0; the new one prints a banner anyway.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    trainable = tune.with_resources(
        tune.with_parameters(_trial, prices=series, base=settings),
        {"cpu": 1, "gpu": gpus_per_task()},
    )
    state = (out / TUNE_DIR).resolve()
    if resume and tune.Tuner.can_restore(str(state)):
        log.info("continuing the search in %s", state)
        tuner = tune.Tuner.restore(
            str(state), trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        base = _searched_values(settings)
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="min",
                num_samples=trials,
                max_concurrent_trials=max_concurrent,
                search_alg=BasicVariantGenerator(
                    points_to_evaluate=[{k: base[k] for k in space}],
                    random_state=settings.train.seed,
                ),
                scheduler=ASHAScheduler(
                    time_attr="training_iteration",
                    max_t=settings.train.epochs,
                    grace_period=min(GRACE_EPOCHS, settings.train.epochs),
                    reduction_factor=REDUCTION_FACTOR,
                ),
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=str(out.resolve()),
                verbose=0,
                callbacks=[_progress_callback(tune, trials)],
            ),
        )
    return tuner.fit()


def _progress_callback(tune, trials: int):
    """A Tune callback that logs one line per finished trial: done, left, time left."""
    progress = Progress(total=trials, noun="trial", write=log.info)

    class TrialProgress(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            progress.done(trial.trial_id)

        def on_trial_error(self, iteration, trials, trial, **info):
            progress.done(f"{trial.trial_id}, failed")

    return TrialProgress()


def _retrain(series, settings, best, best_row, out, n_trials):
    """The best configuration trained again: a normal bundle that names its search."""
    final = _with_config(settings, best)
    model = Forecaster.from_settings(final).fit(series)
    model.metadata_["search"] = {
        "trials": n_trials,
        "trials_table": TRIALS_FILE,
        "best_trial": str(best_row["trial"]),
        "metric": f"{METRIC}: {METRIC_TEXT[_probabilistic(final)]}",
        "reference": _reference(best_row),
        "best_validation_score": float(best_row[METRIC]),
        "searched": list(SEARCHED),
        "seed": settings.train.seed,
        "scheduler": f"ASHA (grace {GRACE_EPOCHS}, reduction {REDUCTION_FACTOR})",
    }
    bundle = out / BEST_DIR
    model.save(bundle, force=True)
    return bundle, model


def _prepare_out(out: Path, resume: bool, force: bool) -> None:
    if resume:
        return
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ForecasterError(
                f"{str(out)!r} already exists: pass resume=True to continue its "
                "search, force=True to start a new one there, or choose another out "
                "path."
            )
        shutil.rmtree(out / TUNE_DIR, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def _with_config(base: Settings, config: dict) -> Settings:
    settings = copy.deepcopy(base)
    for name, value in config.items():
        part = "prep" if name in ("window", "representation") else "model"
        setattr(getattr(settings, part), name, _plain(value))
    return settings.validate()


def _reference(row) -> str | None:
    """A trials-table row's yardstick anchor (None for a point head's trial)."""
    value = row.get("reference")
    return value if isinstance(value, str) else None


def _probabilistic(settings: Settings) -> bool:
    """Whether the settings train a distribution head (scored by CRPS)."""
    return head_kind(settings.model.loss, settings.model.objective) != "mse"


def _searched_values(settings: Settings) -> dict:
    values = {}
    for name in SEARCHED:
        part = "prep" if name in ("window", "representation") else "model"
        values[name] = getattr(getattr(settings, part), name)
    values["loss"] = head_kind(settings.model.loss, settings.model.objective)
    return values


def _plain(value):
    """NumPy scalars from a table as Python numbers (for settings and JSON)."""
    return value.item() if hasattr(value, "item") else value


def _trial_id(result) -> str:
    path = getattr(result, "path", "") or ""
    return Path(path).name or "?"
