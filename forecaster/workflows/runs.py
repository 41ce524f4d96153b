"""Whole runs over the API, as the command line makes them: train, backtest, forecast.

Each run reads its prices from the settings (a CSV, a ticker or the sample),
does its work through `forecaster.api`, and writes its files atomically.
Nothing here prints; the callers decide what to show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster.api import Forecaster, is_single, load
from forecaster.config import DataSettings, ForecastSettings, Settings, check_at_least
from forecaster.data import SAMPLE_CSV, Series, load_prices
from forecaster.data.calendars import check_history, validate_calendar
from forecaster.data.frames import panel_from_pandas
from forecaster.data.panel import is_long_format, load_panel
from forecaster.data.symbols import download_panel
from forecaster.data.tables import read_series_csv
from forecaster.errors import ForecasterError
from forecaster.evaluate.backtest import walk_forward
from forecaster.io import recover, write_directory_atomically, write_files_atomically
from forecaster.lock import hold
from forecaster.prep.covariates import read_covariates
from forecaster.prep.panel import context_part, prepare_new_series
from forecaster.report import plots
from forecaster.report.html import render_report
from forecaster.report.tables import format_panel, training_summary
from forecaster.store.bundle import read_recent_prices, source_settings
from forecaster.store.manifest import FORECAST_FILE, FORECAST_PLOT, REPORT_FILE
from forecaster.workflows.feature_choice import AUTO, choose_features

log = logging.getLogger("forecaster")

DEFAULT_BUNDLE = ForecastSettings().model  # what the default train.py writes
# How a library message asks for prices (forecaster.cli.flags: "pass --csv or --ticker")
PASS_DATA = "pass data=DataSettings(csv=...) or data=DataSettings(ticker=...)"


def default_out(settings: Settings) -> Path:
    """models/<source>-<cell>: where a run writes its bundle unless told otherwise.

    A direction model's ends in -up (models/AAPL-lstm-up), so it never takes
    the place of the price model that predict.py uses by default.
    """
    name = f"{source_name(settings)}-{settings.model.cell}"
    if settings.model.objective == "direction":
        name += "-up"
    return Path("models") / name


def source_name(settings: Settings) -> str:
    data = settings.data
    if data.csv_dir:
        return Path(data.csv_dir).name or "panel"
    for value in (data.ticker, data.csv):
        if isinstance(value, (list, tuple)) and len(value) > 1:
            return "panel"
    if data.ticker:
        return str(data.ticker).strip().upper()
    return Path(data.csv or SAMPLE_CSV).stem


def is_panel_run(settings: Settings) -> bool:
    """Several series, a folder, a long-format file or extra features: a panel."""
    csv = settings.data.csv
    one_file = isinstance(csv, str) and Path(csv).is_file()
    return settings.is_panel or (one_file and is_long_format(csv))


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
        """Scores beside naive, error by step and coverage (forecaster.report.tables).

        For a panel: one row per series and the panel's mean and worst ratio.
        """
        if "panel" in self.metrics:
            return self.table
        return training_summary(self.metrics, self.table)


def _refuse_existing(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise ForecasterError(
            f"{str(out)!r} already exists: pass force=True to replace it (the old "
            "one is kept until the new one is complete), or choose another out path."
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
    with hold(out, "bundle"):  # one run per bundle, from here to the saved bundle
        return _train_holding_lock(settings, out, force, resume, download)


def _train_holding_lock(settings, out, force, resume, download) -> TrainReport:
    from forecaster.train.checkpoint import discard_checkpoint  # lazy: Keras

    recover(out, "bundle")  # a save killed mid-swap leaves its old bundle aside
    recover(checkpoint_dir_for(out), "checkpoint")
    _refuse_existing(out, force or resume)
    data = load_data(settings, download)
    checkpoint = checkpoint_dir_for(out)
    if checkpoint.exists() and not resume:
        log.warning(
            "an interrupted run's checkpoint at %s is replaced: pass resume=True to "
            "continue a killed run instead",
            checkpoint,
        )
        discard_checkpoint(checkpoint)
    covariates = read_covariates(settings.data.covariate)
    choice = None
    if settings.prep.features == AUTO:  # before the real fit: the bundle records it
        choice = choose_features(data, settings)
        settings.prep.features = choice.features
    model = Forecaster.from_settings(settings)
    model.fit(data, covariates=covariates, checkpoint_dir=checkpoint, resume=resume)
    if choice is not None:
        model.metadata_["feature_choice"] = choice.record()
        model.notes_.append(choice.reason)
    model.save(out, force=True)
    discard_checkpoint(checkpoint)
    return train_report(out, model)


def train_report(out: Path, model: Forecaster) -> TrainReport:
    """What a run that saved `model` at `out` shows: its scores beside naive.

    A panel shows one row per series; a panel of one (one file with input
    features) shows its series' whole table, as the same series alone would.
    """
    table = model.evaluation_["table"]
    if model.is_panel:
        series = model.evaluation_["series"]
        if len(series) == 1:
            table = next(iter(series.values()))["table"]
        else:
            table = format_panel(table, model.metrics_["panel"])
    return TrainReport(out, table, model.metrics_, model.notes_)


def load_data(settings: Settings, download=None):
    """The prices the settings name: one Series, or a Panel.

    Several CSVs, a folder, a long file, several symbols or input features
    beyond close make a panel (`is_panel_run`); otherwise the one CSV, ticker
    or the sample, whose dates are checked against the calendar.
    """
    data = settings.data
    if not is_panel_run(settings):
        prices = load_prices(data, download=download)
        _warn_calendar_mismatch(prices.values, settings)
        return prices
    tickers = data.ticker
    return load_panel(
        csv=data.csv,
        csv_dir=data.csv_dir,
        tickers=[tickers] if isinstance(tickers, str) else tickers,
        column=data.column,
        start=data.start,
        end=data.end,
        cache_dir=data.cache_dir,
        skip_bad=data.skip_bad,
        download=download,
    )


def run_backtest(
    settings: Settings,
    folds: int,
    out: Path | None = None,
    force: bool = False,
    download=None,
) -> tuple[Path, pd.DataFrame]:
    """Walk-forward backtest of the configured data; writes backtest.csv and .png."""
    settings.validate()
    check_at_least("folds", folds)
    default = default_out(settings)
    out = Path(out) if out else default.with_name(default.name + "-backtest")
    _refuse_existing(out, force)
    data = load_data(settings, download)
    single = is_single(data, settings)
    table = walk_forward(panel_from_pandas(data), settings, folds, single)

    def write(tmp: Path) -> None:
        table.to_csv(tmp / "backtest.csv", index=False)
        title = f"{source_name(settings)} walk-forward, {folds} folds"
        if single:  # a panel's folds are in backtest.csv only
            plots.plot_backtest(table.iloc[:-1], title, tmp / "backtest.png")

    write_directory_atomically(out, write, replace=True, what="backtest")
    return out, table


def _warn_calendar_mismatch(values: pd.Series, settings: Settings) -> None:
    """One warning when the history's dates disagree with the trading calendar."""
    mismatch = check_history(values.index, settings.data.calendar)
    if mismatch:
        log.warning(mismatch)


