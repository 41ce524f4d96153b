"""The Python API: `Forecaster` (fit, evaluate, forecast, backtest, plot, save), `load`.

    import forecaster as fc
    prices = fc.read_prices("data/AAPL.csv")
    model = fc.Forecaster(cell="gru", window=60).fit(prices)
    model.evaluate()          # model beside naive on the test days
    model.forecast(30)        # dates, forecast, 80% and 95% bands
    model.save("models/aapl-gru")
    fc.load("models/aapl-gru").forecast(10)   # NumPy engine, no TensorFlow

Learned state ends in an underscore, as in scikit-learn; using a model
before `fit` (or `load`) raises a ForecasterError that says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd

from forecaster.config import Settings, direction_panel_error
from forecaster.data import Prices, load_prices
from forecaster.data.frames import prices_from_pandas
from forecaster.errors import ForecasterError
from forecaster.forecast.future import forecast_direction, forecast_future
from forecaster.model.paths import METHODS, check_block
from forecaster.store import bundle as bundle_io

PLOTS = ("forecast", "test", "loss", "reliability")


def settings_from_keywords(**keywords) -> Settings:
    """Settings from flat keywords (cell="gru", window=60, ...), validated.

    Each keyword is a field of one of the settings dataclasses in
    forecaster.config; an unknown keyword gets an error listing the valid ones.
    """
    settings = Settings()
    owners = {
        f.name: part
        for part in ("prep", "model", "train", "data")
        for f in dataclasses.fields(getattr(settings, part))
    }
    unknown = sorted(set(keywords) - set(owners))
    if unknown:
        raise ForecasterError(
            f"Unknown keyword argument(s) {', '.join(unknown)}: valid ones are "
            f"{', '.join(sorted(owners))}."
        )
    for name, value in keywords.items():
        setattr(getattr(settings, owners[name]), name, value)
    return settings.validate()


def read_prices(
    source: str | Path,
    column: str | None = None,
    start: str | None = None,
    end: str | None = None,
    cache_dir: str = "data/cache",
    decimal: str = ".",
) -> pd.Series:
    """Daily prices from a CSV path or a ticker symbol, as a float64 Series.

    A path to an existing file (or one ending in .csv) is read as a CSV;
    anything else is taken as a symbol and downloaded with yfinance (cached
    in `cache_dir`). `decimal=","` reads a semicolon-separated CSV with
    decimal commas. The Series is named after its price column and keeps
    where it came from in `series.attrs["source"]`.
    """
    from forecaster.config import DataSettings

    text = str(source)
    is_file = Path(text).exists() or text.lower().endswith(".csv")
    settings = DataSettings(
        csv=text if is_file else None,
        ticker=None if is_file else text,
        start=start,
        end=end,
        column=column,
        cache_dir=cache_dir,
        decimal=decimal,
    )
    prices = load_prices(settings)
    series = prices.values.copy()
    series.attrs["source"] = prices.source
    return series


class Forecaster:
    """A stacked LSTM/GRU/SimpleRNN price forecaster with the naive baseline beside it.

    Keyword arguments are the fields of the settings dataclasses
    (forecaster.config): window, horizon, representation, cell, units,
    layers, dropout, epochs, batch_size, patience, seed, ... After `fit`:
    `model_` (Keras), `scaler_`, `history_`, `metrics_`, `intervals_`,
    `prices_` (the series it was given) and `best_epoch_`.
    """

    def __init__(self, **keywords):
        self.settings = settings_from_keywords(**keywords)
        self.model_ = None
        self.scaler_ = None
        self.prices_ = None
        self.bundle_ = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Forecaster:
        """A Forecaster for settings already built (as the command line does)."""
        model = cls()
        model.settings = settings.validate()
        return model

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params(changed_only=True).items()
        )
        state = "fitted" if self._fitted else "not fitted"
        return f"Forecaster({args})  # {state}"

    def get_params(self, changed_only: bool = False) -> dict:
        """The flat keyword arguments this Forecaster was built with."""
        default = Settings().to_dict()
        params = {}
        for part, fields in self.settings.to_dict().items():
            if part == "data":
                continue
            for name, value in fields.items():
                if not changed_only or default[part][name] != value:
                    params[name] = value
        return params

    # ------------------------------------------------------------ learning

    def fit(
        self,
        prices,
        column: str | None = None,
        *,
        cutoff=None,
        covariates: dict | None = None,
        checkpoint_dir=None,
        resume: bool = False,
    ) -> Forecaster:
        """Train on `prices`; score on its test part beside naive. Returns self.

        `prices`: a pandas Series on a DatetimeIndex, a DataFrame with OHLCV
        columns (the price is `column`, else 'Adj Close', else 'Close'), or a
        panel: a dict {name: Series or DataFrame}, a long DataFrame with a
        ticker column, or a forecaster.data.panel.Panel. A panel (or any
        `features` beyond close) trains one global model on every series.
        The oldest `train_fraction` trains (the scaler is fitted there only);
        the rest is the test part; a panel shares one cut-off date.
        `cutoff` (a date) sets the first test day instead, as a panel of
        which this series is part would (it makes a panel of one).
        `covariates` ({name: Series}, e.g. an index or VIX) are past
        covariates fed beside every series (forecaster.prep.covariates).
        `checkpoint_dir` and `resume` make a killed fit resumable.
        With objective="direction" the model learns P(the next close is up)
        from one series of closing prices (no panel, cutoff or covariates).
        """
        from forecaster.prep.windows import prepare
        from forecaster.train.fit import fit_model

        if (
            _is_panel(prices)
            or self.settings.prep.features != "close"
            or cutoff is not None
            or covariates
        ):
            if self.is_direction:
                raise direction_panel_error(_panel_reason(cutoff, covariates))
            return self._fit_panel(
                prices, column, cutoff, covariates, checkpoint_dir, resume
            )
        series = _as_prices(prices, column)
        prepared = prepare(series.values, self.settings.prep)
        result = fit_model(prepared, self.settings, checkpoint_dir, resume)
        return self._adopt(series, prepared, result)

    def _adopt(self, series: Prices, prepared, result) -> Forecaster:
        """Take a trained model (a `training.TrainResult` on `prepared`, cut
        from `series`) as this Forecaster's, scored on the test part. Returns
        self. `fit` trains with Keras; `nptrain` passes NumPy-trained weights.
        """
        from forecaster.evaluate.evaluation import evaluate
        from forecaster.model.keras_engine import KerasEngine

        prep = self.settings.prep
        engine = KerasEngine(
            result.model, prep.representation, prep.window, prep.horizon
        )
        evaluation = evaluate(engine, prepared, self.settings.train.calibrate)
        self.model_, self.scaler_, self.prices_ = (
            result.model,
            prepared.scaler,
            (series.values),
        )
        self.history_ = pd.DataFrame(result.history)
        self.best_epoch_ = result.best_epoch
        self.metrics_ = evaluation["metrics"]
        self.intervals_ = evaluation["intervals"]
        self.evaluation_ = evaluation
        self.default_method_ = evaluation["default_method"]
        self.metadata_ = _metadata(self.settings, series, prepared, result)
        self.metadata_["default_method"] = self.default_method_
        self.notes_ = list(series.notes)
        self.bundle_ = None
        self._engines = {}
        return self

    def _fit_panel(self, prices, column, cutoff, covariates, checkpoint_dir, resume):
        """One global model over every series of a panel, scored per series."""
        from forecaster.data.panel import Panel, panel_from_pandas
        from forecaster.model.keras_engine import KerasEngine
        from forecaster.prep.panel import evaluate_panel, prepare_panel
        from forecaster.train.fit import fit_model

        if isinstance(prices, pd.DataFrame) and _is_panel(prices):
            prices = _split_long_frame(prices)
        panel = (
            prices if isinstance(prices, Panel) else panel_from_pandas(prices, column)
        )
        prep = self.settings.prep
        if covariates:
            covariates = {
                name if str(name).startswith("cov_") else f"cov_{name}": values
                for name, values in covariates.items()
            }
        prepared = prepare_panel(panel, prep, prep.features, cutoff, covariates)
        parts = prepared.parts
        result = fit_model(list(parts.values()), self.settings, checkpoint_dir, resume)
        engine = KerasEngine(
            result.model, prep.representation, prep.window, prep.horizon
        )
        evaluation = evaluate_panel(engine, prepared, self.settings.train.calibrate)
        self.model_, self.panel_ = result.model, prepared
        self.scaler_ = {name: part.scaler for name, part in parts.items()}
        self.prices_ = {name: panel[name].values for name in parts}
        self.sources_ = {name: panel[name].source for name in parts}
        self.runtime_ = result.runtime
        self.history_ = pd.DataFrame(result.history)
        self.best_epoch_ = result.best_epoch
        series = evaluation["series"]
        self.metrics_ = {
            "series": {name: e["metrics"] for name, e in series.items()},
            "panel": evaluation["summary"],
        }
        self.intervals_ = {name: e["intervals"] for name, e in series.items()}
        self.evaluation_ = evaluation
        first = next(iter(series.values()))
        self.default_method_ = first["default_method"]
        self.metadata_ = {"source": {"kind": "panel", "series": list(parts)}}
        self.notes_ = list(panel.notes) + prepared.notes
        self.bundle_ = None
        self._engines = {}
        return self

    @property
    def is_panel(self) -> bool:
        """Whether this model was fitted on a panel (one global model)."""
        return getattr(self, "panel_", None) is not None

    @property
    def is_direction(self) -> bool:
        """Whether this model forecasts P(up) (objective="direction"), not prices."""
        return self.settings.model.objective == "direction"

    # ------------------------------------------------------------ results

    def evaluate(self) -> pd.DataFrame:
        """Test scores beside naive: rows rmse, mae, mape, directional_accuracy.

        A direction model's are beside the base rate: rows brier, log_loss,
        accuracy (beside "always up").
        """
        from forecaster.evaluate.evaluation import score_table

        self._check_fitted("evaluate")
        if self.is_direction:
            from forecaster.evaluate.direction import score_frame

            return score_frame(self.metrics_["direction"])
        if self.is_panel:
            from forecaster.prep.panel import series_table

            return series_table(self.metrics_["series"])
        return score_table(self.metrics_)

    def forecast(
        self,
        days: int = 30,
        prices=None,
        method: str | None = None,
        horizon: int | None = None,
        engine: str = "auto",
        calendar: str | None = None,
        samples: int = 1000,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Forecast `days` trading days past the last price, with 80%/95% bands.

        From the prices it was fitted on (or, once loaded, the recent prices
        kept in its bundle), or from `prices` (newer prices of the same
        series). `method`: "recursive" or "direct" (default: direct when
        trained with horizon > 1); `horizon`: steps kept per model call with
        the direct method. Dates are the sessions of the exchange `calendar`
        (an exchange_calendars code; default: the one the model was trained
        with, XNYS unless set). Returns columns date, forecast, lower_80,
        upper_80, lower_95, upper_95. A model trained with a probabilistic
        loss (normal, student-t, quantile) adds a median column, and its bands
        are quantiles of its own distribution: read from the head for a
        direct forecast, else from `samples` paths drawn with `seed`.

        A direction model forecasts the next session only, whatever `days`:
        one row, columns date and p_up (the probability that its close is
        above the last one).
        """
        self._check_fitted("forecast")
        if self.is_panel:
            return self._forecast_panel(days, prices, engine, calendar, samples, seed)
        if self.is_direction:
            return forecast_direction(
                self._engine(engine),
                self._history(prices),
                self.scaler_,
                calendar or self.settings.data.calendar,
            )
        values = self._history(prices)
        method = method or self.default_method_
        if method not in METHODS:
            raise ForecasterError(
                f"method must be one of {', '.join(METHODS)}. Received: "
                f"method={method!r}"
            )
        block = check_block(method, horizon, self.settings.prep.horizon)
        intervals = self.intervals_ or {}
        return forecast_future(
            self._engine(engine),
            values,
            self.scaler_,
            days,
            method,
            intervals.get(method) or intervals.get("recursive"),
            block=block,
            calendar=calendar or self.settings.data.calendar,
            samples=samples,
            seed=seed,
        )

    def _forecast_panel(
        self, days, prices, engine, calendar, samples, seed
    ) -> pd.DataFrame:
        from forecaster.forecast.future import forecast_panel

        if prices is not None:
            raise ForecasterError(
                "prices= is for a one-series model: a panel model forecasts from "
                "the series it was fitted on."
            )
        method = self.default_method_
        intervals = {name: i[method] for name, i in self.intervals_.items()}
        return forecast_panel(
            self._engine(engine),
            self.panel_.parts,
            days,
            method,
            intervals,
            calendar or self.settings.data.calendar,
            samples,
            seed,
        )

    def backtest(self, folds: int, prices=None) -> pd.DataFrame:
        """Walk-forward: retrain on `folds` expanding windows, score each next block.

        Uses the prices given to `fit` unless `prices` is given. Returns one
        row per fold and a mean row, model beside naive.
        """
        from forecaster.evaluate.backtest import walk_forward

        if prices is None:
            self._check_fitted("backtest")
            if self.bundle_ is not None:
                raise ForecasterError(
                    "backtest needs the whole series: pass prices=, since a loaded "
                    "model keeps only its recent prices."
                )
            values = self.prices_
        else:
            values = _as_prices(prices, None).values
        return walk_forward(values, self.settings, folds)

    def plot(self, kind: str = "forecast", days: int = 30, ax=None, path=None):
        """Draw the forecast (or the "test" predictions, or the "loss"); a Figure.

        A direction model draws its "reliability" on the test days (or the
        "loss"). Draws on `ax` when given; writes a PNG only when `path` is
        given.
        """
        from forecaster.report import plots as plotting

        self._check_fitted("plot")
        if kind not in PLOTS:
            raise ForecasterError(
                f"kind must be one of {', '.join(PLOTS)}. Received: kind={kind!r}"
            )
        if kind == "loss":
            return plotting.plot_loss(self.history_, self.best_epoch_, path, ax)
        if kind == "reliability" or self.is_direction:
            return self._plot_reliability(kind, path, ax)
        test = self._test_predictions()
        if kind == "test":
            if test is None:
                raise ForecasterError("This model has no test predictions to plot.")
            return plotting.plot_test(
                test,
                self.name,
                self.metrics_["model"]["rmse"],
                self.metrics_["naive"]["rmse"],
                path,
                ax,
            )
        frame = self.forecast(days)
        title = f"{self.name}: {days}-day forecast ({self.settings.model.cell})"
        return plotting.plot_forecast(self._history(None), frame, title, test, path, ax)

    def _plot_reliability(self, kind: str, path, ax):
        """A direction model's reliability diagram on the test days."""
        from forecaster.report import plots as plotting

        if not self.is_direction:
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
        table = pd.DataFrame(self.metrics_["reliability"]).astype(float)
        title = f"{self.name}: reliability of P(up) on the test days"
        return plotting.plot_reliability(table, ax, path, title)

    @property
    def name(self) -> str:
        """What the series is called: its ticker, file stem or Series name."""
        source = (self.metadata_ or {}).get("source", {}) if self._fitted else {}
        if source.get("ticker"):
            return source["ticker"]
        if source.get("path"):
            return Path(source["path"]).stem
        return str(source.get("name") or "prices")

    # ------------------------------------------------------------ saving

    def save(self, path, force: bool = False) -> Path:
        """Write the bundle directory atomically; an existing one only with force."""
        self._check_fitted("save")
        if self.model_ is None:
            raise ForecasterError(
                "save needs a model fitted in this session: a loaded model is "
                f"already saved at {str(self.bundle_.path)!r}."
            )
        path = Path(path)
        if path.exists() and not force:
            raise ForecasterError(
                f"{str(path)!r} already exists: pass force=True to replace it (the "
                "old one is kept until the new one is complete), or choose another "
                "path."
            )
        write = self._write_panel if self.is_panel else self._write
        bundle_io.write_directory_atomically(path, write, replace=True, what="bundle")
        return path

    def _write_panel(self, tmp: Path) -> None:
        from forecaster.prep import panel as panels
        from forecaster.report import plots as plotting

        prepared, prep = self.panel_, self.settings.prep
        metadata = {
            "format_version": bundle_io.FORMAT_VERSION,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "source": {"kind": "panel", "series": list(prepared.parts)},
            "panel": {
                "series": list(prepared.parts),
                "cutoff": f"{prepared.cutoff:%Y-%m-%d}",
                "features": list(prepared.features),
                "inputs": next(iter(prepared.parts.values())).extra_names,
                "sources": self.sources_,
            },
            "settings": self.settings.to_dict(),
            "training": {
                "epochs_run": len(self.history_),
                "best_epoch": self.best_epoch_,
                "runtime": self.runtime_,
            },
            "default_method": self.default_method_,
            "versions": bundle_io.library_versions(),
        }
        bundle_io.write_panel_parts(
            tmp,
            model=self.model_,
            scalers=panels.scaler_dicts(prepared),
            metadata=metadata,
            metrics=self.metrics_,
            intervals=self.intervals_,
            predictions=panels.long_predictions(self.evaluation_),
            history=self.history_,
            recent=panels.recent_rows(prepared, prep.window),
        )
        plotting.plot_loss(self.history_, self.best_epoch_, tmp / "loss.png")
        from forecaster.report.html import build_report

        build_report(tmp)
        bundle_io.write_manifest(tmp)  # last: it lists every file written above

    def _write(self, tmp: Path) -> None:
        from forecaster.report import plots as plotting

        evaluation, metrics = self.evaluation_, self.metrics_
        prices_only = not self.is_direction  # a direction model has no price path
        bundle_io.write_parts(
            tmp,
            model=self.model_,
            scaler=self.scaler_.to_dict(),
            metadata=self.metadata_,
            metrics=metrics,
            intervals=self.intervals_ if prices_only else None,
            predictions=evaluation["predictions"],
            by_step=evaluation["by_step"] if prices_only else None,
            history=self.history_,
            recent=self.prices_.iloc[-self.settings.prep.window :],
        )
        plotting.plot_loss(self.history_, self.best_epoch_, tmp / "loss.png")
        if self.is_direction:
            self._plot_reliability("reliability", tmp / "reliability.png", None)
        else:
            plotting.plot_test(
                evaluation["predictions"],
                self.name,
                metrics["model"]["rmse"],
                metrics["naive"]["rmse"],
                tmp / "test_predictions.png",
            )
        from forecaster.report.html import build_report

        build_report(tmp, prices=self.prices_)
        bundle_io.write_manifest(tmp)  # last: it lists every file written above

    # ------------------------------------------------------------ helpers

    @property
    def _fitted(self) -> bool:
        return self.scaler_ is not None

    def _check_fitted(self, action: str) -> None:
        if not self._fitted:
            raise ForecasterError(
                f"This Forecaster is not fitted yet: call fit(prices) before "
                f"{action}(), or load a saved one with forecaster.load(path)."
            )

    def _history(self, prices) -> pd.Series:
        if prices is not None:
            return _as_prices(prices, None).values
        if self.prices_ is not None:
            return self.prices_
        return bundle_io.source_prices(self.bundle_)

    def _engine(self, engine: str):
        """The engine for `engine` ("auto", "numpy" or "keras"), built once."""
        cache = self.__dict__.setdefault("_engines", {})
        if engine not in cache:
            cache[engine] = self._make_engine(engine)
        return cache[engine]

    def _make_engine(self, engine: str):
        from forecaster.model.choose import ENGINES, make_engine
        from forecaster.model.keras_engine import KerasEngine

        if engine not in ENGINES:
            raise ForecasterError(
                f"engine must be one of {', '.join(ENGINES)}. Received: "
                f"engine={engine!r}"
            )
        if self.model_ is not None and engine != "numpy":
            prep = self.settings.prep
            return KerasEngine(
                self.model_,
                prep.representation,
                prep.window,
                prep.horizon,
                jit_compile=False,
            )
        if self.bundle_ is None:
            raise ForecasterError(
                "engine='numpy' reads a saved model: save() it and load() it first."
            )
        b = self.bundle_
        return make_engine(b.model_path, b.representation, b.window, b.horizon, engine)

    def _test_predictions(self) -> pd.DataFrame | None:
        if self.model_ is not None:
            return self.evaluation_["predictions"]
        file = self.bundle_.path / "test_predictions.csv"
        return pd.read_csv(file) if file.exists() else None


