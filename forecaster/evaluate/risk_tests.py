"""Tests that settle a risk forecast: VaR backtests and the model confidence set.

- `kupiec`: unconditional coverage (Kupiec 1995): is the share of days below
  the VaR the nominal one? LR = -2 ln[L(p) / L(x / n)], chi-square(1).
- `christoffersen`: independence (Christoffersen 1998): does a hit today
  make one tomorrow more likely? LR of a first-order Markov chain of hits
  against independent hits, chi-square(1).
- `model_confidence_set`: Hansen, Lunde & Nason's (2011) MCS by
  `arch.bootstrap.MCS`: the models whose loss is not significantly worse
  than the best's, at 90% by default.
- `daily_losses`: each day's CRPS, interval scores and log score of one
  distribution, the losses the Diebold-Mariano tests and the MCS compare.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate import scores

VAR_LEVELS = (0.01, 0.05)  # the lower tail probabilities backtested
MCS_SIZE = 0.1  # 1 - the confidence of the model confidence set (90%)
MCS_REPS = 1000  # bootstrap replications of the MCS
MCS_BLOCK = 5  # block length of its stationary bootstrap
MCS_SEED = 0  # the MCS bootstrap's seed: a run gives the same set twice
log = logging.getLogger("forecaster")

LOSSES = ("crps", "interval_score_0.8", "interval_score_0.95", "log_score")


def _bernoulli_loglik(count: float, n: float, p: float) -> float:
    """count x ln p + (n - count) x ln(1 - p), with 0 ln 0 = 0."""
    from scipy import special

    return float(special.xlogy(count, p) + special.xlogy(n - count, 1 - p))


def kupiec(hits, level: float) -> dict:
    """Unconditional coverage of a VaR at tail probability `level`.

    hits: (n,) booleans, True on the days the outcome fell below the VaR.
    Returns hits, n, the observed rate, the LR statistic and its p-value.
    """
    from scipy import stats

    hits = _check_hits(hits)
    if not 0 < level < 1:
        raise ForecasterError(f"level must be in (0, 1). Received: level={level}")
    n, x = len(hits), int(hits.sum())
    statistic = -2 * (_bernoulli_loglik(x, n, level) - _bernoulli_loglik(x, n, x / n))
    statistic = max(statistic, 0.0)
    return {
        "hits": x,
        "n": n,
        "rate": x / n,
        "statistic": statistic,
        "p_value": float(stats.chi2.sf(statistic, 1)),
    }


def christoffersen(hits) -> dict:
    """Independence of VaR hits: first-order Markov against independent.

    n_ij counts days in state i followed by state j (1 = hit); pi_01 =
    n_01 / (n_00 + n_01), pi_11 = n_11 / (n_10 + n_11), pi = (n_01 + n_11) /
    (n - 1). LR = -2 [ln L(pi) - ln L(pi_01, pi_11)], chi-square(1). With no
    hit after a hit possible (no hits), the statistic is 0 (p-value 1).
    """
    from scipy import stats

    hits = _check_hits(hits).astype(int)
    before, after = hits[:-1], hits[1:]
    n = {
        (i, j): int(np.sum((before == i) & (after == j)))
        for i in (0, 1)
        for j in (0, 1)
    }
    zeros, ones = n[0, 0] + n[0, 1], n[1, 0] + n[1, 1]
    pooled = (n[0, 1] + n[1, 1]) / (zeros + ones)
    null = _bernoulli_loglik(n[0, 1] + n[1, 1], zeros + ones, pooled)
    markov = _bernoulli_loglik(n[0, 1], zeros, n[0, 1] / zeros if zeros else 0.0)
    markov += _bernoulli_loglik(n[1, 1], ones, n[1, 1] / ones if ones else 0.0)
    statistic = max(-2 * (null - markov), 0.0)
    return {
        "transitions": {f"n{i}{j}": count for (i, j), count in n.items()},
        "statistic": statistic,
        "p_value": float(stats.chi2.sf(statistic, 1)),
    }


def var_backtest(distribution, actual, levels=VAR_LEVELS) -> dict | None:
    """Kupiec and Christoffersen at each tail level, keyed "0.01", "0.05".

    The VaR at tail probability a is the distribution's a-quantile of the
    price. None when the distribution has no quantile that far out (bands).
    """
    actual = np.asarray(actual, dtype=np.float64)
    result = {}
    for level in levels:
        try:
            var = distribution.quantile(level)
        except ForecasterError:
            return None
        levels_known = getattr(distribution, "levels", None)
        if levels_known is not None and level < min(levels_known):
            return None  # a quantile set held at its lowest level: no VaR
        hits = actual < var
        result[f"{level:g}"] = {
            "kupiec": kupiec(hits, level),
            "christoffersen": christoffersen(hits),
        }
    return result


def daily_losses(distribution, actual) -> dict:
    """{loss: (n,) per day} for LOSSES; CRPS and log score only where defined."""
    actual = np.asarray(actual, dtype=np.float64)
    losses = {}
    if hasattr(distribution, "crps"):
        losses["crps"] = np.asarray(distribution.crps(actual), np.float64)
    for level in (0.8, 0.95):
        lower, upper = distribution.interval(level)
        losses[f"interval_score_{level:g}"] = scores.interval_score(
            actual, lower, upper, level
        )
    if hasattr(distribution, "log_score"):
        losses["log_score"] = np.asarray(distribution.log_score(actual), np.float64)
    return losses


def model_confidence_set(losses: dict, size: float = MCS_SIZE) -> dict:
    """Which models are in the (1 - size) model confidence set of these losses.

    losses: {model: (n,) per-day losses on the same days}. Returns
    {"size", "included": [...], "p_values": {model: MCS p-value}}.
    """
    import pandas as pd
    from arch.bootstrap import MCS  # lazy: arch is for evaluation only

    if len(losses) < 2:
        raise ForecasterError(
            f"the MCS needs at least 2 models. Received: {len(losses)}"
        )
    frame = pd.DataFrame(
        {name: np.asarray(v, np.float64) for name, v in losses.items()}
    )
    mcs = MCS(
        frame, size=size, reps=MCS_REPS, block_size=MCS_BLOCK, method="R", seed=MCS_SEED
    )
    mcs.compute()
    p_values = mcs.pvalues["Pvalue"]
    return {
        "size": size,
        "included": [str(name) for name in mcs.included],
        "p_values": {str(k): float(v) for k, v in p_values.items()},
    }


def anchor_comparison(main_key: str, methods: dict, actual, anchors) -> dict:
    """The main distribution against every anchor on the same test days.

    methods: {key: distribution}, the main one under `main_key`; anchors:
    the keys of `methods` that are anchors (the baselines). Returns, for
    metrics.json: each loss's best anchor and the main one's ratio to it,
    DM (HLN) of the main against each anchor on each loss, VaR backtests of
    every distribution that has those quantiles, and the 90% MCS.
    """
    losses = {key: daily_losses(methods[key], actual) for key in [main_key, *anchors]}
    ours = losses[main_key]
    result = {"best": {}, "ratio_to_best": {}, "dm": {}}
    for loss in LOSSES:
        scored = {
            k: float(np.mean(losses[k][loss])) for k in anchors if loss in losses[k]
        }
        if loss not in ours or not scored:
            continue
        best = min(scored, key=scored.get)
        result["best"][loss] = best
        mean = float(np.mean(ours[loss]))
        ratio = mean / scored[best] if loss != "log_score" and scored[best] else None
        result["ratio_to_best"][loss] = ratio
        result.setdefault("difference_to_best", {})[loss] = mean - scored[best]
    for key in anchors:
        result["dm"][key] = {
            loss: _dm_record(ours[loss], losses[key][loss])
            for loss in LOSSES
            if loss in ours and loss in losses[key]
        }
    result["var"] = {
        key: var_backtest(methods[key], actual) for key in [main_key, *anchors]
    }
    result["mcs"] = _mcs(losses, main_key)
    return result


def _dm_record(ours, theirs) -> dict:
    from forecaster.evaluate.significance import diebold_mariano

    try:
        test = diebold_mariano(ours, theirs)
    except ForecasterError as error:  # identical or constant losses
        return {"error": str(error)}
    return {
        "ratio": finite_or_none(test.ratio),
        "difference": float(np.mean(ours) - np.mean(theirs)),
        "statistic": test.statistic,
        "p_value": test.p_value,
    }


def _mcs(losses: dict, main_key: str) -> dict | None:
    """The 90% MCS on CRPS, or on IS95 when the main distribution has no CRPS."""
    loss = "crps" if "crps" in losses[main_key] else "interval_score_0.95"
    chosen, twins = {}, {}
    for key, values in losses.items():
        if loss not in values:
            continue
        # a model whose losses equal another's on every day shares its fate
        # (the MCS divides by the variance of their difference, zero)
        # (up to rounding: a pool with the network's weight 0 is its anchor)
        twin = next((k for k, v in chosen.items() if _same(v, values[loss])), None)
        if twin is None:
            chosen[key] = values[loss]
        else:
            twins[key] = twin
    if len(chosen) < 2:
        return None
    try:
        result = model_confidence_set(chosen)
    except (ValueError, IndexError, np.linalg.LinAlgError) as error:
        log.warning("the model confidence set could not be computed (%s)", error)
        return None
    for key, twin in twins.items():
        result["p_values"][key] = result["p_values"][twin]
        if twin in result["included"]:
            result["included"].append(key)
    return {"loss": loss, **result, "main_included": main_key in result["included"]}


def _same(a, b) -> bool:
    """Two loss series equal on every day, up to floating-point rounding."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


def _check_hits(hits) -> np.ndarray:
    hits = np.asarray(hits)
    if hits.ndim != 1 or len(hits) < 2:
        raise ForecasterError(
            f"hits must be a 1-d array of at least 2 days. Received: shape {hits.shape}"
        )
    return hits.astype(bool)


def finite_or_none(value):
    """A float for metrics.json: NaN and inf become None."""
    return None if value is None or not math.isfinite(value) else float(value)
