"""The strongest simple anchors of daily risk, fitted on the training part only.

Each anchor gives, for every daily return j, a one-step volatility from the
returns (and ranges) before it, with parameters estimated on the training
returns only and then held fixed through the test days:

- "garch_t", "gjr_skewt", "egarch_t": GARCH(1,1)-t, GJR-GARCH(1,1,1) with
  Hansen's skewed t, and EGARCH(1,1,1)-t, all estimated by `arch`;
- "range_garch_t", "range_gjr_t": Range-GARCH(1,1)-t and Range-GJR-t, our
  own maximum likelihood (forecaster.evaluate.range_garch);
- "log_har_t": a log-HAR regression (Corsi 2009) of the day's Parkinson
  variance on its 1-, 5- and 22-day means, scaled to the return's variance
  with t innovations (scale and degrees of freedom by maximum likelihood).

The range anchors need each day's High and Low (`ohlc`, split-adjusted).
`refit_predictive` refits one family every REFIT_DAYS test days on the days
before each block; `best_family` picks it by the Bayesian information
criterion on the training returns (never on test days). Returns are in
percent, the scale `arch` estimates at; prices map as P_{t-1} (1 + r), as in
forecaster.evaluate.baselines.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from forecaster.errors import ForecasterError
from forecaster.evaluate import range_garch, scores
from forecaster.prep.ranges import parkinson

log = logging.getLogger("forecaster")

PERCENT = 100.0
REFIT_DAYS = 20  # the refitted anchor is re-estimated every this many test days
SIGMA_LOW, SIGMA_HIGH = 10.0, 50.0  # a fit's daily volatility below sd / 10 or
#   above sd x 50 of its training returns: degenerate (`check_volatility`)
HAR_LAGS = (1, 5, 22)  # the log-HAR's daily, weekly and monthly means
SKEW_T_ETA = (2.05, 300.0)  # arch's SkewStudent bounds on its degrees of freedom
CRPS_GRID = (np.arange(1000) + 0.5) / 1000  # levels for the CRPS of a skewed t
ARCH_SPECS = {  # arch_model arguments of the GARCH family
    "garch_t": {"vol": "GARCH", "o": 0, "dist": "t"},
    "gjr_skewt": {"vol": "GARCH", "o": 1, "dist": "skewt"},
    "egarch_t": {"vol": "EGARCH", "o": 1, "dist": "t"},
}
LABELS = {
    "garch_t": "GARCH(1,1)-t",
    "gjr_skewt": "GJR-GARCH(1,1,1)-skew-t",
    "egarch_t": "EGARCH(1,1,1)-t",
    "range_garch_t": "Range-GARCH(1,1)-t",
    "range_gjr_t": "Range-GJR-t",
    "log_har_t": "log-HAR-t (Parkinson)",
}
RANGE_FAMILIES = ("range_garch_t", "range_gjr_t", "log_har_t")
CANDIDATES = ("garch_t", "gjr_skewt", "egarch_t", "range_garch_t", "range_gjr_t")
#   the families `best_family` chooses from: likelihoods of the same returns


class DegenerateFit(ForecasterError):
    """A family's fit whose volatility is not believable (`_sane`): left out."""


@dataclass(frozen=True)
class Volatility:
    """One family fitted on returns[:n_fit]: sigma[j] for every return j, (m,)."""

    family: str
    sigma: np.ndarray  # (m,) percent, from the returns before j
    nu: float
    skew: float  # Hansen's lambda; 0 for a symmetric t
    params: dict
    loglik: float  # over the n_fit fitted returns
    n_fit: int

    @property
    def bic(self) -> float:
        """-2 loglik + k ln n_fit."""
        return -2 * self.loglik + len(self.params) * math.log(self.n_fit)