def load(path) -> Forecaster:
    """A fitted Forecaster from a saved bundle, forecasting with the NumPy engine.

    Importing TensorFlow is left to `forecast(engine="keras")`; a model with
    layers the NumPy engine lacks falls back to Keras by itself.
    """
    from forecaster.prep import panel as panels

    bundle = bundle_io.load_bundle(path)
    model = Forecaster.from_settings(bundle.settings)
    model.bundle_ = bundle
    model.scaler_ = bundle.scaler
    model.metrics_ = bundle.metrics
    model.intervals_ = bundle.intervals
    model.metadata_ = bundle.metadata
    model.default_method_ = bundle.metadata.get("default_method", "recursive")
    model.history_ = bundle_io.read_history(bundle)
    model.best_epoch_ = bundle.metadata.get("training", {}).get("best_epoch")
    model.notes_ = []
    if "panel" in bundle.metadata:
        recent = bundle_io.read_panel_recent(bundle)
        model.panel_, model.prices_ = panels.from_bundle(bundle, recent), None
    else:
        model.prices_ = bundle_io.read_recent_prices(bundle)
    return model


def _is_panel(prices) -> bool:
    """Whether `prices` holds several series (or is a Panel, or a long frame)."""
    from forecaster.data.panel import Panel

    if isinstance(prices, Panel):
        return True
    if isinstance(prices, dict):
        return len(prices) > 1
    if isinstance(prices, pd.DataFrame):
        names = {str(c).strip().lower() for c in prices.columns}
        return bool(names & {"ticker", "symbol", "name"})
    return False


