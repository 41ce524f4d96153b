"""The Python API: `Forecaster` (fit, evaluate, forecast, backtest, plot, save), `load`.

    import forecaster as fc
    prices = fc.read_prices("data/AAPL.csv")
    model = fc.Forecaster(cell="gru", window=60).fit(prices)
    model.evaluate()          # model beside naive on the test days
    model.forecast(30)        # dates, forecast, 80% and 95% bands
    model.save("models/aapl-gru")
    fc.load("models/aapl-gru").forecast(10)   # NumPy engine, no TensorFlow

One series is a panel of one: every model is fitted, scored, forecast and
saved through the same steps on a panel (forecaster.prep.panel). Whether the
results read as one series' or as a panel's is decided once, by `is_single`,
and only shapes what the user sees (`_face`).

Learned state ends in an underscore, as in scikit-learn; using a model
before `fit` (or `load`) raises a ForecasterError that says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.config import Settings, check_panel_input, settings_from_keywords
from forecaster.data import read_prices
from forecaster.data.frames import holds_many, panel_from_pandas
from forecaster.data.series import Panel
from forecaster.errors import ForecasterError
from forecaster.evaluate.backtest import walk_forward
from forecaster.evaluate.direction import score_frame
from forecaster.evaluate.evaluation import score_table
from forecaster.evaluate.panel import (
    evaluate_series,
    evaluation_jit,
    panel_summary,
    series_table,
)
from forecaster.forecast.future import (
    forecast_direction,
    forecast_pooled,
    recorded_choices,
)
from forecaster.io import write_directory_atomically
from forecaster.model.choose import ENGINES, make_engine
from forecaster.model.keras_engine import KerasEngine
from forecaster.model.paths import METHODS, check_block
from forecaster.prep.covariates import covariate_names
from forecaster.prep.panel import context_part, prepare_panel
from forecaster.report import figures
from forecaster.store import bundle as store

__all__ = ["Forecaster", "is_single", "load", "read_prices", "settings_from_keywords"]


def is_single(prices, settings: Settings, cutoff=None, covariates=None) -> bool:
    """Whether a model fitted on `prices` reads as one series, not as a panel.

    The one place this is asked. One series (a Series, an OHLCV frame, a
    one-series dict) on its closing prices alone is shown as one series:
    one row of scores, a forecast without a series column, 0.1's bundle
    layout. Several series, a Panel, a long frame, settings that name a
    panel (`Settings.is_panel`: input features beyond close ...), a shared
    `cutoff` or `covariates` make a panel, even of one.
    """
    many = holds_many(prices) or settings.is_panel
    return not (many or cutoff is not None or covariates)


class Forecaster:
    """A stacked LSTM/GRU/SimpleRNN price forecaster with the naive baseline beside it.

    Keyword arguments are the fields of the settings dataclasses
    (forecaster.config): window, horizon, representation, cell, units,
    layers, dropout, epochs, batch_size, patience, seed, ... After `fit`:
    `model_` (Keras), `scaler_`, `history_`, `metrics_`, `intervals_`,
    `prices_` (the series it was given) and `best_epoch_`; for a panel each
    of scaler_, prices_ and intervals_ is a dict by series name.
    """

    def __init__(self, **keywords):
        self.settings = settings_from_keywords(**keywords)
        self.model_ = self.scaler_ = self.prices_ = self.bundle_ = None
        self.single_, self.data_, self._panel, self._engines = True, None, None, {}

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
        jit_compile: bool | None = None,
    ) -> Forecaster:
        """Train on `prices`; score on its test part beside naive. Returns self.

        `prices`: a pandas Series on a DatetimeIndex, a DataFrame with OHLCV
        columns (the price is `column`, else 'Adj Close', else 'Close'), or a
        panel: a dict {name: Series or DataFrame}, a long DataFrame with a
        ticker column, or a forecaster.data.series.Panel. One global model
        learns every series (a single series is a panel of one).
        The oldest `train_fraction` trains (the scaler is fitted there only);
        the rest is the test part; a panel shares one cut-off date.
        `cutoff` (a date) sets the first test day instead, as a panel of
        which this series is part would (it makes a panel of one).
        `covariates` ({name: Series}, e.g. an index or VIX) are past
        covariates fed beside every series (forecaster.prep.covariates).
        `checkpoint_dir` and `resume` make a killed fit resumable.
        `jit_compile` compiles the test-day forecasts with XLA (`adopt`;
        None: only over a long test part).
        With `ray_workers=N` (a panel only) the model trains data-parallel on
        N Ray Train workers (forecaster.distributed.train).
        With objective="direction" the model learns P(the next close is up)
        from one series of closing prices (no panel, cutoff or covariates).
        """
        from forecaster.train.fit import fit_model  # lazy: it imports TensorFlow

        single = is_single(prices, self.settings, cutoff, covariates)
        check_panel_input(self.settings, single, cutoff, covariates)
        panel = panel_from_pandas(prices, column)
        prep = self.settings.prep
        prepared = prepare_panel(
            panel, prep, prep.features, cutoff, covariate_names(covariates)
        )
        parts = list(prepared.parts.values())
        if self.settings.train.ray_workers:
            # lazy: Ray; an upward import, the one pyproject's contract allows
            from forecaster.distributed.train import fit_on_ray

            result = fit_on_ray(parts, self.settings, checkpoint_dir, resume)
        else:
            result = fit_model(parts, self.settings, checkpoint_dir, resume)
        return self.adopt(panel, prepared, result, single, jit_compile)

    def adopt(
        self, panel: Panel, prepared, result, single: bool = True, jit_compile=None
    ) -> Forecaster:
        """Take a trained model as this Forecaster's, scored on the test days.

        `result` is a `train.fit.TrainResult` on `prepared` (a PreparedPanel
        cut from `panel`); `single` as `is_single` decides. Returns self.
        `fit` trains with Keras; the NumPy trainer passes its own weights.
        `jit_compile`: the test-day forecasts run through XLA, faster over a
        long test part only; None chooses by its length
        (`evaluate.panel.evaluation_jit`). A process that trains many models
        in turn (a Ray worker of a fan-out) turns it off, since XLA's
        compilation cache keeps every model's executables for its life.
        """
        jit = evaluation_jit(prepared.parts.values(), jit_compile)
        engine = self._keras_engine(result.model, jit_compile=jit)
        results = evaluate_series(engine, prepared.parts, self.settings.train.calibrate)
        self.single_, self.data_, self._panel = single, panel, prepared
        self.model_, self.bundle_, self._engines = result.model, None, {}
        self.history_ = pd.DataFrame(result.history)
        self.best_epoch_, self.runtime_ = result.best_epoch, result.runtime
        self.default_method_ = next(iter(results.values()))["default_method"]
        self._present(results)
        self.scaler_ = self._face({n: p.scaler for n, p in prepared.parts.items()})
        self.prices_ = self._face({n: panel[n].values for n in prepared.parts})
        self.sources_ = {name: panel[name].source for name in prepared.parts}
        self.metadata_ = store.metadata_for(
            self.settings, panel, prepared, result, single, self.default_method_
        )
        notes = list(panel.notes)
        notes += [n for item in panel.values() for n in item.notes if n not in notes]
        self.notes_ = notes + prepared.notes
        return self

    def _present(self, results: dict) -> None:
        """evaluation_, metrics_ and intervals_ as the user sees them."""
        by_name = results.items()
        self.evaluation_ = self._face(results)
        self.metrics_ = self._face({name: r["metrics"] for name, r in by_name})
        self.intervals_ = self._face({name: r.get("intervals") for name, r in by_name})
        if not self.single_:
            table = series_table(self.metrics_)
            summary = panel_summary(table)
            self.evaluation_ = {"series": results, "table": table, "summary": summary}
            self.metrics_ = {"series": self.metrics_, "panel": summary}

    @property
    def panel_(self):
        """Every series as prepared to forecast from (a prep.panel.PreparedPanel)."""
        if self._panel is None and self.bundle_ is not None:
            self._panel = store.prepared_from_bundle(self.bundle_, self.name)
        return self._panel

    @panel_.setter
    def panel_(self, prepared) -> None:
        self._panel = prepared

    @property
    def is_panel(self) -> bool:
        """Whether this model reads as a panel (one global model over many series)."""
        return not self.single_

    @property
    def is_direction(self) -> bool:
        """Whether this model forecasts P(up) (objective="direction"), not prices."""
        return self.settings.model.objective == "direction"

    # ------------------------------------------------------------ results

    def evaluate(self) -> pd.DataFrame:
        """Test scores beside naive: rows rmse, mae, mape, directional_accuracy.

        A direction model's are beside the base rate: rows brier, log_loss,
        accuracy (beside "always up"). A panel's: one row per series.
        """
        self._check_fitted("evaluate")
        if self.is_direction:
            return score_frame(self.metrics_["direction"])
        if self.is_panel:
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
        samples: int = 512,
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
        upper_80, lower_95, upper_95 (and first a series column for a
        panel: every series in one batched pass). A model trained with a
        probabilistic loss (normal, student-t, quantile) adds a median
        column, and its bands are quantiles of its own distribution: read
        from the head for a direct forecast, else from `samples` paths drawn
        with `seed`.

        A direction model forecasts the next session only, whatever `days`:
        one row, columns date and p_up (the probability that its close is
        above the last one).
        """
        self._check_fitted("forecast")
        return self.forecast_from(
            self._contexts(prices), days, method, horizon, engine, calendar,
            samples, seed,
        )  # fmt: skip

    def forecast_from(
        self,
        parts: dict,
        days: int = 30,
        method: str | None = None,
        horizon: int | None = None,
        engine: str = "auto",
        calendar: str | None = None,
        samples: int = 512,
        seed: int = 0,
        intervals: dict | None = None,
    ) -> pd.DataFrame:
        """`forecast` from `parts` ({name: prep.windows.Prepared}), e.g. new series.

        `intervals`: {name: intervals by method} for those series (default:
        the model's own series').
        """
        calendar = calendar or self.settings.data.calendar
        if self.is_direction:
            part = next(iter(parts.values()))
            return forecast_direction(self.get_engine(engine), part, calendar)
        method = method or self.default_method_
        if method not in METHODS:
            raise ForecasterError(
                f"method must be one of {', '.join(METHODS)}. Received: "
                f"method={method!r}"
            )
        block = check_block(method, horizon, self.settings.prep.horizon)
        by_name = self.series_intervals() if intervals is None else intervals
        chosen = {
            name: one and (one.get(method) or one.get("recursive"))
            for name, one in by_name.items()
        }
        drift, pools = recorded_choices(self.metrics_, parts, self.name, self.is_panel)
        frame, bands = forecast_pooled(
            self.get_engine(engine), parts, days, block, chosen, calendar,
            samples, seed, drift, pools,
        )  # fmt: skip
        frame = frame.drop(columns="series") if self.single_ else frame
        frame.attrs["bands"] = bands  # one line saying whose bands these are
        return frame

    def _contexts(self, prices) -> dict:
        """{name: prep.windows.Prepared} to forecast from: the model's, or `prices`."""
        if prices is None:
            return self.panel_.parts
        if not self.single_:
            raise ForecasterError(
                "prices= is for a one-series model: a panel model forecasts from "
                "the series it was fitted on."
            )
        values = next(iter(panel_from_pandas(prices).values())).values
        rep = self.settings.prep.representation
        return {self.name: context_part(values, self.scaler_, rep)}

    def series_intervals(self) -> dict:
        """{name: that series' intervals by method} (None for a direction model)."""
        if self.single_:
            return {self.name: self.intervals_}
        return dict(self.intervals_ or {})

    def backtest(self, folds: int, prices=None) -> pd.DataFrame:
        """Walk-forward: retrain on `folds` expanding windows, score each next block.

        Uses the prices given to `fit` unless `prices` is given. Returns one
        row per fold and a mean row, model beside naive (for a panel, one row
        per fold and series, and a mean row per fold).
        """
        if prices is None:
            self._check_fitted("backtest")
            if self.bundle_ is not None:
                raise ForecasterError(
                    "backtest needs the whole series: pass prices=, since a loaded "
                    "model keeps only its recent prices."
                )
            panel, single = self.data_, self.single_
        else:
            panel, single = panel_from_pandas(prices), is_single(prices, self.settings)
        return walk_forward(panel, self.settings, folds, single)

    def plot(self, kind: str = "forecast", days: int = 30, ax=None, path=None):
        """Draw the forecast (or the "test" predictions, or the "loss"); a Figure.

        A direction model draws its "reliability" on the test days (or the
        "loss"). Draws on `ax` when given; writes a PNG only when `path` is
        given.
        """
        self._check_fitted("plot")
        return figures.draw(self, kind, days, ax, path)

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

        def write(tmp: Path) -> None:
            store.write_bundle(tmp, self._bundle_parts(), figures.bundle_outputs(self))

        write_directory_atomically(path, write, replace=True, what="bundle")
        return path

    def _bundle_parts(self) -> store.BundleParts:
        results = self.evaluation_["series"] if self.is_panel else None
        results = results or {self.name: self.evaluation_}
        prices_only = not self.is_direction  # a direction model has no price path
        by_step = self.evaluation_.get("by_step") if self.single_ else None
        return store.BundleParts(
            model=self.model_,
            prepared=self.panel_,
            single=self.single_,
            metadata=self.metadata_,
            metrics=self.metrics_,
            intervals=self.intervals_ if prices_only else None,
            predictions={name: r["predictions"] for name, r in results.items()},
            by_step=by_step if prices_only else None,
            history=self.history_,
        )

    # ------------------------------------------------------------ helpers

    def _face(self, by_series: dict):
        """What the user sees of {name: value}: the value itself for one series."""
        return next(iter(by_series.values())) if self.single_ else by_series

    @property
    def _fitted(self) -> bool:
        return self.scaler_ is not None

    def _check_fitted(self, action: str) -> None:
        if not self._fitted:
            raise ForecasterError(
                f"This Forecaster is not fitted yet: call fit(prices) before "
                f"{action}(), or load a saved one with forecaster.load(path)."
            )

    def get_engine(self, engine: str = "auto"):
        """The forecasting engine for `engine` ("auto", "numpy" or "keras"), once."""
        if engine not in self._engines:
            self._engines[engine] = self._make_engine(engine)
        return self._engines[engine]

    def _make_engine(self, engine: str):
        if engine not in ENGINES:
            raise ForecasterError(
                f"engine must be one of {', '.join(ENGINES)}. Received: "
                f"engine={engine!r}"
            )
        if self.model_ is not None and engine != "numpy":
            return self._keras_engine(self.model_, jit_compile=False)
        if self.bundle_ is None:
            raise ForecasterError(
                "engine='numpy' reads a saved model: save() it and load() it first."
            )
        bundle = self.bundle_
        args = (bundle.representation, bundle.window, bundle.horizon)
        return make_engine(bundle.model_path, *args, engine)

    def _keras_engine(self, model, jit_compile: bool):
        """A Keras engine over the in-memory `model` (TensorFlow is loaded by now)."""
        prep = self.settings.prep
        return KerasEngine(
            model, prep.representation, prep.window, prep.horizon, jit_compile
        )

    def test_predictions(self) -> pd.DataFrame | None:
        """The test-day predictions (one series'), or None if there are none."""
        if self.model_ is not None:
            return self.evaluation_.get("predictions")
        return store.read_predictions(self.bundle_)


def load(path) -> Forecaster:
    """A fitted Forecaster from a saved bundle, forecasting with the NumPy engine.

    Importing TensorFlow is left to `forecast(engine="keras")`; a model with
    layers the NumPy engine lacks falls back to Keras by itself.
    """
    bundle = store.load_bundle(path)
    model = Forecaster.from_settings(bundle.settings)
    model.bundle_, model.single_ = bundle, bundle.single
    model.scaler_ = bundle.scaler
    model.metrics_ = bundle.metrics
    model.intervals_ = bundle.intervals
    model.metadata_ = bundle.metadata
    model.default_method_ = bundle.metadata.get("default_method", "recursive")
    model.history_ = store.read_history(bundle)
    model.best_epoch_ = bundle.metadata.get("training", {}).get("best_epoch")
    model.notes_ = []
    model.prices_ = store.read_recent_prices(bundle) if bundle.single else None
    return model
