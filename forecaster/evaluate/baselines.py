"""Baseline one-step predictive distributions for the test days, from prices alone.

Each baseline predicts day t's price from the prices before it, for every
test day t = n_train .. n - 1, and anything it fits (a seed variance, GARCH
parameters) comes from the training part, prices[:n_train], only:
- `rolling_normal`: random walk, normal with the std of the last 20 daily
  log returns (the scale today's conformal bands use);
- `ewma_normal`: random walk, normal with RiskMetrics EWMA volatility;
- `garch_t`: GARCH(1,1) with Student-t innovations, estimated on the
  training returns, then run through the test days with those parameters;
- `conformal_bands`: the model's split-conformal bands (forecaster.evaluate.evaluation)
  in the same interface;
- the anchors of forecaster.evaluate.anchors: GJR-GARCH(1,1,1)-skew-t,
  EGARCH(1,1,1)-t, Range-GARCH(1,1)-t, Range-GJR-t, log-HAR-t (the range
  ones only when `TestDays.ohlc` has the days' High and Low, else left out
  with one log line) and the family of lowest training BIC refitted every 20
  test days on the days before them.

`REGISTRY` holds the baselines every evaluation scores (forecaster.evaluate.comparison)
and the search's reference (forecaster.distributed.tune), in the order they are
reported: a new baseline is one function here, registered with `@baseline(key,
label)`, that takes the `TestDays` and returns a distribution (or None to be
left out of this run).

Volatilities are of daily log returns r; a day's price is mapped as
P_{t-1} (1 + r), which keeps each distribution location-scale in price with
a closed-form CRPS. (The exact map P_{t-1} exp(r) of a Student-t has no
finite mean, hence no finite CRPS; at daily scale the two differ by about
r^2 / 2, 0.02% of the price at 2% volatility.)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate import anchors
from forecaster.evaluate.intervals import MIN_VOLATILITY, VOLATILITY_DAYS, scale_of
from forecaster.evaluate.predictive import LocationScale, QuantileBands
from forecaster.evaluate.scores import grid_crps
from forecaster.prep.windows import window_view

log = logging.getLogger("forecaster")

RISKMETRICS_DECAY = 0.94  # EWMA weight on yesterday's variance (RiskMetrics, daily)
PERCENT = 100.0  # arch fits returns in percent: its optimiser expects that scale
GARCH_MEANS = ("Zero", "Constant")  # arch mean models garch_t accepts
MIN_TRAIN_RETURNS = 100  # fewest training returns GARCH(1,1) is estimated on


@dataclass(frozen=True)
class TestDays:
    """What a baseline may use to predict the test days prices[n_train:].

    `prices` (n,) and `n_train` always; the model's one-step point forecasts
    `predicted` (n - n_train,), its `window` and its one-step conformal
    `intervals` (one method's entry of intervals.json) when a model was scored;
    `ohlc` when the input has High and Low (the range anchors need it).
    """

    __test__ = False  # not a pytest class, whatever its name

    prices: np.ndarray
    n_train: int
    predicted: np.ndarray | None = None
    window: int | None = None
    intervals: dict | None = None
    ohlc: np.ndarray | None = None  # (n, 4) split-adjusted Open, High, Low, Close


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: its metrics.json key, its printed label, its maker."""

    key: str
    label: str
    make: Callable  # TestDays -> a distribution (forecaster.evaluate.predictive) | None


REGISTRY: dict[str, Baseline] = {}  # key -> baseline, in the order they are reported


def baseline(key: str, label: str):
    """Register the decorated `make(days: TestDays)` as the baseline `key`."""

    def register(make):
        if key in REGISTRY:
            raise ForecasterError(f"A baseline {key!r} is already registered.")
        REGISTRY[key] = Baseline(key, label, make)
        return make

    return register


def unregister(key: str) -> None:
    """Remove the baseline `key` (a test's, or one a caller replaces)."""
    REGISTRY.pop(key, None)


def distributions(days: TestDays) -> dict:
    """Every registered baseline's distribution of the test days, by key.

    A baseline whose maker returns None (it could not be fitted here) is left out.
    """
    found = {}
    for key, entry in REGISTRY.items():
        made = entry.make(days)
        if made is not None:
            found[key] = made
    return found


MODEL_BANDS = ("conformal",)  # baselines made of the model's own bands: not anchors


def anchor_distributions(days: TestDays) -> dict:
    """Every registered anchor's distribution of the test days, by key: the
    baselines that need no model (all but MODEL_BANDS); those that cannot be
    fitted here are left out."""
    found = {}
    for key, entry in REGISTRY.items():
        made = None if key in MODEL_BANDS else entry.make(days)
        if made is not None:
            found[key] = made
    return found


def best_anchor_crps(prices, ohlc, targets, levels) -> tuple[str, float]:
    """(key, mean CRPS) of the best anchor on the days `targets` (start, stop).

    Every anchor (`anchor_distributions`; the range ones when `ohlc` (n, 4)
    is given) is fitted on the days before start and run through start ..
    stop - 1 with its parameters fixed; its CRPS is `grid_crps` on `levels`,
    and the lowest on those days wins. Nothing from stop on is read.
    """
    start, stop = targets
    prices = np.asarray(prices, np.float64)
    cut = None if ohlc is None else np.asarray(ohlc)[:stop]
    found = {
        key: grid_crps(made, prices[start:stop], levels)
        for key, made in anchor_distributions(
            TestDays(prices[:stop], start, ohlc=cut)
        ).items()
    }
    if not found:
        raise ForecasterError(
            f"No anchor could be fitted on the {start} days before day {start}."
        )
    key = min(found, key=found.get)
    return key, found[key]


def distribution(key: str, days: TestDays):
    """One registered baseline's distribution of the test days (None: left out)."""
    if key not in REGISTRY:
        raise ForecasterError(
            f"Unknown baseline {key!r}: choose one of {', '.join(REGISTRY)}."
        )
    return REGISTRY[key].make(days)


def label(key: str) -> str:
    """The label a report prints for the baseline `key`."""
    return REGISTRY[key].label


def rolling_normal(prices, n_train: int, days: int = VOLATILITY_DAYS) -> LocationScale:
    """Normal around yesterday's price with the std of the last `days` log returns.

    prices: (n,). Scale = P_{t-1} x max(std(r_{t-days} .. r_{t-1}), MIN_VOLATILITY),
    exactly `forecaster.evaluate.evaluation.scale_of`. Nothing is fitted. Returns
    (n - n_train,) arrays.
    """
    if days < 2:
        raise ForecasterError(f"days must be at least 2. Received: days={days}")
    prices = _check_prices(prices, n_train, least=days + 1)
    windows = window_view(prices, days + 1, (n_train, len(prices)))
    return LocationScale(
        name=f"random walk, {days}-day volatility",
        location=prices[n_train - 1 : -1].copy(),
        scale=scale_of(windows),
        params={"days": days},
    )


def ewma_normal(
    prices, n_train: int, decay: float = RISKMETRICS_DECAY
) -> LocationScale:
    """Normal around yesterday's price with EWMA volatility (RiskMetrics).

    sigma2_t = decay sigma2_{t-1} + (1 - decay) r_{t-1}^2, seeded with the
    mean squared log return of the training part. Returns (n - n_train,) arrays.
    """
    from scipy import signal  # lazy: scipy takes 0.5 s; forecasts need none

    prices = _check_prices(prices, n_train, least=3)
    if not 0 < decay < 1:
        raise ForecasterError(f"decay must be in (0, 1). Received: decay={decay}")
    returns = np.diff(np.log(prices))
    seed = float(np.mean(returns[: n_train - 1] ** 2))
    # after[j] = variance for return j + 1, given returns 0..j
    after, _ = signal.lfilter([1 - decay], [1, -decay], returns**2, zi=[decay * seed])
    variance = np.concatenate([[seed], after])[n_train - 1 : len(returns)]
    volatility = np.maximum(np.sqrt(variance), MIN_VOLATILITY)
    previous = prices[n_train - 1 : -1]
    return LocationScale(
        name=f"random walk, EWMA volatility ({decay:g})",
        location=previous.copy(),
        scale=previous * volatility,
        params={"decay": decay, "seed_variance": seed},
    )


def garch_t(prices, n_train: int, mean: str = "Zero") -> LocationScale:
    """GARCH(1,1)-t on percent log returns, estimated on the training part only.

    arch's `fit(last_obs=...)` estimates omega, alpha, beta, nu (and mu with
    mean="Constant") on the training returns; its one-step forecasts then
    filter the test days with those parameters fixed, each from the returns
    before that day. arch's t has unit variance, so the t's scale is
    sigma x sqrt((nu - 2) / nu). Returns (n - n_train,) arrays, df = nu.
    """
    if mean not in GARCH_MEANS:
        raise ForecasterError(
            f"Unknown mean {mean!r}: choose one of {', '.join(GARCH_MEANS)}."
        )
    prices = _check_prices(prices, n_train, least=MIN_TRAIN_RETURNS + 1)
    fitted = _fit_garch(np.diff(np.log(prices)) * PERCENT, n_train, mean)
    params = {k: float(v) for k, v in fitted.params.items()}
    n_test = len(prices) - n_train
    # the origin of test day t is return t - 2, the last one before it
    forecast = fitted.forecast(horizon=1, start=n_train - 2, reindex=False)
    sigma = np.sqrt(forecast.variance.to_numpy()[:n_test, 0]) / PERCENT
    nu = params["nu"]
    drift = params.get("mu", 0.0) / PERCENT
    previous = prices[n_train - 1 : -1]
    return LocationScale(
        name="GARCH(1,1)-t",
        location=previous * (1 + drift),
        scale=previous * sigma * np.sqrt((nu - 2) / nu),
        df=nu,
        params=params,
    )


def _fit_garch(percent_returns: np.ndarray, n_train: int, mean: str):
    from arch import arch_model

    model = arch_model(
        percent_returns, mean=mean, vol="GARCH", p=1, q=1, dist="t", rescale=False
    )
    # returns 0 .. n_train - 2 are those between training prices
    fitted = model.fit(last_obs=n_train - 1, disp="off")
    if fitted.convergence_flag != 0:
        log.warning(
            "GARCH(1,1)-t estimation did not converge (optimizer flag %s): its "
            "parameters %s may not be the likelihood's maximum",
            fitted.convergence_flag,
            dict(fitted.params.round(4)),
        )
    return fitted


def conformal_bands(
    predicted, prices, n_train: int, window: int, intervals: dict
) -> QuantileBands:
    """Today's one-step split-conformal bands as `QuantileBands`.

    predicted: (n - n_train,) the model's one-step forecasts of the test days;
    intervals: one method's entry of the bundle's intervals.json, whose
    step-1 quantile q at each level gives the half-width q x scale_of(the
    `window` prices before the day), as `evaluation.evaluate` scores them.
    """
    prices = _check_prices(prices, n_train, least=window)
    predicted = np.asarray(predicted, dtype=np.float64)
    if predicted.shape != (len(prices) - n_train,):
        raise ForecasterError(
            f"predicted must have one value per test day ({len(prices) - n_train}). "
            f"Received: predicted.shape={predicted.shape}"
        )
    scale = scale_of(window_view(prices, window, (n_train, len(prices))))
    half_widths = {
        float(level): float(steps[0]) * scale
        for level, steps in intervals["levels"].items()
    }
    return QuantileBands("conformal bands (model)", predicted, half_widths)


def _check_prices(prices, n_train: int, least: int) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 1 or not np.all(np.isfinite(prices) & (prices > 0)):
        raise ForecasterError(
            "prices must be a 1-d array of positive finite values. "
            f"Received: prices with shape {prices.shape}"
        )
    if not least <= n_train < len(prices):
        raise ForecasterError(
            f"n_train must be in [{least}, {len(prices) - 1}] for {len(prices)} "
            f"prices. Received: n_train={n_train}"
        )
    return prices


# ------------------------------------------------------------------ the registry
# In the order the comparison reports them.


@baseline("conformal", "conformal")
def _conformal(days: TestDays) -> QuantileBands:
    return conformal_bands(
        days.predicted, days.prices, days.n_train, days.window, days.intervals
    )


@baseline("rw20", "RW 20-day")
def _random_walk(days: TestDays) -> LocationScale:
    return rolling_normal(days.prices, days.n_train)


@baseline("ewma", "RW EWMA")
def _ewma(days: TestDays) -> LocationScale:
    return ewma_normal(days.prices, days.n_train)


@baseline("garch_t", "GARCH-t")
def _garch(days: TestDays) -> LocationScale | None:
    try:
        return garch_t(days.prices, days.n_train)
    except Exception as error:  # arch's optimiser on an odd series: keep the rest
        log.warning("GARCH(1,1)-t could not be estimated (%s); left out", error)
        return None


@baseline("gjr_skewt", "GJR-skew-t")
def _gjr(days: TestDays):
    return _anchor("gjr_skewt", days)


@baseline("egarch_t", "EGARCH-t")
def _egarch(days: TestDays):
    return _anchor("egarch_t", days)


@baseline("range_garch_t", "Range-GARCH-t")
def _range_garch(days: TestDays):
    if days.ohlc is None:
        say_no_ranges()
        return None
    return _anchor("range_garch_t", days)


@functools.cache
def say_no_ranges() -> None:
    """One line, once a process (not once a series of a panel): no range anchors."""
    log.info(
        "the input has no High/Low: the range anchors (Range-GARCH-t, "
        "Range-GJR-t, log-HAR-t) are left out"
    )


@baseline("range_gjr_t", "Range-GJR-t")
def _range_gjr(days: TestDays):
    return None if days.ohlc is None else _anchor("range_gjr_t", days)


@baseline("log_har_t", "log-HAR-t")
def _log_har(days: TestDays):
    return None if days.ohlc is None else _anchor("log_har_t", days)


@baseline("best_refit", "best, refit/20d")
def _best_refit(days: TestDays):
    """The anchor family with the lowest training BIC, re-estimated every 20 days."""
    try:
        prices = _check_prices(days.prices, days.n_train, MIN_TRAIN_RETURNS + 1)
        family = anchors.best_family(prices, days.n_train, days.ohlc)
        return anchors.refit_predictive(family, prices, days.n_train, days.ohlc)
    except Exception as error:  # arch's or scipy's optimiser: keep the rest
        log.warning("the refitted best anchor could not be estimated (%s)", error)
        return None


def _anchor(family: str, days: TestDays):
    """One anchor of forecaster.evaluate.anchors, or None (logged) if it fails."""
    try:
        prices = _check_prices(days.prices, days.n_train, MIN_TRAIN_RETURNS + 1)
        return anchors.anchor(family, prices, days.n_train, days.ohlc)
    except anchors.DegenerateFit:  # anchors.volatility said so, once
        return None
    except Exception as error:  # arch's or scipy's optimiser: keep the rest
        log.warning("%s could not be estimated (%s); left out", family, error)
        return None
