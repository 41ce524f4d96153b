"""Range-GARCH(1,1)-t and Range-GJR-t: variance driven by yesterday's range.

Molnár (2016, Applied Economics 48(51)) replaces GARCH's squared return by
the Parkinson variance of the day before, (ln H - ln L)^2 / (4 ln 2), which
carries far more information about the day's variance:

    r_j = sqrt(h_j) z_j,  z_j ~ Student-t(nu) scaled to unit variance,
    h_j = omega + (alpha + gamma 1{r_{j-1} < 0}) P_{j-1} + beta h_{j-1},

with gamma = 0 for Range-GARCH and free (the leverage term) for Range-GJR.
`arch` has neither, so this module writes the maximum likelihood itself
(scipy's L-BFGS-B on the exact Student-t log-likelihood). Returns and
ranges are in percent units (x 100, x 100^2), the scale `arch` fits at.
`simulate` draws data from known parameters (the tests recover them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError

NAMES = {
    False: ("omega", "alpha", "beta", "nu"),
    True: ("omega", "alpha", "gamma", "beta", "nu"),
}
MAX_PERSISTENCE = 0.9999  # upper bound on beta
NU_BOUNDS = (2.05, 200.0)  # degrees of freedom: a finite variance, up to near-normal
STARTS = (0.6, 0.85)  # starting betas tried; the best likelihood is kept


@dataclass(frozen=True)
class RangeFit:
    """A fitted Range-GARCH (leverage False) or Range-GJR (True) model."""

    leverage: bool
    params: dict  # omega, alpha, (gamma,) beta, nu
    loglik: float  # at the maximum, over the `n` fitted returns
    n: int  # returns fitted
    seed: float  # h_0: the mean squared fitted return
    converged: bool

    @property
    def bic(self) -> float:
        """Bayesian information criterion, -2 loglik + k ln n."""
        return -2 * self.loglik + len(self.params) * math.log(self.n)


def variance(params: dict, returns, ranges, seed: float) -> np.ndarray:
    """h_j for every return j, (m,): h_0 = seed, then the range recursion.

    returns, ranges: (m,) percent returns and the Parkinson variance of the
    day each return ends on. h_j uses days before j only.
    """
    from scipy import signal  # lazy: scipy takes 0.5 s; forecasts need none

    returns, ranges = _check(returns, ranges)
    gamma = params.get("gamma", 0.0)
    drive = (
        params["omega"] + (params["alpha"] + gamma * (returns[:-1] < 0)) * ranges[:-1]
    )
    beta = params["beta"]
    h = np.empty(len(returns))
    h[0] = seed
    h[1:] = signal.lfilter([1.0], [1.0, -beta], drive, zi=[beta * seed])[0]
    return h


def t_loglik(returns, h, nu: float) -> np.ndarray:
    """Log density of each return, unit-variance Student-t(nu) x sqrt(h), (m,)."""
    from scipy import special

    const = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
    const -= 0.5 * math.log(math.pi * (nu - 2))
    return (
        const - 0.5 * np.log(h) - (nu + 1) / 2 * np.log1p(returns**2 / (h * (nu - 2)))
    )


def loglik(params: dict, returns, ranges, seed: float) -> float:
    """The model's log-likelihood of `returns` given the ranges."""
    h = variance(params, returns, ranges, seed)
    if not np.all(h > 0):
        return -math.inf
    return float(np.sum(t_loglik(np.asarray(returns, np.float64), h, params["nu"])))


