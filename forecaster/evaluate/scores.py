"""Proper scores for predictive distributions, vectorised over test days.

Every function takes arrays of shape (n,) for the n test days (samples and
quantiles add a last axis) in the units of the outcome, here prices, and
returns one score per day, lower is better, unless it says otherwise.
References: Gneiting & Raftery (2007), "Strictly proper scoring rules,
prediction, and estimation", JASA 102; Jordan, Krueger & Lerch (2019),
"Evaluating probabilistic forecasts with scoringRules", J. Stat. Softw. 90.
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.errors import ForecasterError

PIT_BINS = 10  # bins of the PIT histogram
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


# ------------------------------------------------------------------ intervals


def interval_coverage(actual, lower, upper) -> float:
    """Share of days with lower <= actual <= upper (all (n,))."""
    actual, lower, upper = _arrays(actual=actual, lower=lower, upper=upper)
    return float(np.mean((actual >= lower) & (actual <= upper)))


def interval_width(lower, upper) -> float:
    """Mean width upper - lower of the intervals (n,)."""
    lower, upper = _arrays(lower=lower, upper=upper)
    return float(np.mean(upper - lower))


def interval_score(actual, lower, upper, level: float) -> np.ndarray:
    """Interval (Winkler) score of central `level` intervals, (n,).

    Gneiting & Raftery (2007), eq. 43, with alpha = 1 - level:
    (upper - lower) + (2 / alpha) (lower - y) [y < lower]
    + (2 / alpha) (y - upper) [y > upper].
    """
    check_level(level)
    actual, lower, upper = _arrays(actual=actual, lower=lower, upper=upper)
    if np.any(lower > upper):
        day = int(np.argmax(lower > upper))
        raise ForecasterError(
            "lower must not exceed upper. "
            f"Received: lower={lower[day]}, upper={upper[day]} on day {day}"
        )
    alpha = 1.0 - level
    below = np.maximum(lower - actual, 0.0)
    above = np.maximum(actual - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


# ----------------------------------------------------------------------- CRPS


def crps_normal(actual, location, scale) -> np.ndarray:
    """Closed-form CRPS of N(location, scale^2), (n,).

    scale * [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)], z = (y - location) / scale
    (Gneiting & Raftery 2007, eq. 21).
    """
    from scipy import special  # lazy: scipy takes 0.5 s; forecasts need none

    actual, location, scale = _arrays(actual=actual, location=location, scale=scale)
    _check_positive("scale", scale)
    z = (actual - location) / scale
    return scale * (
        z * (2.0 * special.ndtr(z) - 1.0) + 2.0 * _normal_pdf(z) - _INV_SQRT_PI
    )


def crps_student_t(actual, location, scale, df) -> np.ndarray:
    """Closed-form CRPS of a location-scale Student-t with `df` > 1, (n,).

    scale * [z (2 F(z) - 1) + 2 f(z) (df + z^2) / (df - 1)
    - 2 sqrt(df) B(1/2, df - 1/2) / ((df - 1) B(1/2, df / 2)^2)], with F, f
    the standard t's CDF and density (Jordan et al. 2019, scoringRules'
    crps_t). `scale` is the t's scale, not its standard deviation.
    """
    from scipy import special, stats  # lazy: scipy takes 0.5 s; forecasts need none

    actual, location, scale, df = _arrays(
        actual=actual, location=location, scale=scale, df=df
    )
    _check_positive("scale", scale)
    if np.any(df <= 1):
        raise ForecasterError(
            "df must be above 1 for a finite CRPS. "
            f"Received: df={float(df[df <= 1][0])}"
        )
    z = (actual - location) / scale
    first = z * (2.0 * stats.t.cdf(z, df) - 1.0)
    second = 2.0 * stats.t.pdf(z, df) * (df + z**2) / (df - 1.0)
    log_betas = special.betaln(0.5, df - 0.5) - 2.0 * special.betaln(0.5, df / 2.0)
    third = 2.0 * np.sqrt(df) * np.exp(log_betas) / (df - 1.0)
    return scale * (first + second - third)


def crps_samples(actual, samples, fair: bool = True) -> np.ndarray:
    """CRPS of an ensemble: actual (n,), samples (n, m), returns (n,).

    Energy form mean|X - y| - (1 / 2) mean|X - X'|. With `fair` (default) the
    second mean runs over the m (m - 1) distinct pairs, which makes the score
    an unbiased estimate of the CRPS of the distribution the samples come
    from (Ferro 2014); without it, over all m^2 pairs, which is the exact
    CRPS of the samples' empirical distribution.
    """
    actual = _arrays(actual=actual)[0]
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] != actual.shape[0]:
        raise ForecasterError(
            f"samples must have shape (n, m) = ({actual.shape[0]}, m). "
            f"Received: samples.shape={samples.shape}"
        )
    m = samples.shape[1]
    if m < 2:
        raise ForecasterError(f"samples needs at least 2 per day. Received: m={m}")
    spread_to_outcome = np.mean(np.abs(samples - actual[:, None]), axis=1)
    ordered = np.sort(samples, axis=1)
    # sum over ordered pairs |x_i - x_j| = 2 sum_k (2k - m - 1) x_(k), k = 1..m
    weights = 2.0 * np.arange(1, m + 1) - m - 1
    pair_sum = 2.0 * ordered @ weights
    pairs = m * (m - 1) if fair else m * m
    return spread_to_outcome - pair_sum / (2.0 * pairs)


def pinball_loss(actual, quantiles, levels) -> np.ndarray:
    """Pinball (quantile) loss: actual (n,), quantiles (n, k), levels (k,) -> (n, k).

    (1[y < q] - tau) (q - y) for each quantile q at level tau.
    """
    actual, quantiles, levels = _quantile_arrays(actual, quantiles, levels)
    below = (actual[:, None] < quantiles).astype(np.float64)
    return (below - levels) * (quantiles - actual[:, None])


def crps_quantiles(actual, quantiles, levels) -> np.ndarray:
    """CRPS approximated from quantiles: 2 x mean pinball loss over `levels`, (n,).

    The CRPS equals 2 x the integral of the pinball loss over levels in
    (0, 1); this is that integral's Riemann sum with equal weight on each
    level. On an even grid k / (K + 1), k = 1..K, it converges to the CRPS
    as K grows; on a few uneven levels (such as 0.025, 0.1, 0.5, 0.9, 0.975)
    it is a cruder, differently weighted score, to compare only between
    forecasts scored on the same levels.
    """
    return 2.0 * pinball_loss(actual, quantiles, levels).mean(axis=1)


# ------------------------------------------------------------------ log score


def log_score_normal(actual, location, scale) -> np.ndarray:
    """Negative log density of N(location, scale^2) at the outcome, (n,)."""
    actual, location, scale = _arrays(actual=actual, location=location, scale=scale)
    _check_positive("scale", scale)
    z = (actual - location) / scale
    return 0.5 * math.log(2.0 * math.pi) + np.log(scale) + 0.5 * z**2


def log_score_student_t(actual, location, scale, df) -> np.ndarray:
    """Negative log density of a location-scale Student-t at the outcome, (n,)."""
    from scipy import stats  # lazy: scipy takes 0.5 s; forecasts need none

    actual, location, scale, df = _arrays(
        actual=actual, location=location, scale=scale, df=df
    )
    _check_positive("scale", scale)
    _check_positive("df", df)
    return np.log(scale) - stats.t.logpdf((actual - location) / scale, df)


# ------------------------------------------------------------------------ PIT


def pit_normal(actual, location, scale) -> np.ndarray:
    """Probability integral transform F(y) under N(location, scale^2), (n,)."""
    from scipy import special  # lazy: scipy takes 0.5 s; forecasts need none

    actual, location, scale = _arrays(actual=actual, location=location, scale=scale)
    _check_positive("scale", scale)
    return special.ndtr((actual - location) / scale)


def pit_student_t(actual, location, scale, df) -> np.ndarray:
    """Probability integral transform F(y) under a location-scale Student-t, (n,)."""
    from scipy import stats  # lazy: scipy takes 0.5 s; forecasts need none

    actual, location, scale, df = _arrays(
        actual=actual, location=location, scale=scale, df=df
    )
    _check_positive("scale", scale)
    _check_positive("df", df)
    return stats.t.cdf((actual - location) / scale, df)


def pit_histogram(pit, bins: int = PIT_BINS) -> np.ndarray:
    """Counts of PIT values (n,) in `bins` equal bins of [0, 1]; 1.0 falls in the last.

    A calibrated forecast gives a flat histogram; a U shape means bands too
    narrow, a hump bands too wide.
    """
    pit = np.asarray(pit, dtype=np.float64)
    if bins < 1:
        raise ForecasterError(f"bins must be at least 1. Received: bins={bins}")
    if np.any(~((pit >= 0) & (pit <= 1))):
        bad = pit[~((pit >= 0) & (pit <= 1))][0]
        raise ForecasterError(f"pit values must be in [0, 1]. Received: pit={bad}")
    index = np.minimum((pit * bins).astype(np.int64), bins - 1)
    return np.bincount(index, minlength=bins)


# -------------------------------------------------------------------- summary


def score_predictive(predictive, actual, levels=(0.8, 0.95)) -> dict:
    """Mean scores of one predictive distribution on the test days.

    `predictive` is any object with `interval(level)` and `quantile(level)`
    (forecaster.evaluate.predictive); when it also has `crps` and `log_score` (a
    full distribution), those are reported too, else NaN. "crps_quantiles"
    uses the five levels every forecast here can give (the median and the
    two central intervals), so it compares across all of them.
    """
    actual = _arrays(actual=actual)[0]
    result = {}
    for level in levels:
        lower, upper = predictive.interval(level)
        key = f"{level:g}"
        result[f"coverage_{key}"] = interval_coverage(actual, lower, upper)
        result[f"width_{key}"] = interval_width(lower, upper)
        result[f"interval_score_{key}"] = float(
            np.mean(interval_score(actual, lower, upper, level))
        )
    grid = quantile_levels(levels)
    quantiles = np.stack([predictive.quantile(tau) for tau in grid], axis=1)
    result["crps_quantiles"] = float(np.mean(crps_quantiles(actual, quantiles, grid)))
    full, density = hasattr(predictive, "crps"), hasattr(predictive, "log_score")
    result["crps"] = float(np.mean(predictive.crps(actual))) if full else math.nan
    result["log_score"] = (
        float(np.mean(predictive.log_score(actual))) if density else math.nan
    )
    return result


def grid_crps(predictive, actual, grid) -> float:
    """Mean CRPS of `predictive` on the quantile levels `grid`, any distribution.

    `predictive` needs only `quantile(level)`, so a head, a baseline and the
    bands are scored the same way (the search's validation score uses it).
    """
    grid = np.asarray(grid, dtype=np.float64)
    values = np.stack([predictive.quantile(level) for level in grid], axis=1)
    return float(np.mean(crps_quantiles(actual, values, grid)))


def quantile_levels(levels) -> np.ndarray:
    """The median and both ends of each central interval, ascending."""
    for level in levels:
        check_level(level)
    ends = [(1 - level) / 2 for level in levels] + [(1 + level) / 2 for level in levels]
    return np.array(sorted({0.5, *(round(e, 12) for e in ends)}))


# -------------------------------------------------------------------- helpers


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ForecasterError(f"level must be in (0, 1). Received: level={level}")


def _check_positive(name: str, values: np.ndarray) -> None:
    if np.any(~(values > 0)):
        bad = float(values[~(values > 0)][0])
        raise ForecasterError(f"{name} must be positive. Received: {name}={bad}")


def _arrays(**named) -> list[np.ndarray]:
    """Float64 arrays broadcast to one shape; a mismatch names the arguments."""
    values = [np.asarray(v, dtype=np.float64) for v in named.values()]
    try:
        return [np.array(v) for v in np.broadcast_arrays(*values)]
    except ValueError:
        shapes = ", ".join(f"{k}.shape={np.shape(v)}" for k, v in named.items())
        raise ForecasterError(
            f"arrays must have the same shape. Received: {shapes}"
        ) from None


def _quantile_arrays(actual, quantiles, levels):
    actual = _arrays(actual=actual)[0]
    quantiles = np.asarray(quantiles, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    if quantiles.ndim != 2 or quantiles.shape != (actual.shape[0], levels.shape[0]):
        raise ForecasterError(
            "quantiles must have shape (n, k) = "
            f"({actual.shape[0]}, {levels.shape[0]}). "
            f"Received: quantiles.shape={quantiles.shape}"
        )
    for level in levels:
        check_level(float(level))
    return actual, quantiles, levels
