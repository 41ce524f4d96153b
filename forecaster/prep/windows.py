"""Windows and scaling: split by time, fit MinMaxScaler on training data, slide windows.

Pure functions on arrays. The series is split by time; the scaler is fitted on
the training part only; windows are views into the scaled series (no copy per
window) and a representation turns a batch of windows into model inputs and
targets and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.config import REPRESENTATIONS, PrepSettings, check_choice
from forecaster.errors import ForecasterError

MIN_FIT_WINDOWS = 20  # fewest training windows (after the validation cut) we accept


# ------------------------------------------------------------------ the scaler


@dataclass
class Scaler:
    """MinMaxScaler's affine map, with the log step of the "log-delta" representation.

    `fit` uses scikit-learn's `MinMaxScaler` on the training values; the fitted
    `data_min_`, `data_max_`, `scale_` and `min_` are kept so the bundle can
    store them as JSON and `transform` can run without scikit-learn.
    """

    log: bool = False  # scale log(prices) instead of prices
    data_min_: float | None = None
    data_max_: float | None = None
    scale_: float | None = None
    min_: float | None = None

    def fit(self, prices: np.ndarray) -> Scaler:
        """Fit on training prices, shape (n,) ."""
        from sklearn.preprocessing import MinMaxScaler

        values = self._pre(np.asarray(prices, dtype=np.float64)).reshape(-1, 1)
        fitted = MinMaxScaler().fit(values)
        self.data_min_ = float(fitted.data_min_[0])
        self.data_max_ = float(fitted.data_max_[0])
        self.scale_ = float(fitted.scale_[0])
        self.min_ = float(fitted.min_[0])
        return self

    def transform(self, prices: np.ndarray) -> np.ndarray:
        """Prices (any shape) to scaled values, same shape."""
        self._check_fitted()
        return self._pre(np.asarray(prices, dtype=np.float64)) * self.scale_ + self.min_

    def inverse_transform(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled values (any shape) back to prices, same shape."""
        self._check_fitted()
        values = (np.asarray(scaled, dtype=np.float64) - self.min_) / self.scale_
        return np.exp(values) if self.log else values

    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "kind": "sklearn.preprocessing.MinMaxScaler",
            "feature_range": [0.0, 1.0],
            "log": self.log,
            "data_min_": self.data_min_,
            "data_max_": self.data_max_,
            "scale_": self.scale_,
            "min_": self.min_,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Scaler:
        keys = ("data_min_", "data_max_", "scale_", "min_")
        try:
            values = {k: float(raw[k]) for k in keys}
            log = bool(raw.get("log", False))
        except (KeyError, TypeError, ValueError) as err:
            raise ForecasterError(
                f"scaler parameters are incomplete: {err!r}"
            ) from None
        if not all(math.isfinite(v) for v in values.values()) or values["scale_"] == 0:
            raise ForecasterError(f"scaler parameters are not usable: {values}")
        return cls(log=log, **values)

    def _pre(self, prices: np.ndarray) -> np.ndarray:
        return np.log(prices) if self.log else prices

    def _check_fitted(self) -> None:
        if self.scale_ is None:
            raise ForecasterError(
                "This Scaler is not fitted yet: call fit(train_prices)."
            )


# ----------------------------------------------------------------- the split


@dataclass
class Split:
    """Where the series is cut, as indices into it.

    Windows are named by `t`, the index of their first target: inputs are
    `series[t - window:t]`, targets `series[t:t + horizon]`.
    """

    n: int  # points in the series
    n_train: int  # points in the training part, series[:n_train]
    window: int
    horizon: int
    fit_targets: tuple[int, int]  # range of t for gradient steps
    val_targets: tuple[int, int]  # range of t for early stopping (end of training part)
    test_targets: tuple[int, int]  # range of t scored on the test part

    @property
    def n_fit(self) -> int:
        return self.fit_targets[1] - self.fit_targets[0]

    @property
    def n_val(self) -> int:
        return self.val_targets[1] - self.val_targets[0]

    @property
    def n_test(self) -> int:
        return self.test_targets[1] - self.test_targets[0]