@dataclass
class ForecastReport:
    """What `run_forecast` wrote."""

    csv: Path
    png: Path | None  # None for a direction model: no fan chart
    html: Path
    engine: str
    method: str
    frame: pd.DataFrame
    last_date: str
    notes: list[str]
    base_rate: float | None = None  # a direction model's training base rate
    bands: str | None = None  # whose bands these are, when the pool is involved

    @property
    def days(self) -> int:
        """Days forecast (per series, for a panel)."""
        if "series" in self.frame:
            return len(self.frame) // max(1, self.frame["series"].nunique())
        return len(self.frame)


DEFAULT_DAYS = 30  # forecast length when none is asked for


def run_forecast(
    model_dir: str | None = None,
    days: int | None = None,
    method: str | None = None,
    block: int | None = None,
    engine: str = "auto",
    data: DataSettings | None = None,
    out: str | None = None,
    download=None,
    calendar: str | None = None,
    series: list[str] | None = None,
    samples: int = 512,
    seed: int = 0,
) -> ForecastReport:
    """Load a bundle, read the latest prices, forecast `days` ahead, write CSV and PNG.

    Every series of the bundle (or those named in `series`) is forecast in
    one batched pass: a panel's from the recent days saved with it, into one
    long forecast.csv and a grid of small plots of the first ones
    (forecast.png; report.plots.GRID_MAX_PAGES pages); one series' from its
    own source read again (or, for a model fitted on prices in memory, the
    recent prices saved with it).
    `data` naming a CSV or a ticker forecasts that series instead. Files go
    into the bundle directory unless `out` is given, with report.html
    refreshed; all are replaced only once all are complete, so a failed run
    leaves an earlier forecast as it was. Dates are the sessions of
    `calendar`, by default the bundle's. A probabilistic model's bands come
    from its own distribution (`samples` paths drawn with `seed` for a
    recursive forecast), with a median column. A direction bundle
    (objective="direction") writes forecast.csv with the next session's
    P(up) and report.html, and no plot.
    """
    if days is not None:
        check_at_least("days", days)
    check_at_least("samples", samples)
    if calendar is not None:  # a bad calendar fails before anything is read
        calendar = validate_calendar(calendar)
    model = load(model_dir or DEFAULT_BUNDLE)
    days = _forecast_days(model, days)
    own_source = data is None or not (data.csv or data.ticker)
    inputs = forecast_inputs(model, data, own_source, series, download)
    method = method or model.default_method_
    frame = model.forecast_from(
        inputs.parts, days, method, block, engine, calendar, samples, seed,
        inputs.intervals,
    )  # fmt: skip
    engine_name = model.get_engine(engine).name
    out_dir = Path(out) if out else model.bundle_.path
    what = f"{days}-day {method} forecast ({model.settings.model.cell}, "
    what += f"{engine_name} engine)"
    writers, html = _writers(model, frame, inputs, out_dir, what, own_source)
    write_files_atomically(writers)
    last = max(part.dates[-1] for part in inputs.parts.values())
    return ForecastReport(
        out_dir / FORECAST_FILE,
        out_dir / FORECAST_PLOT if not model.is_direction else None,
        html,
        engine_name,
        method,
        frame,
        f"{last:%Y-%m-%d}",
        inputs.notes,
        base_rate=(model.metrics_.get("direction") or {}).get("base_rate"),
        bands=frame.attrs.get("bands"),
    )


