"""Is one forecast's loss really lower? The Diebold-Mariano test, HLN-corrected.

Diebold & Mariano (1995) with the small-sample correction of Harvey,
Leybourne & Newbold (1997), as R's `forecast::dm.test` computes it: the
long-run variance of the loss difference sums its autocovariances up to lag
h - 1 with equal weights (the rectangular kernel HLN assume for h-step
forecasts), and the statistic is compared with Student-t, n - 1 df.
statsmodels 0.15's `diebold_mariano_test` gives the same at h = 1 (with
lags=0, harvey_adj=True; the tests check it) but weights the lags with the
Bartlett kernel, so it differs from HLN for h > 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecaster.errors import ForecasterError

SIGNIFICANCE = 0.05  # p-value below which a difference is called significant


@dataclass(frozen=True)
class DieboldMariano:
    """The test's result for losses a and b on the same days."""

    statistic: float  # HLN-corrected; negative when a's mean loss is lower
    p_value: float  # two-sided, Student-t with n - 1 df
    ratio: float  # mean loss a / mean loss b (below 1: a is lower)
    n: int  # days compared
    horizon: int  # forecast horizon h of both


def diebold_mariano(loss_a, loss_b, horizon: int = 1) -> DieboldMariano:
    """H0: equal expected loss. loss_a, loss_b: (n,) per-day losses on the same days.

    d = loss_a - loss_b; DM = mean(d) / sqrt(V / n) with V = gamma_0 + 2
    sum_{k=1}^{h-1} gamma_k (autocovariances of d, divided by n); the HLN
    statistic is DM x sqrt((n + 1 - 2h + h (h - 1) / n) / n). When d is zero
    on every day the losses are identical: statistic 0, p-value 1.
    """
    from scipy import stats  # lazy: scipy takes 0.5 s; forecasts need none

    a, b = _check_losses(loss_a, loss_b, horizon)
    d = a - b
    n = len(d)
    ratio = float(a.mean() / b.mean()) if b.mean() else math.nan
    if not np.any(d):
        return DieboldMariano(0.0, 1.0, ratio, n, horizon)
    centred = d - d.mean()
    autocovariances = [centred[k:] @ centred[: n - k] / n for k in range(horizon)]
    long_run = autocovariances[0] + 2 * sum(autocovariances[1:])
    if not long_run > 0:
        raise ForecasterError(
            "the loss differences have no positive long-run variance "
            f"({long_run:.3g}), so the test is undefined for them. Received: "
            f"horizon={horizon}, n={n}"
        )
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = correction * d.mean() / math.sqrt(long_run / n)
    p_value = 2 * stats.t.sf(abs(statistic), df=n - 1)
    return DieboldMariano(float(statistic), float(p_value), ratio, n, horizon)


def verdict(
    result: DieboldMariano, name_a: str, name_b: str, alpha: float = SIGNIFICANCE
) -> str:
    """The result in words: a lower mean loss counts only with p < alpha."""
    if not 0 < alpha < 1:
        raise ForecasterError(f"alpha must be in (0, 1). Received: alpha={alpha}")
    figures = f"mean loss ratio {result.ratio:.3f}, DM p = {result.p_value:.3g}"
    if result.p_value >= alpha or result.statistic == 0:
        return f"no significant difference between {name_a} and {name_b} ({figures})"
    better, worse = (name_a, name_b) if result.statistic < 0 else (name_b, name_a)
    return f"{better} has significantly lower loss than {worse} ({figures})"


def _check_losses(loss_a, loss_b, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(loss_a, dtype=np.float64)
    b = np.asarray(loss_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ForecasterError(
            "loss_a and loss_b must be 1-d and of the same length. "
            f"Received: loss_a.shape={a.shape}, loss_b.shape={b.shape}"
        )
    if len(a) < 3:
        raise ForecasterError(
            f"the test needs at least 3 days of losses. Received: n={len(a)}"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ForecasterError(
            "loss_a and loss_b must be finite. Received: a NaN or inf"
        )
    if not 1 <= horizon < len(a):
        raise ForecasterError(
            f"horizon must be in [1, {len(a) - 1}]. Received: horizon={horizon}"
        )
    return a, b