def split_series(
    n: int, prep: PrepSettings, n_train: int | None = None, val_start: int | None = None
) -> Split:
    """Cut a series of `n` points by time into fit / validation / test windows.

    Training windows have every target inside the training part; the newest
    `val_fraction` of them validate (early stopping); test windows start at the
    first test day and take their inputs from the last `window` points before
    it, so every test day is predicted. With horizon 1 the three add up to
    `n - window` windows. `n_train` overrides `train_fraction` (walk-forward);
    `val_start` (the first validation target) overrides `val_fraction`, so a
    panel can validate every series on the same dates. It is kept within
    the training windows, at least one of them validating.
    """
    prep.validate()
    needed = minimum_rows(prep)
    if n_train is not None:
        split = _split(n, prep, n_train, val_start)
        if split.n_fit < MIN_FIT_WINDOWS or split.n_test < 1:
            raise ForecasterError(
                f"too few rows to train on: {n_train} training rows for "
                f"window={prep.window}; need at least {needed}."
            )
        return split
    if n < needed:
        raise ForecasterError(
            f"need at least {needed} rows for window={prep.window}, "
            f"horizon={prep.horizon} and train-fraction={prep.train_fraction}, "
            f"got {n}. "
            "Use a longer series or a smaller window."
        )
    return _split(n, prep)


def _split(
    n: int, prep: PrepSettings, n_train: int | None = None, val_start=None
) -> Split:
    if n_train is None:
        n_train = int(n * prep.train_fraction)
    first_t = prep.window
    last_train_t = n_train - prep.horizon  # inclusive: targets end inside training
    if val_start is None:
        val_start = validation_start(n_train, prep)
    val_start = min(max(val_start, first_t), last_train_t)
    return Split(
        n=n,
        n_train=n_train,
        window=prep.window,
        horizon=prep.horizon,
        fit_targets=(first_t, val_start),
        val_targets=(val_start, last_train_t + 1),
        test_targets=(n_train, n - prep.horizon + 1),
    )


def validation_start(n_train: int, prep: PrepSettings) -> int:
    """The first validation target of `n_train` training rows: the newest
    `val_fraction` of the training windows (at least one) validate."""
    last_train_t = n_train - prep.horizon
    n_windows = last_train_t - prep.window + 1
    return last_train_t + 1 - max(1, round(n_windows * prep.val_fraction))


def minimum_rows(prep: PrepSettings) -> int:
    """Shortest series leaving MIN_FIT_WINDOWS, one validation and one test window."""
    n = prep.window + prep.horizon + MIN_FIT_WINDOWS
    while True:
        split = _split(n, prep)
        if split.n_fit >= MIN_FIT_WINDOWS and split.n_val >= 1 and split.n_test >= 1:
            return n
        n += 1


# ------------------------------------------------------------------ windows


def window_view(
    series: np.ndarray, window: int, targets: tuple[int, int]
) -> np.ndarray:
    """Input windows for first-target indices t in `targets`, as a read-only view.

    series: (n,) scaled values. Returns X: (n_windows, window), where
    X[k] = series[t - window:t] for t = targets[0] + k. No data is copied.
    """
    start, stop = targets
    if start < window or stop > len(series) or stop < start:
        raise ForecasterError(
            f"window targets {targets} do not fit a series of {len(series)} points "
            f"with window={window}"
        )
    return np.lib.stride_tricks.sliding_window_view(series[: stop - 1], window)[
        start - window :
    ]


def feature_view(extra, window: int, targets: tuple[int, int]):
    """Feature windows for first-target indices t in `targets`, as a view, or None.

    extra: (n, n_extra) scaled features, or None. Returns (n_windows, window,
    n_extra), where [k] = extra[t - window:t] for t = targets[0] + k.
    """
    if extra is None:
        return None
    start, stop = targets
    view = np.lib.stride_tricks.sliding_window_view(extra[: stop - 1], window, axis=0)
    return view[start - window :].transpose(0, 2, 1)


def target_view(
    series: np.ndarray, horizon: int, targets: tuple[int, int]
) -> np.ndarray:
    """Targets for first-target indices t in `targets`, as a view.

    series: (n,). Returns Y: (n_windows, horizon), Y[k] = series[t:t + horizon].
    """
    start, stop = targets
    return np.lib.stride_tricks.sliding_window_view(
        series[start : stop + horizon - 1], horizon
    )


# ----------------------------------------------------------- representations