def _panel_reason(cutoff, covariates) -> str:
    """What made `fit` take the panel path, for the direction model's error."""
    if cutoff is not None:
        return f"cutoff={str(cutoff)!r}"
    if covariates:
        return f"covariates={sorted(str(name) for name in covariates)}"
    return "prices holding several series"


def _split_long_frame(frame: pd.DataFrame) -> dict:
    """A long frame (date, ticker, prices...) as {ticker: its rows}."""
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    column = next(by_lower[n] for n in ("ticker", "symbol", "name") if n in by_lower)
    return {
        str(name): rows.drop(columns=[column])
        for name, rows in frame.groupby(column, sort=False)
    }


def _as_prices(prices, column) -> Prices:
    if isinstance(prices, Prices):
        return prices
    if isinstance(prices, dict):
        if len(prices) != 1:
            raise ForecasterError(
                f"prices must hold one series here. Received: {len(prices)} series"
            )
        [(name, data)] = prices.items()
        return prices_from_pandas(data, column, name=str(name))
    return prices_from_pandas(prices, column)


def _metadata(settings: Settings, prices: Prices, prepared, result) -> dict:
    split = prepared.split
    return {
        "format_version": bundle_io.FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": prices.source,
        "column": prices.source.get("column", prices.values.name),
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
            "runtime": result.runtime,
        },
        "versions": bundle_io.library_versions(),
    }
