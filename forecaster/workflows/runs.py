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

from forecaster.config import DataSettings, ForecastSettings, Settings, check_at_least
from forecaster.data import SAMPLE_CSV, load_prices
from forecaster.errors import ForecasterError
from forecaster.store import bundle as bundle_io

log = logging.getLogger("forecaster")

DEFAULT_BUNDLE = ForecastSettings().model  # what the default train.py writes


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
    from forecaster.data.panel import is_long_format

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
        from forecaster.report.tables import training_summary

        return training_summary(self.metrics, self.table)


def _refuse_existing(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise ForecasterError(
            f"{str(out)!r} already exists: add --force to replace it (the old one is "
            "kept until the new one is complete), or choose another --out."
        )


def run_training(
    settings: Settings,
    out: Path | None = None,
    force: bool = False,
    resume: bool = False,
    download=None,
) -> TrainReport:
    """Train on the configured data and write a complete bundle to `out` atomically."""
    from forecaster.lock import hold

    settings.validate()
    out = Path(out) if out else default_out(settings)

    with hold(out, "bundle"):  # one run per bundle, from here to the saved bundle
        return _train_holding_lock(settings, out, force, resume, download)


def _train_holding_lock(settings, out, force, resume, download) -> TrainReport:
    from forecaster.api import Forecaster
    from forecaster.io import recover
    from forecaster.train.checkpoint import discard_checkpoint

    recover(out, "bundle")  # a save killed mid-swap leaves its old bundle aside
    recover(checkpoint_dir_for(out), "checkpoint")
    _refuse_existing(out, force or resume)
    if is_panel_run(settings):
        return _run_panel_training(settings, out, resume, download)
    prices = load_prices(settings.data, download=download)
    _warn_calendar_mismatch(prices, settings)
    checkpoint = checkpoint_dir_for(out)
    if checkpoint.exists() and not resume:
        log.warning(
            "an interrupted run's checkpoint at %s is replaced: use --resume to "
            "continue a killed run instead",
            checkpoint,
        )
        discard_checkpoint(checkpoint)
    model = Forecaster.from_settings(settings)
    model.fit(prices, checkpoint_dir=checkpoint, resume=resume)
    model.save(out, force=True)
    discard_checkpoint(checkpoint)
    return TrainReport(out, model.evaluation_["table"], model.metrics_, prices.notes)


def load_panel_data(settings: Settings, download=None):
    """The panel the settings name: several CSVs, a folder, a long file, symbols."""
    from forecaster.data.panel import load_panel

    data = settings.data
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


def _run_panel_training(settings, out: Path, resume: bool, download) -> TrainReport:
    """One global model over the panel, saved as one bundle with every series."""
    from forecaster.api import Forecaster
    from forecaster.prep.panel import format_panel
    from forecaster.train.checkpoint import discard_checkpoint

    panel = load_panel_data(settings, download)
    checkpoint = checkpoint_dir_for(out)
    if checkpoint.exists() and not resume:
        discard_checkpoint(checkpoint)
    from forecaster.prep.covariates import read_covariates

    covariates = read_covariates(settings.data.covariate)
    model = Forecaster.from_settings(settings)
    model.fit(panel, covariates=covariates, checkpoint_dir=checkpoint, resume=resume)
    model.save(out, force=True)
    discard_checkpoint(checkpoint)
    text = format_panel(model.evaluation_["table"], model.metrics_["panel"])
    return TrainReport(out, text, model.metrics_, model.notes_)


def run_backtest(
    settings: Settings,
    folds: int,
    out: Path | None = None,
    force: bool = False,
    download=None,
) -> tuple[Path, pd.DataFrame]:
    """Walk-forward backtest of the configured data; writes backtest.csv and .png."""
    from forecaster.evaluate.backtest import walk_forward

    settings.validate()
    check_at_least("folds", folds)
    default = default_out(settings)
    out = Path(out) if out else default.with_name(default.name + "-backtest")
    _refuse_existing(out, force)
    if is_panel_run(settings):
        from forecaster.evaluate.backtest import walk_forward_panel

        table = walk_forward_panel(load_panel_data(settings, download), settings, folds)
    else:
        prices = load_prices(settings.data, download=download)
        _warn_calendar_mismatch(prices, settings)
        table = walk_forward(prices.values, settings, folds)

    def write(tmp: Path) -> None:
        from forecaster.report import plots as plotting

        table.to_csv(tmp / "backtest.csv", index=False)
        title = f"{source_name(settings)} walk-forward, {folds} folds"
        if "series" not in table:  # a panel's folds are in backtest.csv only
            plotting.plot_backtest(table.iloc[:-1], title, tmp / "backtest.png")

    bundle_io.write_directory_atomically(out, write, replace=True, what="backtest")
    return out, table


def _warn_calendar_mismatch(prices, settings: Settings) -> None:
    """One warning when the history's dates disagree with the trading calendar."""
    from forecaster.data.calendars import check_history

    mismatch = check_history(prices.values.index, settings.data.calendar)
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
    samples: int = 1000,
    seed: int = 0,
) -> ForecastReport:
    """Load a bundle, read the latest prices, forecast `days` ahead, write CSV and PNG.

    A panel bundle forecasts every series (or those named in `series`) in one
    batched pass, from the recent days saved with it, into one long
    forecast.csv and a grid of small plots (forecast.png, forecast-2.png ...).

    The prices come from the bundle's own source (or, for a model fitted on
    prices in memory, the recent prices saved with it) unless `data` names a
    CSV or a ticker. Files go into the bundle directory unless `out` is
    given, with report.html refreshed; all three are replaced only once all
    are complete, so a failed run leaves an earlier forecast as it was.
    Dates are the sessions of `calendar`, by default the bundle's. A
    probabilistic model's bands come from its own distribution (`samples`
    paths drawn with `seed` for a recursive forecast), with a median column.
    A direction bundle (objective="direction") writes forecast.csv with the
    next session's P(up) and report.html, and no plot (`_forecast_direction`).
    """
    from forecaster.api import load
    from forecaster.data.calendars import validate_calendar
    from forecaster.report.html import REPORT_FILE, build_report

    if days is not None:
        check_at_least("days", days)
    check_at_least("samples", samples)
    if calendar is not None:  # a bad calendar fails before anything is read
        calendar = validate_calendar(calendar)
    model = load(model_dir or DEFAULT_BUNDLE)
    if model.is_direction and days not in (None, 1):
        log.info(
            "days=%d is not used: a direction model gives P(up) for the next "
            "session only",
            days,
        )
    if days is None:
        days = _default_days(model)
    own_source = data is None or not (data.csv or data.ticker)
    if model.is_panel:
        draws = {"samples": samples, "seed": seed}
        return _forecast_panel(
            model, days, engine, data, out, calendar, series, download, draws
        )
    prices = _forecast_prices(model.bundle_, data, own_source, download)
    if model.is_direction:
        return _forecast_direction(model, prices, engine, out, own_source, calendar)
    method = method or model.default_method_
    frame = model.forecast(
        days, prices.values, method, block, engine, calendar, samples, seed
    )
    engine_name = model._engine(engine).name
    test = model._test_predictions() if own_source else None
    out_dir = Path(out) if out else model.bundle_.path
    title = (
        f"{_prices_name(prices)}: {days}-day {method} forecast "
        f"({model.settings.model.cell}, {engine_name} engine)"
    )
    csv, png = out_dir / "forecast.csv", out_dir / "forecast.png"
    html = out_dir / REPORT_FILE

    def draw(tmp: Path) -> None:
        from forecaster.report.plots import plot_forecast

        plot_forecast(prices.values, frame, title, test, path=tmp)

    def report(tmp: Path) -> None:
        build_report(model.bundle_.path, prices.values, frame, tmp, own_source)

    bundle_io.write_files_atomically(
        {csv: lambda tmp: frame.to_csv(tmp, index=False), png: draw, html: report}
    )
    return ForecastReport(
        csv, png, html, engine_name, method, frame, prices.last_date, prices.notes
    )


