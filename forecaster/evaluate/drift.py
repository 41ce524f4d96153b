"""How much of the recursive point path's drift to keep: none, by default.

A recursive path feeds each step's location back as the next input, so a
small bias in the location compounds: on AAPL the raw path was 6% worse than
naive at 10 days. Daily drift is mostly noise, so the point path is the
zero-drift location (weight 0 in forecaster.model.paths.damp_drift: the last
price). `choose_drift` still measures, on the validation slice, which weight
would have been best and whether its last step beat naive significantly
(Diebold-Mariano, HLN), and records it; with `KEEP_SIGNIFICANT_DRIFT` that
weight would be used. It is off because it failed where it mattered: AAPL's
validation year (a rally) preferred the full drift (p = 0.016), and the test
days then lost 6% to naive at 10 days (BENCHMARKS.md). The test days choose
nothing.
"""

from __future__ import annotations

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate.significance import diebold_mariano
from forecaster.model.paths import damp_drift, paths

DRIFT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # candidate weights on the path's move
SIGNIFICANCE = 0.05  # the DM p-value a drift must beat naive by on validation
KEEP_SIGNIFICANT_DRIFT = False  # use a drift that validation finds significant
#   (off: a trending validation year misled it on AAPL; see the docstring)


def choose_drift(engine, prepared, steps: int, weights=DRIFT_WEIGHTS) -> dict:
    """The drift weight for the recursive point path, from validation origins.

    The weight with the lowest squared error summed over steps 1..`steps` is
    "best"; "weight" is 0 unless KEEP_SIGNIFICANT_DRIFT and that weight's
    last step beats naive significantly. Only origins
    whose whole path lies in the training part count. Returns {"weight",
    "best", "steps", "origins", "mse_by_weight", "dm_p_value"}.
    """
    split, prices = prepared.split, prepared.prices
    start, stop = split.val_targets[0], split.n_train - steps + 1
    chosen = {"weight": 0.0, "best": None, "steps": steps, "origins": 0}
    if stop - start < 2 * steps:
        return {**chosen, "mse_by_weight": {}, "dm_p_value": None}
    raw = paths(engine, prepared, (start, stop), steps, 1)
    actual = np.lib.stride_tricks.sliding_window_view(
        prices[start : stop + steps - 1], steps
    )
    last = prices[start - 1 : stop - 1, None]
    errors = {
        float(w): (damp_drift(raw, last, w, prepared.scaler.log) - actual) ** 2
        for w in weights
    }
    mse = {w: float(e.mean()) for w, e in errors.items()}
    best = min(mse, key=mse.get)
    naive = (last[:, 0] - actual[:, -1]) ** 2
    p_value = _p_value(errors[best][:, -1], naive, steps)
    keep = best > 0 and mse[best] < mse.get(0.0, np.inf) and p_value < SIGNIFICANCE
    keep = keep and KEEP_SIGNIFICANT_DRIFT
    return {
        **chosen,
        "weight": best if keep else 0.0,
        "best": best,
        "origins": int(stop - start),
        "mse_by_weight": mse,
        "dm_p_value": p_value,
    }


def _p_value(loss, naive, steps: int) -> float:
    """DM's p-value of `loss` against naive's; where the difference has no
    variance to test (a constant gap), 0 if it always favours `loss`, else 1."""
    try:
        result = diebold_mariano(loss, naive, horizon=steps)
    except ForecasterError:
        return 0.0 if np.all(loss < naive) else 1.0
    return float(result.p_value) if result.ratio < 1 else 1.0