def _writers(model, frame, inputs, out_dir: Path, what: str, own_source: bool):
    """({path: write} of forecast.csv, its plots and report.html; the report's path).

    A panel's report is refreshed only for its own series.
    """
    writers = {out_dir / FORECAST_FILE: lambda tmp: frame.to_csv(tmp, index=False)}
    title = f"{inputs.label}: {what}"
    writers.update(_plot_writers(model, frame, inputs, out_dir, title, own_source))
    if not (own_source or model.single_):
        return writers, None
    prices = inputs.history() if model.single_ else None
    try:  # drawn before anything is written: a failed report never costs the forecast
        page = render_report(model.bundle_.path, prices, frame, own_source)
    except Exception as err:  # any failure of this optional output
        log.warning(
            "%s was not refreshed: drawing it failed with %s (%s); the forecast "
            "is written",
            REPORT_FILE,
            type(err).__name__,
            str(err).splitlines()[0] if str(err) else "",
        )
        return writers, None

    def report(tmp: Path) -> None:
        tmp.write_text(page, encoding="utf-8")

    writers[out_dir / REPORT_FILE] = report
    return writers, out_dir / REPORT_FILE


def _forecast_days(model, days: int | None) -> int:
    """`days`, or by default 30 (a model with input features: its horizon)."""
    if model.is_direction and days not in (None, 1):
        log.info(
            "days=%d is not used: a direction model gives P(up) for the next "
            "session only",
            days,
        )
    return _default_days(model) if days is None else days


