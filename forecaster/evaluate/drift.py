"""How much of the recursive point path's drift to keep, chosen on validation.

A recursive path feeds each step's location back as the next input, so a
small bias in the location compounds: on AAPL the raw path was 6% worse than
naive at 10 days, although a validation slice of one trending year preferred
it. Daily drift is mostly noise, so the path starts from zero drift (the
naive path, weight 0) and keeps a weight w > 0 (forecaster.model.paths.damp_drift)
only where validation shows that w's paths beat naive at the last step
significantly (Diebold-Mariano, HLN, p < `SIGNIFICANCE`). The test days
choose nothing.
"""

from __future__ import annotations

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate.significance import diebold_mariano
from forecaster.model.paths import damp_drift, paths

DRIFT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # candidate weights on the path's move
SIGNIFICANCE = 0.05  # the DM p-value a drift must beat naive by on validation


def choose_drift(engine, prepared, steps: int, weights=DRIFT_WEIGHTS) -> dict:
    """The drift weight for the recursive point path, from validation origins.

    The weight with the lowest squared error summed over steps 1..`steps` is
    kept if its last step beats naive significantly, else 0. Only origins
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