@dataclass
class StandardisedT:
    """location + scale x Z per day, Z a unit-variance (skewed) t, params per day.

    Arrays (n,) in price units; `scale` is the standard deviation. `nu` and
    `skew` (Hansen's eta and lambda, arch's SkewStudent) may change by day
    (a refitted anchor). The CRPS is 2 x the mean pinball loss on CRPS_GRID.
    """

    name: str
    location: np.ndarray
    scale: np.ndarray
    nu: np.ndarray
    skew: np.ndarray
    params: dict = field(default_factory=dict)

    def _groups(self):
        # arch's skewed t takes eta in [2.05, 300]: beyond 300 it is normal anyway
        nu = np.clip(self.nu, SKEW_T_ETA[0], SKEW_T_ETA[1])
        shape = np.stack([nu, self.skew], axis=1)
        for row in np.unique(shape, axis=0):
            yield list(row), np.all(shape == row, axis=1)

    def _standard(self, method: str, values) -> np.ndarray:
        from arch.univariate import SkewStudent  # lazy: arch is for evaluation

        dist, out = SkewStudent(), np.empty(len(self.location))
        for params, rows in self._groups():
            out[rows] = getattr(dist, method)(np.asarray(values)[rows], params)
        return out

    def quantile(self, level: float) -> np.ndarray:
        """The `level` quantile of each day's distribution, (n,)."""
        scores.check_level(level)
        z = self._standard("ppf", np.full(len(self.location), level))
        return self.location + self.scale * z

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central `level` interval."""
        scores.check_level(level)
        return self.quantile((1 - level) / 2), self.quantile((1 + level) / 2)

    def cdf(self, actual) -> np.ndarray:
        """F(actual) for each day, (n,)."""
        return self._standard("cdf", (np.asarray(actual) - self.location) / self.scale)

    def crps(self, actual) -> np.ndarray:
        """CRPS for each day from 1000 quantiles, (n,)."""
        from arch.univariate import SkewStudent

        values = np.empty((len(self.location), len(CRPS_GRID)))
        for params, rows in self._groups():
            z = SkewStudent().ppf(CRPS_GRID, params)
            values[rows] = self.location[rows, None] + self.scale[rows, None] * z
        return scores.crps_quantiles(actual, values, CRPS_GRID)

    def log_score(self, actual) -> np.ndarray:
        """Negative log density at the outcome for each day, (n,)."""
        from arch.univariate import SkewStudent

        out = np.empty(len(self.location))
        resid = np.asarray(actual) - self.location
        for params, rows in self._groups():
            out[rows] = -SkewStudent().loglikelihood(
                params, resid[rows], self.scale[rows] ** 2, individual=True
            )
        return out


# ------------------------------------------------------------------ inputs


def percent_returns(prices) -> np.ndarray:
    """Daily log returns x 100, (n - 1,): return j ends on day j + 1."""
    return np.diff(np.log(np.asarray(prices, dtype=np.float64))) * PERCENT


def percent_ranges(ohlc) -> np.ndarray:
    """The Parkinson variance x 100^2 of the day each return ends on, (n - 1,).

    ohlc: (n, 4) split-adjusted Open, High, Low, Close.
    """
    ohlc = np.asarray(ohlc, dtype=np.float64)
    return parkinson(np.log(ohlc[1:, 1]), np.log(ohlc[1:, 2])) * PERCENT**2


# ---------------------------------------------------------------- families


def volatility(
    family: str, returns, ranges, n_fit: int, start=None, cache: bool = True
) -> Volatility:
    """`family` estimated on returns[:n_fit] (ranges[:n_fit]), sigma for all.

    `start`: parameters to start the optimiser from (a refit's previous
    block). A run estimates each (family, n_fit) once; `cache=False` (a
    refit's later blocks, each used once) keeps the fit out of that store,
    so the fits a run reuses are not pushed out by them.
    """
    key = (family, n_fit, _digest(returns, ranges))
    if not cache and key not in _FITS:
        with threadpool_limits(limits=1, user_api="blas"):
            return _sane(_estimate(family, returns, ranges, n_fit, start), returns)
    if key not in _FITS:
        if len(_FITS) > 64:
            _FITS.clear()
        # one BLAS thread: the optimisers' vectors are tiny, and OpenBLAS's
        # threads spin for the cores on a busy machine (4x slower at load 16)
        with threadpool_limits(limits=1, user_api="blas"):
            try:
                _FITS[key] = _sane(
                    _estimate(family, returns, ranges, n_fit, start), returns
                )
            except DegenerateFit as error:  # kept: a run asks again, and
                _FITS[key] = error  # refitting a degenerate one costs the most
                _say_once(family, _DEGENERATE, f"{error}; left out")  # not by callers
    if isinstance(_FITS[key], DegenerateFit):
        raise _FITS[key]
    return _FITS[key]


def _sane(fitted: Volatility, returns) -> Volatility:
    """`fitted`, or DegenerateFit when its volatility is not believable on
    some day (`check_volatility`)."""
    if not np.isfinite(fitted.nu):
        label = LABELS[fitted.family]
        raise DegenerateFit(f"{label} gave a degenerate fit (nu {fitted.nu})")
    check_volatility(fitted.family, fitted.sigma, returns, fitted.n_fit)
    return fitted


def check_volatility(family: str, sigma, returns, n_fit: int) -> None:
    """DegenerateFit when a daily volatility `sigma` (percent) leaves [sd /
    SIGMA_LOW, sd x SIGMA_HIGH] of the sd of returns[:n_fit], or is not a number.

    An optimiser that wandered off: EGARCH on a series without volatility
    clustering gave 0.001% one day and 2,800% another, or a next day 19
    times calmer than the series' sd. On the three sample tickers every
    family stays within sd / 3.6 .. sd x 5.7.
    """
    sd = float(np.std(returns[:n_fit]))
    sigma = np.atleast_1d(np.asarray(sigma, np.float64))
    with np.errstate(invalid="ignore"):
        inside = (sigma >= sd / SIGMA_LOW) & (sigma <= sd * SIGMA_HIGH)
    if not inside.all():
        raise DegenerateFit(
            f"{LABELS[family]} gave a degenerate fit (daily volatility "
            f"{np.nanmin(sigma):.3g}% to {np.nanmax(sigma):.3g}% against the "
            f"training returns' sd of {sd:.3g}%)"
        )


_FITS: dict = {}  # (family, n_fit, data digest) -> Volatility: a run fits each once
_UNCONVERGED: set = set()  # the families whose non-convergence was said
_DEGENERATE: set = set()  # the families whose degenerate fit was said


def _not_converged(family: str, detail: str) -> None:
    """A family's fit did not converge: it is still used when its volatility
    is believable (`check_volatility`)."""
    _say_once(
        family,
        _UNCONVERGED,
        f"{LABELS[family]} estimation did not converge{detail}; kept where its "
        "volatility is believable",
    )


def _say_once(family: str, said: set, message: str) -> None:
    """A warning the first time for `family` in `said`, then debug lines: a
    panel's 200 series would otherwise repeat it once a series."""
    if family in said:
        log.debug("%s", message)
        return
    said.add(family)
    log.warning(
        "%s. Later ones of this family are not repeated here (debug level)", message
    )


def forget_fits() -> None:
    """Empty the store of fits (a benchmark's fresh series)."""
    _FITS.clear()


def _digest(returns, ranges) -> str:
    hashed = hashlib.sha1(np.ascontiguousarray(returns).tobytes())
    if ranges is not None:
        hashed.update(np.ascontiguousarray(ranges).tobytes())
    return hashed.hexdigest()


def _estimate(family: str, returns, ranges, n_fit: int, start=None) -> Volatility:
    if family in ARCH_SPECS:
        return _arch(family, returns, n_fit, start)
    if ranges is None:
        raise ForecasterError(f"{LABELS[family]} needs the days' High and Low.")
    if family == "log_har_t":
        return _log_har(returns, ranges, n_fit)
    leverage = family == "range_gjr_t"
    fitted = range_garch.fit(returns, ranges, leverage, n_fit, start)
    if not fitted.converged:
        _not_converged(family, "")
    h = range_garch.variance(fitted.params, returns, ranges, fitted.seed)
    nu = fitted.params["nu"]
    return Volatility(family, np.sqrt(h), nu, 0.0, fitted.params, fitted.loglik, n_fit)


def _arch(family: str, returns, n_fit: int, start=None) -> Volatility:
    from arch import arch_model  # lazy: arch is for evaluation only
    from arch.utility.exceptions import StartingValueWarning

    model = arch_model(
        returns, mean="Zero", p=1, q=1, rescale=False, **ARCH_SPECS[family]
    )
    first = None if start is None else np.array(list(start.values()), np.float64)
    with warnings.catch_warnings():  # a start out of bounds: arch's own instead
        warnings.simplefilter("ignore", category=StartingValueWarning)
        fitted = model.fit(
            last_obs=n_fit, disp="off", show_warning=False, starting_values=first
        )  # logged:
    if fitted.convergence_flag != 0:
        _not_converged(family, f" (optimizer flag {fitted.convergence_flag})")
    params = {k: float(v) for k, v in fitted.params.items()}
    sigma = np.asarray(model.fix(fitted.params).conditional_volatility, np.float64)
    nu = params.get("nu", params.get("eta"))
    skew = params.get("lambda", 0.0)
    return Volatility(family, sigma, nu, skew, params, fitted.loglikelihood, n_fit)


def _log_har(returns, ranges, n_fit: int) -> Volatility:
    """log-HAR of the Parkinson variance, scaled to the returns by t likelihood."""
    from scipy import optimize

    first = max(HAR_LAGS)
    if n_fit < first + 30:
        raise ForecasterError(
            f"log-HAR needs at least {first + 30} training returns. "
            f"Received: n_fit={n_fit}"
        )
    floor, coef, resid = har_regression(ranges, n_fit)
    ranges = np.asarray(ranges, dtype=np.float64)
    design = har_design(np.maximum(ranges, floor))  # (m, 4) for j >= first
    fitted = slice(first, n_fit)
    expected = np.exp(design @ coef + resid.var() / 2)  # E[P_j] under log-normal
    expected[:first] = float(np.mean(ranges[:n_fit]))
    r = np.asarray(returns)[fitted]

    def objective(x):
        h = math.exp(x[0]) * expected[fitted]
        return -float(np.sum(range_garch.t_loglik(r, h, x[1])))

    start = [math.log(np.mean(r**2) / np.mean(expected[fitted])), 8.0]
    found = optimize.minimize(
        objective, start, method="L-BFGS-B", bounds=[(-10, 10), range_garch.NU_BOUNDS]
    )
    factor, nu = math.exp(found.x[0]), float(found.x[1])
    params = {f"b{k}": float(c) for k, c in enumerate(coef)} | {
        "factor": factor,
        "nu": nu,
        "floor": floor,  # not estimated: the floor on the ranges, and the
        "resid_var": float(resid.var()),  # log regression's residual variance
    }
    sigma = np.sqrt(factor * expected)
    return Volatility("log_har_t", sigma, nu, 0.0, params, -found.fun, n_fit - first)


def har_regression(ranges, n_fit: int) -> tuple[float, np.ndarray, np.ndarray]:
    """(floor, coef (4,), residuals) of the log-HAR OLS on ranges[:n_fit].

    The floor (a tenth of the median positive training range) keeps the
    logarithm of a flat day finite; the regression fits days HAR_LAGS[-1]
    to n_fit - 1.
    """
    first = max(HAR_LAGS)
    ranges = np.asarray(ranges, dtype=np.float64)
    positive = ranges[:n_fit][ranges[:n_fit] > 0]
    floor = 0.1 * float(np.median(positive)) if len(positive) else 1e-8
    floored = np.maximum(ranges[:n_fit], floor)
    design = har_design(floored)[first:]
    coef, *_ = np.linalg.lstsq(design, np.log(floored[first:]), rcond=None)
    return floor, coef, np.log(floored[first:]) - design @ coef


def har_design(ranges: np.ndarray) -> np.ndarray:
    """Rows j: 1 and the log means of ranges over the HAR_LAGS days before j."""
    design = np.ones((len(ranges), 1 + len(HAR_LAGS)))
    total = np.concatenate([[0.0], np.cumsum(ranges)])
    for k, lag in enumerate(HAR_LAGS, start=1):
        j = np.arange(len(ranges))
        lo = np.maximum(j - lag, 0)
        mean = (total[j] - total[lo]) / np.maximum(j - lo, 1)
        design[:, k] = np.log(np.where(j > 0, mean, ranges[0]))
    return design


# ---------------------------------------------------------- distributions


def anchor(family: str, prices, n_train: int, ohlc=None):
    """`family`'s one-step distribution of the test days prices[n_train:].

    Estimated on the training returns (those between prices[:n_train]) only,
    then run through the test days with its parameters fixed. A symmetric t
    is a `LocationScale` (closed-form CRPS), a skewed t a `StandardisedT`.
    """
    prices = np.asarray(prices, dtype=np.float64)
    returns = percent_returns(prices)
    ranges = None if ohlc is None else percent_ranges(ohlc)
    fitted = volatility(family, returns, ranges, n_train - 1)
    sigma = fitted.sigma[n_train - 1 :] / PERCENT
    return _price_distribution(LABELS[family], prices, n_train, sigma, fitted)


def _price_distribution(name, prices, n_train, sigma, fitted: Volatility):
    from forecaster.evaluate.predictive import LocationScale

    previous = prices[n_train - 1 : -1]
    params = {"family": fitted.family, **fitted.params}
    if fitted.skew == 0.0:
        scale = previous * sigma * math.sqrt((fitted.nu - 2) / fitted.nu)
        return LocationScale(name, previous.copy(), scale, df=fitted.nu, params=params)
    ones = np.ones(len(previous))
    return StandardisedT(
        name,
        previous.copy(),
        previous * sigma,
        fitted.nu * ones,
        fitted.skew * ones,
        params,
    )


def best_family(prices, n_train: int, ohlc=None) -> str:
    """The CANDIDATES family with the lowest BIC on the training returns.

    All are likelihoods of the same training returns, so their BICs compare;
    the test days choose nothing. Range families need `ohlc`.
    """
    returns = percent_returns(prices)
    ranges = None if ohlc is None else percent_ranges(ohlc)
    found = {}
    for family in CANDIDATES:
        if family in RANGE_FAMILIES and ranges is None:
            continue
        try:
            found[family] = volatility(family, returns, ranges, n_train - 1).bic
        except DegenerateFit:  # volatility said so once
            continue
        except Exception as error:  # an optimiser failure leaves that one out
            log.warning("%s could not be estimated (%s)", LABELS[family], error)
    if not found:
        raise ForecasterError("No anchor could be estimated on the training days.")
    return min(found, key=found.get)


def refit_predictive(family: str, prices, n_train: int, ohlc=None, every=REFIT_DAYS):
    """`family` re-estimated every `every` test days on all the days before them.

    Block k starts at test day s_k = n_train + k x every; it is forecast
    with parameters estimated on the returns before s_k (no look-ahead).
    Returns a `StandardisedT` whose t parameters change by block.
    """
    if every < 1:
        raise ForecasterError(f"every must be at least 1. Received: every={every}")
    prices = np.asarray(prices, dtype=np.float64)
    returns = percent_returns(prices)
    ranges = None if ohlc is None else percent_ranges(ohlc)
    n = len(prices)
    sigma, nu, skew = (np.empty(n - n_train) for _ in range(3))
    previous = None  # the block before's parameters: where the next fit starts
    for start in range(n_train, n, every):
        stop = min(start + every, n)
        fitted = volatility(
            family, returns, ranges, start - 1, previous, cache=start == n_train
        )
        previous = fitted.params
        days = slice(start - n_train, stop - n_train)
        sigma[days] = fitted.sigma[start - 1 : stop - 1] / PERCENT
        nu[days], skew[days] = fitted.nu, fitted.skew
    previous = prices[n_train - 1 : -1]  # the prices, now
    name = f"{LABELS[family]}, refit every {every} days"
    params = {
        "family": family,
        "every": every,
        "refits": math.ceil((n - n_train) / every),
    }
    return StandardisedT(name, previous.copy(), previous * sigma, nu, skew, params)
