"""The anchors' multi-step forecasts: future returns simulated, NumPy only.

A one-step anchor (forecaster.evaluate.anchors) gives tomorrow's volatility;
further out the variance recursion has to be run on simulated returns. From
an `AnchorState` (a fitted family's parameters and, per origin, the variance
of the next return) `simulate_returns` draws `sims` paths of percent log
returns, (b, sims, steps); their cumulative sums are the h-day log returns.

- GARCH(1,1)-t, GJR-GARCH(1,1,1)-skew-t and EGARCH(1,1,1)-t run arch's own
  recursions with their parametric innovations (Student-t; Hansen's skewed t,
  drawn here by its two-piece form), the simulation arch's
  `forecast(method="simulation")` runs, vectorised over origins (arch loops
  over them: 30 s for three families on AAPL's test days).
- Range-GARCH-t and Range-GJR-t are driven by each day's Parkinson variance,
  which the model does not forecast: each step draws a training day's pair
  (z_j, u_j) = (r_j / sqrt(h_j), P_j / h_j) together (a filtered historical
  simulation), so a large shock comes with its wide range.
- log-HAR-t draws pairs (z_j, e_j) of the training days' standardised return
  and log-range residual, and runs the HAR on the simulated ranges.

The module needs NumPy only, so a forecast can use it without arch or scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate.anchors import HAR_LAGS

SIMULATIONS = 1000  # paths per origin
EGARCH_ABS_MEAN = math.sqrt(2 / math.pi)  # arch's EGARCH centres |e| by E|N(0,1)|
ARCH_FAMILIES = ("garch_t", "gjr_skewt", "egarch_t")
RANGE_FAMILIES = ("range_garch_t", "range_gjr_t", "log_har_t")


@dataclass
class AnchorState:
    """What a simulation of one fitted family needs, per origin.

    `variance` (b,): the variance of each origin's next return (percent^2);
    `history` (b, 22): log-HAR's last 22 floored ranges before it (else None);
    `pairs` (k, 2): the training days' (z, u) or (z, e) pairs (range
    families, else None). A state of several series (`stack_states`) holds
    each origin's own parameters, arrays (b, 1), and pairs (b, k, 2).
    """

    family: str
    params: dict
    variance: np.ndarray
    history: np.ndarray | None = None
    pairs: np.ndarray | None = None

    def record(self) -> dict:
        """A JSON-ready dict (`from_record` reads it back)."""
        return {
            "family": self.family,
            "params": dict(self.params),
            "variance": np.asarray(self.variance).tolist(),
            "history": None if self.history is None else self.history.tolist(),
            "pairs": None if self.pairs is None else self.pairs.tolist(),
        }

    @classmethod
    def from_record(cls, record: dict) -> AnchorState:
        """The state `record` wrote."""
        arrays = {
            key: None if record.get(key) is None else np.asarray(record[key], float)
            for key in ("variance", "history", "pairs")
        }
        return cls(record["family"], dict(record["params"]), **arrays)


def stack_states(states: list[AnchorState]) -> AnchorState:
    """One state for every origin of `states`, each keeping its own fit.

    `states`: of one family, with pairs of one length (range families); the
    parameters become arrays (b, 1), one row per origin, and the pairs
    (b, k, 2), so one `simulate_returns` draws every series' paths together.
    """
    families = {state.family for state in states}
    if len(families) != 1:
        raise ForecasterError(
            f"states must be of one family to stack. Received: {sorted(families)}"
        )
    lengths = {None if state.pairs is None else len(state.pairs) for state in states}
    if len(lengths) != 1:
        raise ForecasterError(
            "states must hold as many pairs each to stack. Received: "
            f"{sorted(lengths, key=str)}"
        )
    counts = [len(np.atleast_1d(state.variance)) for state in states]
    params = {
        key: np.repeat([float(state.params[key]) for state in states], counts)[:, None]
        for key in states[0].params
    }
    variance = np.concatenate([np.atleast_1d(state.variance) for state in states])
    history = pairs = None
    if states[0].history is not None:
        history = np.concatenate([state.history for state in states])
    if states[0].pairs is not None:
        pairs = np.repeat(np.stack([state.pairs for state in states]), counts, axis=0)
    return AnchorState(families.pop(), params, variance, history, pairs)


def simulate_returns(state: AnchorState, steps: int, sims: int = SIMULATIONS, seed=0):
    """Percent log returns (b, sims, steps) drawn from `state`'s family."""
    if steps < 1 or sims < 1:
        raise ForecasterError(
            f"steps and sims must be at least 1. Received: steps={steps}, sims={sims}"
        )
    rng = np.random.default_rng(seed)
    variance = np.repeat(np.asarray(state.variance, float)[:, None], sims, axis=1)
    family, params = state.family, state.params
    if family == "log_har_t":
        return _log_har(state, variance.shape, steps, rng)
    out = np.empty((*variance.shape, steps))
    for step in range(steps):
        if family in ARCH_FAMILIES:
            shock = _innovations(family, params, variance.shape, rng)
            out[..., step] = np.sqrt(variance) * shock
            variance = arch_next_variance(family, params, variance, shock)
        elif family in ("range_garch_t", "range_gjr_t"):
            z, u = _draw_pairs(state.pairs, variance.shape, rng)
            out[..., step] = np.sqrt(variance) * z
            leverage = params.get("gamma", 0.0) * (z < 0)
            drive = (params["alpha"] + leverage) * u * variance
            variance = params["omega"] + drive + params["beta"] * variance
        else:
            raise ForecasterError(f"No simulation for the anchor family {family!r}.")
    return out


