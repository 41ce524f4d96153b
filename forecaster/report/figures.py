"""A fitted model's figures: what `Forecaster.plot` draws, and the bundle's plots.

The functions read a fitted model's public state (history_, metrics_,
evaluation_, name, forecast(), test_predictions()) and draw with
forecaster.report.plots; the model's layer (forecaster.api) calls them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from forecaster.errors import ForecasterError
from forecaster.report import plots
from forecaster.report.charts import loss_label
from forecaster.report.html import build_report
from forecaster.store.bundle import LOSS_PLOT, RELIABILITY_PLOT, TEST_PLOT
from forecaster.store.manifest import REPORT_FILE

PLOTS = ("forecast", "test", "loss", "reliability")


def draw(model, kind: str = "forecast", days: int = 30, ax=None, path=None):
    """The figure of `kind` for a fitted `model` (see `Forecaster.plot`)."""
    if kind not in PLOTS:
        raise ForecasterError(
            f"kind must be one of {', '.join(PLOTS)}. Received: kind={kind!r}"
        )
    if kind == "loss":
        return loss(model, path, ax)
    if kind == "reliability" or model.is_direction:
        return reliability(model, kind, path, ax)
    test = model.test_predictions()
    if kind == "test":
        if test is None:
            raise ForecasterError("This model has no test predictions to plot.")
        metrics = model.metrics_
        return plots.plot_test(
            test,
            model.name,
            metrics["model"]["rmse"],
            metrics["naive"]["rmse"],
            path,
            ax,
        )
    frame = model.forecast(days)
    history = {
        name: pd.Series(part.prices, index=part.dates)
        for name, part in model.panel_.parts.items()
    }
    if model.is_panel:  # the first page of the grid: GRID_PAGE series
        title = f"{days}-day forecast of {len(history)} series"
        fig = plots.plot_panel_grid(history, frame, title)
        return plots.finish(fig, path)
    title = f"{model.name}: {days}-day forecast ({model.settings.model.cell})"
    [history] = history.values()
    return plots.plot_forecast(history, frame, title, test, path, ax)


def loss(model, path, ax):
    """Training and validation loss per epoch, the loss named for what it is."""
    label = loss_label(asdict(model.settings.model))
    return plots.plot_loss(model.history_, model.best_epoch_, path, ax, label)


def reliability(model, kind: str, path, ax):
    """A direction model's reliability diagram on the test days."""
    if not model.is_direction:
        raise ForecasterError(
            "kind='reliability' is drawn for a direction model "
            "(objective='direction'); this one forecasts prices. "
            f"Received: kind={kind!r}"
        )
    if kind != "reliability":
        raise ForecasterError(
            "A direction model forecasts P(up), not prices: plot 'reliability' "
            f"or 'loss'. Received: kind={kind!r}"
        )
    table = pd.DataFrame(model.metrics_["reliability"]).astype(float)
    title = f"{model.name}: reliability of P(up) on the test days"
    return plots.plot_reliability(table, ax, path, title)


def bundle_outputs(model) -> dict:
    """{file name: write(path)}: the plots and report a saved bundle holds.

    Each is drawn once the bundle's other files are written (the report
    reads them).
    """

    def test(path: Path) -> None:
        metrics = model.metrics_
        predictions = model.evaluation_["predictions"]
        rmse = (metrics["model"]["rmse"], metrics["naive"]["rmse"])
        plots.plot_test(predictions, model.name, *rmse, path)

    def report(path: Path) -> None:
        prices = model.prices_ if model.single_ else None
        build_report(path.parent, prices=prices, path=path)

    outputs = {LOSS_PLOT: lambda path: loss(model, path, None)}
    if model.is_direction:
        outputs[RELIABILITY_PLOT] = lambda path: reliability(
            model, "reliability", path, None
        )
    elif model.single_:
        outputs[TEST_PLOT] = test
    outputs[REPORT_FILE] = report
    return outputs
