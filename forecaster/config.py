"""Settings as dataclasses: what to load, how to window, what to build, how to train.

Every field has a default; the command line overrides them and the saved bundle
records them, so a forecast rebuilds exactly the pipeline that was trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from forecaster.errors import ForecasterError

CELLS = ("lstm", "gru", "rnn")
REPRESENTATIONS = ("level", "delta", "log-delta")
RANGE_FEATURES = ("parkinson", "garman_klass", "rogers_satchell", "yang_zhang")
#   per-day range variance estimators (forecaster.prep.ranges), as log volatility
FEATURES = (
    "close",
    "range",
    "gap",
    "volume",
    "return",
    "vol_return",
    *RANGE_FEATURES,
)
#   inputs per day (forecaster.prep.features computes them)
LOSSES = ("mse", "normal", "student-t", "quantile")  # heads (forecaster.model.heads)
OBJECTIVES = ("price", "direction")
DECIMALS = (".", ",")  # "," means semicolon-separated cells with decimal commas


@dataclass
class DataSettings:
    """Where the prices come from."""

    csv: str | list[str] | None = None  # a CSV path, or several for a panel (one
    #   series each, or one long file with a ticker column); None = the sample
    ticker: str | list[str] | None = None  # a symbol to download with yfinance
    #   instead, or several (a panel, downloaded in one call)
    csv_dir: str | None = None  # a folder of CSVs, one series each (a panel)
    skip_bad: bool = False  # in a panel, leave out a series that cannot be read
    #   (with a warning) instead of stopping
    covariate: list[str] | None = None  # CSVs of other series (an index, VIX)
    #   fed as extra inputs: their daily log change, on each series' dates
    start: str | None = None  # first date for a ticker (None = ten years back)
    end: str | None = None  # last date for a ticker (None = today)
    column: str | None = (
        None  # price column; None = "Adj Close" if present, else "Close"
    )
    cache_dir: str = "data/cache"  # where ticker downloads are cached as CSV
    decimal: str = "."  # "," reads a semicolon-separated CSV with decimal commas
    calendar: str = "XNYS"  # exchange_calendars code whose sessions are the
    #   forecast dates (XNYS = New York; XLON London, XTKS Tokyo, ...)


@dataclass
class PrepSettings:
    """How the price series becomes scaled windows."""

    window: int = 100  # input steps per window
    horizon: int = 1  # steps the model predicts at once (1 = one-step, >1 = direct)
    train_fraction: float = 0.75  # share of the series, oldest first, used for training
    val_fraction: float = (
        0.1  # share of the training windows, newest, for early stopping
    )
    representation: str = "log-delta"  # "level" (scaled price), "delta" (change
    #   from the window's last scaled price) or "log-delta" (the same on log
    #   prices: moves are returns, whose size does not grow with the price, as
    #   a forecast distribution needs) (BENCHMARKS.md)
    features: str = "close"  # inputs per day, comma-separated: close (the price,
    #   in the representation), range (log High/Low), gap (log Open/previous
    #   Close), volume (log volume / its 20-day mean), return (daily log return),
    #   parkinson, garman_klass, rogers_satchell, yang_zhang (the day's range
    #   variance estimators, forecaster.prep.ranges, as log volatility); or
    #   "auto": close alone or with range estimators, whichever has the lower
    #   validation loss (forecaster.workflows.feature_choice)

    def validate(self) -> None:
        check_at_least("window", self.window)
        check_at_least("horizon", self.horizon)
        if not 0 < self.train_fraction < 1:
            raise ForecasterError(
                "train_fraction must be between 0 and 1 (exclusive). "
                f"Received: train_fraction={self.train_fraction}"
            )
        if not 0 < self.val_fraction < 1:
            raise ForecasterError(
                "val_fraction must be between 0 and 1 (exclusive). "
                f"Received: val_fraction={self.val_fraction}"
            )
        check_choice("representation", self.representation, REPRESENTATIONS)
        if self.features not in ("close", "auto"):
            parse_features(self.features)


@dataclass
class ModelSettings:
    """The stacked recurrent network."""

    cell: str = "lstm"  # "lstm", "gru" or "rnn" (SimpleRNN)
    units: int = 50  # units in each recurrent layer
    layers: int = 3  # stacked recurrent layers
    dropout: float = (
        0.0  # Dropout between layers (never recurrent_dropout: keeps cuDNN)
    )
    bidirectional: bool = False  # wrap each recurrent layer in Bidirectional
    learning_rate: float = 1e-3  # Adam's learning rate
    clipnorm: float | None = None  # rescale each weight's gradient to this norm
    #   at most before the update (Keras' clipnorm); unset = no clipping
    loss: str | None = None  # "student-t" or "normal" (a distribution of the
    #   next move, by likelihood), "quantile" (its quantiles, by pinball loss)
    #   or "mse" (a point forecast only); None = student-t for a price model,
    #   binary cross-entropy for a direction model; see forecaster/model/heads.py
    objective: str = "price"  # "price", or "direction": P(the next move is up)
    #   from a sigmoid output trained by binary cross-entropy
    df_gain: float = 1.0  # the Student-t head's df is 2 + softplus(df_gain x one
    #   weight): at 1 Adam moves it < 0.01 a run (df stays 6.0); 20 lets it
    #   train (to 5.6-5.8 on the sample tickers). Not the default: validation
    #   did not improve on all three tickers (BENCHMARKS.md, issue 24)

    def validate(self) -> None:
        check_choice("cell", self.cell, CELLS)
        check_at_least("units", self.units)
        check_at_least("layers", self.layers)
        if not 0 <= self.dropout < 1:
            raise ForecasterError(
                f"dropout must be in [0, 1). Received: dropout={self.dropout}"
            )
        if not self.learning_rate > 0:
            raise ForecasterError(
                "learning_rate must be positive. "
                f"Received: learning_rate={self.learning_rate}"
            )
        check_loss(self.loss, self.objective)
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise ForecasterError(
                f"clipnorm must be positive. Received: clipnorm={self.clipnorm}"
            )
        if not self.df_gain > 0:
            raise ForecasterError(
                f"df_gain must be positive. Received: df_gain={self.df_gain}"
            )


@dataclass
class TrainSettings:
    """The training loop."""

    epochs: int = 50  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # windows per gradient step (measured: ~2-3x the
    #   throughput of 64 on 2 CPU cores; see BENCHMARKS.md)
    patience: int = 8  # epochs without a better validation loss before stopping
    seed: int = 42  # same seed, data and machine -> same metrics
    calibrate: bool = False  # correct a probabilistic head's 80%/95% bands on
    #   the validation slice (conformalized quantile regression) and use them
    #   for the test scores and forecasts; measured and recorded either way
    devices: int | None = None  # devices training one model under MirroredStrategy,
    #   each taking --batch-size windows a step; None = every visible GPU (one
    #   device without GPUs); see docs/distributed.md
    ray_workers: int | None = None  # Ray Train workers training one global model
    #   over a panel data-parallel, each taking --batch-size windows a step (pip
    #   install "forecaster[ray]"); None = train in this process; docs/distributed.md
    verbose: int = 1  # Keras progress bar (1), one line per epoch (2) or silent (0)

    def validate(self) -> None:
        check_at_least("epochs", self.epochs)
        check_at_least("batch_size", self.batch_size)
        if self.devices is not None:
            check_at_least("devices", self.devices)
        if self.ray_workers is not None:
            check_at_least("ray_workers", self.ray_workers)
        if self.patience < 0:
            raise ForecasterError(
                f"patience must be 0 or more. Received: patience={self.patience}"
            )


@dataclass
class Settings:
    """Everything a training run needs; saved in the bundle's metadata.json."""

    data: DataSettings = field(default_factory=DataSettings)
    prep: PrepSettings = field(default_factory=PrepSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    @property
    def is_panel(self) -> bool:
        """Whether the data is several series (or a folder), or has extra features."""
        data = self.data
        several = any(
            isinstance(value, (list, tuple)) and len(value) > 1
            for value in (data.csv, data.ticker)
        )
        return (
            several
            or data.csv_dir is not None
            or bool(data.covariate)
            or self.prep.features != "close"
        )

    def validate(self) -> Settings:
        self.prep.validate()
        self.model.validate()
        self.train.validate()
        if self.model.objective == "direction":
            self._check_direction()
        return self

    def _check_direction(self) -> None:
        """A direction model learns the sign of each move of one closing price."""
        if self.prep.representation == "level":
            raise ForecasterError(
                "objective='direction' learns the sign of each move, but "
                "representation='level' gives it price levels: use delta or "
                "log-delta. Received: representation='level'"
            )
        if self.is_panel:
            raise direction_panel_error(", ".join(self._panel_inputs()))

    def _panel_inputs(self) -> list[str]:
        """The settings that make this run a panel, as "name=value" each."""
        data = self.data
        several = {
            name: value
            for name, value in (("csv", data.csv), ("ticker", data.ticker))
            if isinstance(value, (list, tuple)) and len(value) > 1
        }
        named = {
            "features": self.prep.features if self.prep.features != "close" else None,
            **several,
            "csv_dir": data.csv_dir,
            "covariate": data.covariate,
        }
        return [f"{name}={value!r}" for name, value in named.items() if value]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Settings:
        """Rebuild settings saved by `to_dict`, ignoring keys this version lacks."""
        if not isinstance(raw, dict):
            raise ForecasterError(
                f"settings must be a mapping. Received: {type(raw).__name__}"
            )
        parts = {}
        for name, kind in (
            ("data", DataSettings),
            ("prep", PrepSettings),
            ("model", ModelSettings),
            ("train", TrainSettings),
        ):
            known = {f.name for f in dataclasses.fields(kind)}
            part = raw.get(name, {})
            if not isinstance(part, dict):
                raise ForecasterError(
                    f"settings part {name!r} must be a mapping. Received: "
                    f"{type(part).__name__}"
                )
            parts[name] = kind(**{k: v for k, v in part.items() if k in known})
        return cls(**parts)


@dataclass
class ForecastSettings:
    """What predict.py forecasts from a saved bundle."""

    model: str = "models/AAPL-lstm"  # bundle directory (train.py's default output)
    days: int | None = None  # trading days to forecast; None = 30, or the
    #   horizon of a model that takes input features beside the price
    method: str | None = None  # "recursive" or "direct"; None = the bundle's own
    #   (direct when it was trained with --horizon > 1)
    horizon: int | None = None  # steps kept per model call with the direct method
    #   (at most the bundle's horizon)
    engine: str = "auto"  # "numpy" (no TensorFlow; auto's choice) or "keras"
    calendar: str | None = None  # exchange_calendars code whose sessions are the
    #   forecast dates, e.g. XLON; None = the bundle's (XNYS unless trained with
    #   --calendar)
    out: str | None = None  # directory for forecast.csv/png/report.html; None =
    #   the bundle
    series: list[str] | None = None  # a panel bundle's series to forecast;
    #   None = all of them
    samples: int = 512  # sample paths the recursive forecast of a probabilistic
    #   model (--loss normal, student-t or quantile) draws; their quantiles are
    #   the bands
    seed: int = 0  # seed of those draws: the same seed gives the same bands

    def validate(self) -> ForecastSettings:
        if self.days is not None:
            check_at_least("days", self.days)
        check_at_least("samples", self.samples)
        check_at_least("seed", self.seed, 0)
        if self.method is not None:
            check_choice("method", self.method, ("recursive", "direct"))
        check_choice("engine", self.engine, ("auto", "numpy", "keras"))
        return self


def check_panel_input(settings: Settings, single: bool, cutoff, covariates) -> None:
    """What `fit` refuses before it reads anything: a direction model asked for
    a panel, cutoff or covariates; Ray Train workers for one series."""
    if settings.model.objective == "direction" and not single:
        raise direction_panel_error(_panel_reason(cutoff, covariates))
    workers = settings.train.ray_workers
    if workers and single:
        raise ForecasterError(
            "ray_workers trains one global model over a panel, and prices hold "
            "one series: give several series (a dict, a long frame or a Panel), "
            f"or leave ray_workers unset. Received: ray_workers={workers}"
        )


def _panel_reason(cutoff, covariates) -> str:
    """What made `fit` a panel's, for the direction model's error."""
    if cutoff is not None:
        return f"cutoff={str(cutoff)!r}"
    if covariates:
        return f"covariates={sorted(str(name) for name in covariates)}"
    return "prices holding several series"


def direction_panel_error(received: str) -> ForecasterError:
    """The error for a direction model asked to train on more than one closing price."""
    return ForecasterError(
        "objective='direction' trains on one series of closing prices: panels, "
        "features beyond close and covariates are not supported for it yet. "
        f"Received: {received}"
    )


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a ForecasterError listing the valid choices when `value` is not one."""
    if value not in choices:
        raise ForecasterError(
            f"Unknown {name} {value!r}: choose one of {', '.join(choices)}."
        )


def check_at_least(name: str, value, minimum: int = 1) -> None:
    """Raise a ForecasterError naming `name` when `value` is below `minimum`."""
    if value < minimum:
        raise ForecasterError(
            f"{name} must be at least {minimum}. Received: {name}={value}"
        )


def check_loss(loss: str | None, objective: str = "price") -> None:
    """Raise a ForecasterError naming the argument for an unknown loss or objective."""
    if loss is not None:
        check_choice("loss", loss, LOSSES)
    check_choice("objective", objective, OBJECTIVES)
    if objective == "direction" and loss is not None:
        raise ForecasterError(
            "objective='direction' trains its own head (P(up), binary "
            f"cross-entropy): leave loss unset. Received: loss={loss!r}"
        )


def parse_features(features: str | Iterable[str]) -> tuple[str, ...]:
    """Feature names from "close,range" or a list, checked against FEATURES."""
    text = features if isinstance(features, str) else ",".join(map(str, features))
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not names:
        raise ForecasterError(
            f"features must name at least one of {', '.join(FEATURES)}. "
            f"Received: features={features!r}"
        )
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise ForecasterError(
            f"Unknown feature {unknown[0]!r}: valid features are "
            f"{', '.join(FEATURES)}. Received: features={text!r}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ForecasterError(
            f"Feature {repeated[0]!r} is named twice in features. Received: "
            f"features={text!r}"
        )
    return names


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