def cumulative_quantiles(returns, horizons, levels) -> dict:
    """{h: (b, len(levels))} quantiles of the h-day sums of returns (b, sims, steps)."""
    total = np.cumsum(returns, axis=-1)
    return {
        h: np.moveaxis(np.quantile(total[..., h - 1], levels, axis=1), 0, -1)
        for h in horizons
    }


def arch_next_variance(family: str, params: dict, variance, shock) -> np.ndarray:
    """Next variance of arch's GARCH, GJR or EGARCH given the standardised shock."""
    omega, alpha, beta = params["omega"], params["alpha[1]"], params["beta[1]"]
    gamma = params.get("gamma[1]", 0.0)
    if family == "egarch_t":
        log_next = (
            omega
            + alpha * (np.abs(shock) - EGARCH_ABS_MEAN)
            + gamma * shock
            + beta * np.log(variance)
        )
        return np.exp(log_next)
    squared = variance * shock**2
    return omega + (alpha + gamma * (shock < 0)) * squared + beta * variance


def _innovations(family: str, params: dict, shape, rng) -> np.ndarray:
    """Unit-variance draws: Student-t(nu), or Hansen's skewed t(eta, lambda)."""
    if family == "gjr_skewt":
        return skew_t_draws(params["eta"], params["lambda"], shape, rng)
    nu = params["nu"]
    return rng.standard_t(nu, size=shape) * np.sqrt((nu - 2) / nu)


def skew_t_draws(eta: float, lam: float, shape, rng) -> np.ndarray:
    """Draws of Hansen's (1994) skewed t with unit variance, as arch's SkewStudent.

    Its density is a t kernel scaled by (1 - lambda) left of -a/b and by
    (1 + lambda) right of it: y = b z + a is a two-piece scaled t, left with
    probability (1 - lambda) / 2.
    """
    c = np.exp(_log_gamma((eta + 1) / 2) - _log_gamma(eta / 2)) / np.sqrt(
        math.pi * (eta - 2)
    )
    a = 4 * lam * c * (eta - 2) / (eta - 1)
    b = np.sqrt(1 + 3 * lam**2 - a**2)
    size = np.abs(rng.standard_t(eta, size=shape)) * np.sqrt((eta - 2) / eta)
    left = rng.random(size=shape) < (1 - lam) / 2
    y = np.where(left, -(1 - lam) * size, (1 + lam) * size)
    return (y - a) / b


_log_gamma = np.vectorize(math.lgamma, otypes=[float])  # a parameter or one per origin


def _draw_pairs(pairs, shape, rng) -> tuple[np.ndarray, np.ndarray]:
    """Pairs drawn (shape): from `pairs` (k, 2), or each origin's own (b, k, 2)."""
    if pairs is None or pairs.shape[-2] == 0:
        raise ForecasterError("A range anchor's simulation needs its training pairs.")
    picked = rng.integers(0, pairs.shape[-2], size=shape)
    if pairs.ndim == 3:  # (b, sims) rows: origin i draws from pairs[i]
        picked = pairs[np.arange(shape[0])[:, None], picked]
    else:
        picked = pairs[picked]
    return picked[..., 0], picked[..., 1]


def _log_har(state: AnchorState, shape, steps: int, rng) -> np.ndarray:
    """log-HAR paths: the HAR of the log ranges run on its own simulated ranges."""
    params = state.params
    coef = np.array([params[f"b{k}"] for k in range(1 + len(HAR_LAGS))])
    history = np.repeat(np.asarray(state.history, float)[:, None, :], shape[1], 1)
    out = np.empty((*shape, steps))
    for step in range(steps):
        log_mean = coef[0] + sum(
            coef[k] * np.log(history[..., -lag:].mean(axis=-1))
            for k, lag in enumerate(HAR_LAGS, start=1)
        )
        z, e = _draw_pairs(state.pairs, shape, rng)
        expected = np.exp(log_mean + params["resid_var"] / 2)
        out[..., step] = np.sqrt(params["factor"] * expected) * z
        drawn = np.maximum(np.exp(log_mean + e), params["floor"])
        history = np.concatenate([history[..., 1:], drawn[..., None]], axis=-1)
    return out