@dataclass
class ForecastInputs:
    """What a forecast starts from: each series' recent days, and their bands."""

    parts: dict  # {name: prep.windows.Prepared}
    intervals: dict | None  # {name: intervals by method}; None: the model's own
    notes: list[str]
    label: str  # what a one-series plot calls it

    def history(self) -> pd.Series:
        """The first series' prices (one series' whole history)."""
        part = next(iter(self.parts.values()))
        return pd.Series(part.prices, index=part.dates)


def forecast_inputs(model, data, own_source: bool, series, download) -> ForecastInputs:
    """The series to forecast: the bundle's own (or those named), or `data`'s.

    One series' own source is read again (a ticker up to today); a panel's
    own series start from the days saved with it. A series named by `data`
    is forecast with its own scalers if the panel holds it, else with its
    own min and max (forecaster.prep.panel.prepare_new_series).
    """
    rep = model.settings.prep.representation
    if model.single_:
        prices = _forecast_prices(model.bundle_, data, own_source, download)
        part = context_part(prices.values, model.scaler_, rep)
        return ForecastInputs({model.name: part}, None, prices.notes, _label(prices))
    if not own_source:
        item = _new_series(data, download)
        intervals = model.series_intervals()
        part, own, notes = prepare_new_series(item, model.panel_, rep, intervals)
        return ForecastInputs({item.name: part}, {item.name: own}, notes, item.name)
    if series:
        model.panel_ = model.panel_.select(series)
    return ForecastInputs(model.panel_.parts, None, [], "panel")


def _plot_writers(model, frame, inputs, out_dir: Path, title: str, own_source):
    """{path: write} of the forecast plots: one series' fan, or a panel's grid."""
    if model.is_direction:
        return {}
    if model.single_:
        test = model.test_predictions() if own_source else None

        def draw(tmp: Path) -> None:
            plots.plot_forecast(inputs.history(), frame, title, test, path=tmp)

        return {out_dir / FORECAST_PLOT: draw}
    history = {
        name: pd.Series(part.prices, index=part.dates)
        for name, part in inputs.parts.items()
    }
    days = len(frame) // max(1, frame["series"].nunique())
    title = f"{days}-day forecast of {frame['series'].nunique()} series"
    writers = {}
    for page in range(plots.grid_pages(frame)):
        name = FORECAST_PLOT if page == 0 else f"forecast-{page + 1}.png"

        def draw(tmp, page=page):
            fig = plots.plot_panel_grid(history, frame, title, page)
            fig.savefig(tmp, dpi=110, format="png")

        writers[out_dir / name] = draw
    return writers


def _default_days(model) -> int:
    """30 days, or the horizon of a model with input features (it goes no further)."""
    parts = model.panel_.parts.values() if model.is_panel else []
    if any(part.extra is not None for part in parts):
        horizon = model.settings.prep.horizon
        log.info(
            "forecasting %d day(s): the horizon of this model, which takes input "
            "features beside the price",
            horizon,
        )
        return horizon
    return DEFAULT_DAYS


def _new_series(data: DataSettings, download):
    """The one series named by --csv or --ticker, with its OHLCV columns."""
    if data.csv:
        return read_series_csv(data.csv, column=data.column)
    panel = download_panel(
        [data.ticker], column=data.column, cache_dir=data.cache_dir, download=download
    )
    return next(iter(panel.values()))


def _forecast_prices(bundle, data, own_source: bool, download) -> Series:
    if not own_source:
        return load_prices(data, download=download)
    cache_dir = data.cache_dir if data else None
    settings = source_settings(bundle, cache_dir)
    if settings is not None:
        return load_prices(settings, download=download)
    recent = read_recent_prices(bundle)
    if recent is None:
        raise ForecasterError(
            f"Bundle {str(bundle.path)!r} keeps no prices to forecast from: "
            f"{PASS_DATA}."
        )
    return Series.from_source(recent, bundle.metadata.get("source", {}), [])


def _label(prices) -> str:
    """What a plot calls one series: its ticker, file stem or column."""
    source = prices.source
    if source.get("ticker"):
        return source["ticker"]
    if source.get("path"):
        return Path(source["path"]).stem
    return str(source.get("name") or prices.values.name)