def fit(
    returns, ranges, leverage: bool = False, n_fit: int | None = None, start=None
) -> RangeFit:
    """Maximum likelihood on the first `n_fit` returns (all by default).

    returns, ranges: (m,) as `variance` takes them. Only returns[:n_fit]
    and ranges[:n_fit] are read, so the later days choose nothing. `start`
    (params, e.g. an earlier fit's) replaces the default starting points.
    """
    from scipy import optimize

    returns, ranges = _check(returns, ranges)
    n_fit = len(returns) if n_fit is None else n_fit
    if not 20 <= n_fit <= len(returns):
        raise ForecasterError(
            f"n_fit must be in [20, {len(returns)}]. Received: n_fit={n_fit}"
        )
    r, p = returns[:n_fit], ranges[:n_fit]
    seed = float(np.mean(r**2))
    names = NAMES[leverage]
    mean_range = max(float(np.mean(p)), 1e-12)
    bounds = {
        "omega": (1e-6 * seed, 10 * seed),
        "alpha": (0.0, 5 * seed / mean_range),
        "gamma": (0.0, 5 * seed / mean_range),
        "beta": (0.0, MAX_PERSISTENCE),
        "nu": NU_BOUNDS,
    }

    def objective(x):
        value = loglik(dict(zip(names, x, strict=True)), r, p, seed)
        return -value / n_fit if math.isfinite(value) else 1e10

    best = None
    starts = (
        [start] if start else [_start(seed, mean_range, b, leverage) for b in STARTS]
    )
    for first in starts:
        found = optimize.minimize(
            objective,
            [np.clip(first[k], *bounds[k]) for k in names],
            method="L-BFGS-B",
            bounds=[bounds[k] for k in names],
        )
        if best is None or found.fun < best.fun:
            best = found
    params = {k: float(v) for k, v in zip(names, best.x, strict=True)}
    return RangeFit(
        leverage, params, -best.fun * n_fit, n_fit, seed, bool(best.success)
    )


def _start(seed: float, mean_range: float, beta: float, leverage: bool) -> dict:
    alpha = 0.8 * (1 - beta) * seed / mean_range  # the range carries most of it
    start = {"alpha": alpha, "beta": beta, "nu": 8.0}
    start["omega"] = max(
        seed * (1 - beta) - alpha * mean_range, 1e-6 * seed
    ) + 0.05 * seed * (1 - beta)
    if leverage:
        start["alpha"], start["gamma"] = 0.75 * alpha, 0.5 * alpha
    return start


def simulate(params: dict, n: int, seed: int = 0, ratio: float = 0.7):
    """(returns, ranges), (n,) each, drawn from the model with `params`.

    Each day's range is ratio x h_j x a Gamma(4, 1/4) draw (mean one), a
    stand-in for the Parkinson variance, which underestimates the
    close-to-close variance (no overnight move). The model is conditional
    on the ranges, so their law need only keep the variance stationary.
    """
    rng = np.random.default_rng(seed)
    nu, gamma = params["nu"], params.get("gamma", 0.0)
    persistence = ratio * (params["alpha"] + gamma / 2) + params["beta"]
    if not persistence < 1:
        raise ForecasterError(
            f"params must give a stationary variance (persistence {persistence:.3f} "
            f">= 1). Received: params={params}"
        )
    h = params["omega"] / (1 - persistence)
    returns, ranges = np.empty(n), np.empty(n)
    shocks = rng.standard_t(nu, size=n) * math.sqrt((nu - 2) / nu)
    noise = rng.gamma(4.0, 0.25, size=n)
    for j in range(n):
        returns[j] = math.sqrt(h) * shocks[j]
        ranges[j] = ratio * h * noise[j]
        drive = (params["alpha"] + gamma * (returns[j] < 0)) * ranges[j]
        h = params["omega"] + drive + params["beta"] * h
    return returns, ranges


def _check(returns, ranges) -> tuple[np.ndarray, np.ndarray]:
    returns = np.asarray(returns, dtype=np.float64)
    ranges = np.asarray(ranges, dtype=np.float64)
    if returns.ndim != 1 or returns.shape != ranges.shape:
        raise ForecasterError(
            "returns and ranges must be 1-d and of the same length. Received: "
            f"returns.shape={returns.shape}, ranges.shape={ranges.shape}"
        )
    if not (
        np.all(np.isfinite(returns)) and np.all(np.isfinite(ranges) & (ranges >= 0))
    ):
        raise ForecasterError(
            "returns must be finite and ranges finite and >= 0. Received: a NaN, "
            "inf or negative range"
        )
    return returns, ranges