def encode_inputs(windows, representation: str):
    """Scaled windows (b, window) to model inputs (b, window, 1).

    "level" feeds the scaled values; "delta" and "log-delta" feed each value
    minus the window's last value, so the model never sees the price level and
    cannot saturate when test prices leave the training range. Pure
    arithmetic and slicing: the same code serves NumPy arrays (the engines)
    and TensorFlow tensors (tf.data and the compiled forecast loop), so the
    representation is written once. The caller picks the dtype.
    """
    check_choice("representation", representation, REPRESENTATIONS)
    if representation != "level":
        windows = windows - windows[:, -1:]
    return windows[:, :, None]


def encode_targets(windows, targets, representation: str):
    """Scaled targets (b, horizon) to what the model learns, (b, horizon)."""
    check_choice("representation", representation, REPRESENTATIONS)
    if representation != "level":
        targets = targets - windows[:, -1:]
    return targets


def decode_outputs(windows, outputs, representation: str):
    """Model outputs (b, horizon) back to scaled values (b, horizon)."""
    check_choice("representation", representation, REPRESENTATIONS)
    if representation != "level":
        outputs = outputs + windows[:, -1:]
    return outputs


def scaler_for(representation: str) -> Scaler:
    """The unfitted scaler a representation needs (log prices for "log-delta")."""
    check_choice("representation", representation, REPRESENTATIONS)
    return Scaler(log=representation == "log-delta")


# ------------------------------------------------------------ prepared series


@dataclass
class Prepared:
    """A price series cut by time, scaled by a scaler fitted on its training part."""

    dates: pd.DatetimeIndex  # (n,)
    prices: np.ndarray  # (n,) float64, price units
    scaled: np.ndarray  # (n,) float64, scaler.transform(prices)
    scaler: Scaler  # fitted on prices[:split.n_train] only
    split: Split
    representation: str
    extra: np.ndarray | None = None  # (n, n_extra) scaled input features, or None
    extra_scalers: list[Scaler] = field(default_factory=list)  # one per feature,
    #   each fitted on the training part only
    extra_names: list[str] = field(default_factory=list)
    ohlc: np.ndarray | None = None  # (n, 4) split-adjusted Open, High, Low,
    #   Close on the same days (forecaster.prep.ranges), or None without High/Low

    @property
    def n_features(self) -> int:
        """Inputs per day: the target plus the extra features."""
        return 1 + (0 if self.extra is None else self.extra.shape[1])


def prepare(
    values: pd.Series,
    prep: PrepSettings,
    n_train: int | None = None,
    features: pd.DataFrame | None = None,
    val_from=None,
) -> Prepared:
    """Split `values` by time and fit the scalers on the training part only.

    `features` (n, n_extra), on the same dates as `values`, are extra inputs;
    each column gets its own MinMax scaler, fitted on the training rows.
    `val_from` (a date) starts the validation windows there instead of at
    the newest `val_fraction` of them (a panel validates on shared dates).
    """
    prices = values.to_numpy(dtype=np.float64)
    val_start = None
    if val_from is not None:
        val_start = int(values.index.searchsorted(pd.Timestamp(val_from)))
    split = split_series(len(prices), prep, n_train=n_train, val_start=val_start)
    scaler = scaler_for(prep.representation).fit(prices[: split.n_train])
    extra, scalers, names = _scale_features(features, values.index, split.n_train)
    return Prepared(
        dates=pd.DatetimeIndex(values.index),
        prices=prices,
        scaled=scaler.transform(prices),
        scaler=scaler,
        split=split,
        representation=prep.representation,
        extra=extra,
        extra_scalers=scalers,
        extra_names=names,
    )


def _scale_features(features, index, n_train: int):
    """(scaled (n, k) or None, scalers, names) with scalers fitted on the train rows."""
    if features is None or features.shape[1] == 0:
        return None, [], []
    if not features.index.equals(index):
        raise ForecasterError(
            "features must have the same dates as the prices. Received: "
            f"{len(features)} feature rows for {len(index)} prices"
        )
    values = features.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ForecasterError(
            "features must be finite: drop the rows where a feature is undefined "
            "before preparing."
        )
    scalers = [Scaler().fit(values[:n_train, k]) for k in range(values.shape[1])]
    extra = np.column_stack([s.transform(values[:, k]) for k, s in enumerate(scalers)])
    return extra, scalers, [str(c) for c in features.columns]
