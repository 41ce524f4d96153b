"""Plots: losses, test predictions, forecasts (bands or fans), backtests, reliability.

Each function draws on the matplotlib `Axes` it is given, or on a new
`Figure` of its own, returns the `Figure`, and writes a PNG only when given a
`path`. Figures are made without pyplot, so nothing here changes the
backend or the current figure of a notebook.
"""

from __future__ import annotations

import pandas as pd

from forecaster.io import write_file_atomically

HISTORY_DAYS = 250  # days of real prices shown before a forecast


def _axes(ax, figsize: tuple[float, float]):
    """(figure, axes): the given axes and their figure, or a new figure's axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def finish(fig, path):
    """Lay out the figure and write it as a PNG when a path is given; return it."""
    fig.tight_layout()
    if path is not None:
        write_file_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return fig


def plot_loss(
    history: pd.DataFrame,
    best_epoch: int,
    path=None,
    ax=None,
    label: str = "loss (scaled units)",
):
    """Training and validation loss per epoch, the kept epoch marked.

    `label` names the loss on the y axis (forecaster.report.charts.loss_label).
    """
    fig, ax = _axes(ax, (8, 4.5))
    ax.plot(history["epoch"], history["loss"], label="training loss")
    ax.plot(history["epoch"], history["val_loss"], label="validation loss")
    ax.axvline(
        best_epoch, color="grey", linestyle="--", label=f"kept: epoch {best_epoch}"
    )
    positive = (history[["loss", "val_loss"]] > 0).all().all()
    ax.set_yscale("log" if positive else "linear")  # a likelihood loss can be < 0
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.set_title("Loss per epoch")
    ax.legend()
    return finish(fig, path)


def plot_test(
    predictions: pd.DataFrame,
    title: str,
    model_rmse: float,
    naive_rmse: float,
    path=None,
    ax=None,
):
    """Actual vs predicted prices on the test days, with both RMSEs in the title."""
    dates = pd.to_datetime(predictions["date"])
    fig, ax = _axes(ax, (10, 5))
    ax.plot(dates, predictions["actual"], label="actual", color="black", linewidth=1)
    ax.plot(
        dates,
        predictions["predicted"],
        label="model (one day ahead)",
        color="tab:orange",
        linewidth=1,
    )
    ax.set_title(
        f"{title}: test days\nRMSE model {model_rmse:.3f}, "
        f"naive (tomorrow = today) {naive_rmse:.3f}"
    )
    ax.set_ylabel("price")
    ax.legend()
    _slant_dates(ax)
    return finish(fig, path)


def plot_forecast(
    history: pd.Series,
    forecast: pd.DataFrame,
    title: str,
    test: pd.DataFrame | None = None,
    path=None,
    ax=None,
):
    """Recent prices, test-period predictions and the future forecast with its bands.

    A frame with a `median` column (a probabilistic model's forecast) is
    drawn as a fan: its 95% and 80% bands nested, darker inside, and the
    median beside the point forecast.
    """
    recent = history.iloc[-HISTORY_DAYS:]
    dates = pd.to_datetime(forecast["date"])
    fig, ax = _axes(ax, (10, 5))
    ax.plot(recent.index, recent.to_numpy(), color="black", linewidth=1, label="actual")
    if test is not None and len(test):
        shown = test[pd.to_datetime(test["date"]) >= recent.index[0]]
        if len(shown):
            ax.plot(
                pd.to_datetime(shown["date"]),
                shown["predicted"],
                color="tab:orange",
                linewidth=1,
                label="test-period predictions",
            )
    _bands(ax, dates, forecast)
    ax.plot(
        dates, forecast["forecast"], color="tab:blue", linewidth=1.5, label="forecast"
    )
    ax.axvline(
        recent.index[-1],
        color="grey",
        linestyle="--",
        label=f"last real date {recent.index[-1]:%Y-%m-%d}",
    )
    ax.set_title(title)
    ax.set_ylabel("price")
    ax.legend(loc="upper left")
    _slant_dates(ax)
    return finish(fig, path)


def plot_backtest(folds: pd.DataFrame, title: str, path=None, ax=None):
    """Test RMSE per walk-forward fold, model beside naive."""
    fig, ax = _axes(ax, (8, 4.5))
    x = range(len(folds))
    ax.bar([i - 0.2 for i in x], folds["model_rmse"], width=0.4, label="model")
    ax.bar([i + 0.2 for i in x], folds["naive_rmse"], width=0.4, label="naive")
    ax.set_xticks(
        list(x),
        [
            f"{a}\n{b}"
            for a, b in zip(folds["test_start"], folds["test_end"], strict=False)
        ],
        fontsize=7,
    )
    ax.set_ylabel("RMSE (price)")
    ax.set_title(title)
    ax.legend()
    return finish(fig, path)


def plot_reliability(
    table: pd.DataFrame, ax=None, path=None, title: str = "Reliability of P(up)"
):
    """Observed frequency of up days against mean P(up) per bin, beside the diagonal.

    `table` is forecaster.evaluate.direction.reliability's frame; empty bins are left
    out, and each point's area grows with its bin's share of the days.
    """
    shown = table[table["count"] > 0]
    fig, ax = _axes(ax, (5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    ax.plot(
        shown["mean_forecast"],
        shown["observed_frequency"],
        color="tab:blue",
        marker=".",
        label="forecast",
    )
    share = shown["count"] / max(int(table["count"].sum()), 1)
    ax.scatter(
        shown["mean_forecast"],
        shown["observed_frequency"],
        s=20 + 400 * share,
        color="tab:blue",
        alpha=0.4,
        label="area: share of days",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("forecast P(up), mean in bin")
    ax.set_ylabel("observed frequency of up days")
    ax.set_title(title)
    ax.legend(loc="upper left")
    return finish(fig, path)


def _slant_dates(ax) -> None:
    """Slant the date labels of the x axis so long ranges stay readable."""
    ax.tick_params(axis="x", labelrotation=30)


GRID_PAGE = 25  # small panels per page of a panel forecast's grid
GRID_MAX_PAGES = 1  # a bigger panel's grid shows its first GRID_PAGE * GRID_MAX_PAGES
GRID_HISTORY_DAYS = 60  # days of real prices shown in each small panel


def plot_panel_grid(history: dict, forecast: pd.DataFrame, title: str, page=0):
    """One small panel per series: recent prices, the forecast and its bands.

    `history`: {name: price Series}; `forecast`: the long frame (series, date,
    forecast, lower/upper 80 and 95). Draws page `page` (GRID_PAGE series a
    page) on a new Figure and returns it. A panel of more series than
    `grid_pages` shows says so in the title: its plots show the first ones
    (drawing hundreds took tens of seconds), forecast.csv holds them all.
    """
    from matplotlib.figure import Figure

    every = list(dict.fromkeys(forecast["series"]))
    names = every[page * GRID_PAGE :][:GRID_PAGE]
    shown = GRID_PAGE * GRID_MAX_PAGES
    if len(every) > shown:
        title += f"\n(plots show the first {shown} of {len(every)} series; "
        title += "forecast.csv holds them all)"
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows + 0.6))  # inches
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        recent = history[name].iloc[-GRID_HISTORY_DAYS:]
        ahead = forecast[forecast["series"] == name]
        dates = pd.to_datetime(ahead["date"])
        ax.plot(recent.index, recent.to_numpy(), color="black", linewidth=0.8)
        _bands(ax, dates, ahead)
        ax.plot(dates, ahead["forecast"], color="tab:blue", linewidth=1.2)
        ax.set_title(name, fontsize=9)
        _few_ticks(ax, [recent.index[0], recent.index[-1], dates.iloc[-1]])
    fig.suptitle(title, fontsize=10)
    # fixed margins for the regular grid: tight_layout measures by drawing the
    # whole figure once more (2-3 s of CPU for 25 small plots)
    width, height = 3.2 * cols, 2.4 * rows + 0.6
    title_inches = 0.5 + 0.22 * (title.count("\n") + 1)
    fig.subplots_adjust(
        left=0.45 / width, right=1 - 0.1 / width, bottom=0.45 / height,
        top=1 - title_inches / height, wspace=0.3, hspace=0.6,
    )  # fmt: skip
    return fig


def _few_ticks(ax, days) -> None:
    """A small panel's ticks: the dates `days` (first shown, last known, last
    forecast) and about four price levels.

    Each tick is a handful of artists to lay out and draw: the default
    locators gave 15-20 an axes, most of a 25-panel grid's drawing time.
    """
    from matplotlib import dates as mdates
    from matplotlib.ticker import FixedLocator, MaxNLocator

    ax.xaxis.set_major_locator(FixedLocator(mdates.date2num(days)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=6)
    ax.tick_params(axis="x", labelrotation=30)


def grid_pages(forecast: pd.DataFrame) -> int:
    """How many pages the grid of a panel forecast takes: at most GRID_MAX_PAGES."""
    return min(GRID_MAX_PAGES, -(-forecast["series"].nunique() // GRID_PAGE))


def _bands(ax, dates, forecast: pd.DataFrame) -> None:
    """The 95% and 80% bands of a forecast frame, lightest first.

    With a `median` column the bands are quantiles of the model's own
    distribution: they are drawn as a fan (the 80% band over the 95% one,
    so darker inside) with the median as a dashed line.
    """
    fan = "median" in forecast
    kind = "of the model's distribution" if fan else "interval"
    for level, alpha in ((95, 0.15), (80, 0.3)):
        if f"lower_{level}" in forecast:
            ax.fill_between(
                dates,
                forecast[f"lower_{level}"],
                forecast[f"upper_{level}"],
                color="tab:blue",
                alpha=alpha,
                linewidth=0,
                label=f"{level}% {kind}",
            )
    if fan:
        ax.plot(
            dates,
            forecast["median"],
            color="navy",
            linestyle="--",
            linewidth=1,
            label="median",
        )