def _forecast_direction(model, prices, engine, out, own_source, calendar):
    """A direction bundle's forecast: the next session's P(up), in forecast.csv."""
    from forecaster.report.html import REPORT_FILE, build_report

    frame = model.forecast(prices=prices.values, engine=engine, calendar=calendar)
    out_dir = Path(out) if out else model.bundle_.path
    csv, html = out_dir / "forecast.csv", out_dir / REPORT_FILE

    def report(tmp: Path) -> None:
        build_report(model.bundle_.path, prices.values, frame, tmp, own_source)

    bundle_io.write_files_atomically(
        {csv: lambda tmp: frame.to_csv(tmp, index=False), html: report}
    )
    return ForecastReport(
        csv,
        None,
        html,
        model._engine(engine).name,
        model.default_method_,
        frame,
        prices.last_date,
        prices.notes,
        base_rate=model.metrics_["direction"]["base_rate"],
    )


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


def _forecast_panel(model, days, engine, data, out, calendar, series, download, draws):
    """A panel bundle's forecast: one long CSV and a grid of small plots.

    From the recent days saved with it (every series, or those in `series`),
    or from `data` (one CSV or ticker: a series of the panel or a new one).
    `draws`: samples and seed of a probabilistic model's forecast.
    """
    from forecaster.forecast.future import forecast_panel
    from forecaster.prep import panel as panels
    from forecaster.report import plots as plotting

    notes = []
    if data is not None and (data.csv or data.ticker):
        item = _new_series(data, download)
        parts, intervals, notes = panels.prepare_new_series(item, model)
        frame = forecast_panel(
            model._engine(engine),
            parts,
            days,
            model.default_method_,
            intervals,
            calendar or model.settings.data.calendar,
            **draws,
        )
    else:
        if series:
            model.panel_ = model.panel_.select(series)
        parts = model.panel_.parts
        frame = model.forecast(days, engine=engine, calendar=calendar, **draws)
    out_dir = Path(out) if out else model.bundle_.path
    history = {
        name: pd.Series(part.prices, index=part.dates) for name, part in parts.items()
    }
    title = f"{days}-day forecast of {frame['series'].nunique()} series"
    writers = {out_dir / "forecast.csv": lambda tmp: frame.to_csv(tmp, index=False)}
    for page in range(plotting.grid_pages(frame)):
        name = "forecast.png" if page == 0 else f"forecast-{page + 1}.png"

        def draw(tmp, page=page):
            fig = plotting.plot_panel_grid(history, frame, title, page)
            fig.savefig(tmp, dpi=110, format="png")

        writers[out_dir / name] = draw
    html = None
    if data is None or not (data.csv or data.ticker):  # the panel's own series
        from forecaster.report.html import REPORT_FILE, build_report

        html = out_dir / REPORT_FILE
        writers[html] = lambda tmp: build_report(
            model.bundle_.path, forecast=frame, path=tmp
        )
    bundle_io.write_files_atomically(writers)
    last = max(part.dates[-1] for part in parts.values())
    return ForecastReport(
        out_dir / "forecast.csv",
        out_dir / "forecast.png",
        html,
        model._engine(engine).name,
        model.default_method_,
        frame,
        f"{last:%Y-%m-%d}",
        notes,
    )


def _new_series(data: DataSettings, download):
    """The one series named by --csv or --ticker, with its OHLCV columns."""
    from forecaster.data.panel import download_panel, read_series_csv

    if data.csv:
        return read_series_csv(data.csv, column=data.column)
    panel = download_panel(
        [data.ticker], column=data.column, cache_dir=data.cache_dir, download=download
    )
    return next(iter(panel.values()))


def _forecast_prices(bundle, data, own_source: bool, download):
    from forecaster.data import Prices

    if not own_source:
        return load_prices(data, download=download)
    cache_dir = data.cache_dir if data else None
    settings = bundle_io.source_settings(bundle, cache_dir)
    if settings is not None:
        return load_prices(settings, download=download)
    recent = bundle_io.read_recent_prices(bundle)
    if recent is None:
        raise ForecasterError(
            f"Bundle {str(bundle.path)!r} keeps no prices to forecast from: pass "
            "--csv or --ticker."
        )
    return Prices(recent, bundle.metadata.get("source", {}), [])


def _prices_name(prices) -> str:
    source = prices.source
    if source.get("ticker"):
        return source["ticker"]
    if source.get("path"):
        return Path(source["path"]).stem
    return str(source.get("name") or prices.values.name)
