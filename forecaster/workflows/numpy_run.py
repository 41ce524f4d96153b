"""A whole training run with the NumPy trainer (train.nptrain) in place of Keras' fit.

It reads the prices, trains from the factory's initial weights by
backpropagation through time in NumPy, and writes the same bundle as
train.py: model.keras is the factory's Keras model holding the NumPy-trained
weights, so predict.py and Keras load it unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path

from forecaster.api import Forecaster
from forecaster.config import Settings
from forecaster.data import load_prices
from forecaster.data.frames import panel_from_pandas
from forecaster.errors import ForecasterError
from forecaster.model.heads import require_price_objective
from forecaster.prep.panel import prepare_panel
from forecaster.train.fit import TrainResult
from forecaster.train.nptrain import (
    fit_network,
    keras_network,
    make_optimizer,
    to_keras,
    window_arrays,
)
from forecaster.workflows.runs import TrainReport, train_report


def run_numpy_training(
    settings: Settings, out, optimizer: str = "adam", force=False
) -> TrainReport:
    """`workflows.runs.run_training` with the NumPy trainer in place of Keras' fit.

    Starts from the factory's initial weights for `settings.train.seed`, trains
    with `optimizer` ("adam" or "sgd", learning rate and clipnorm from
    settings.model), and writes the same bundle as train.py through
    `api.Forecaster`. Returns its `workflows.runs.TrainReport`.
    """
    check_numpy_settings(settings)
    out = Path(out)
    if out.exists() and not force:
        raise ForecasterError(
            f"{str(out)!r} already exists: pass force=True to replace it."
        )
    model_settings, prep, train = settings.model, settings.prep, settings.train
    panel = panel_from_pandas(load_prices(settings.data))
    prepared = prepare_panel(panel, prep)
    part = next(iter(prepared.parts.values()))
    _, network = keras_network(model_settings, prep.window, prep.horizon, train.seed)
    rule = make_optimizer(
        optimizer, model_settings.learning_rate, model_settings.clipnorm
    )
    started = time.perf_counter()
    history, best_epoch = fit_network(
        network,
        rule,
        window_arrays(part, part.split.fit_targets, prep.horizon),
        window_arrays(part, part.split.val_targets, prep.horizon),
        train.epochs,
        train.batch_size,
        train.patience,
        train.seed,
    )
    model = to_keras(network, model_settings, prep.window, prep.horizon)
    result = TrainResult(
        model, history, best_epoch, time.perf_counter() - started, runtime={}
    )  # no tf.data here: no input pipeline settings to record
    forecaster = Forecaster.from_settings(settings).adopt(panel, prepared, result)
    forecaster.metadata_["training"]["trainer"] = f"numpy {optimizer}"
    forecaster.save(out, force=True)
    return train_report(out, forecaster)


def check_numpy_settings(settings: Settings) -> None:
    """Raise unless the NumPy trainer trains these settings: mse, no Dropout."""
    settings.validate()
    require_price_objective(settings.model.objective, "the NumPy trainer")
    if settings.model.loss != "mse":
        raise ForecasterError(
            "the NumPy trainer trains the point forecast on squared error only; "
            f"set loss='mse'. Received: loss={settings.model.loss!r}, "
            f"objective={settings.model.objective!r}"
        )
    if settings.model.dropout > 0:
        raise ForecasterError(
            "the NumPy trainer trains without Dropout; set dropout to 0. "
            f"Received: dropout={settings.model.dropout}"
        )
