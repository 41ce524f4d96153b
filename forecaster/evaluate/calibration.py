"""Conformalized quantile regression (CQR): a head's bands corrected on validation.

Romano, Patterson & Candes (2019), "Conformalized quantile regression". For
each level, the head's one-step central interval [lo, hi] of the next move
(in the representation's units) is scored on the validation windows (the
end of the training part, never the test days) by E = max(lo - y, y - hi),
y the move that happened. The ceil((n + 1) level) / n empirical quantile Q
of E is then subtracted from lo and added to hi: with exchangeable days the
corrected interval covers at least `level` of new days. Q < 0 narrows a
band that was too wide.

`fit_cqr` measures Q for every probabilistic model and it is recorded in
intervals.json; with `calibrate=True` (train.py --calibrate) the test
scores and the forecasts use the corrected bands. A forecast's later days
get Q x sqrt(day), the growth the conformal bands use beyond their
measured steps.
"""

from __future__ import annotations

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate.intervals import conformal_quantile
from forecaster.model.heads import quantile_function
from forecaster.prep.windows import encode_targets, feature_view, window_view

LEVELS = (0.8, 0.95)


def fit_cqr(engine, prepared, applied: bool, levels=LEVELS) -> dict:
    """Q per level from the validation windows of `prepared`, for intervals.json.

    Returns {"method": "cqr", "applied", "validation_days", "widen": {level: Q}}
    with Q in the representation's units (scaled moves).
    """
    spec = engine.head
    if not spec.probabilistic:
        raise ForecasterError(
            "calibrate needs a model with a probabilistic head (loss normal, "
            f"student-t or quantile). Received: a head of kind {spec.kind!r}"
        )
    split = prepared.split
    start, stop = split.val_targets
    contexts = window_view(prepared.scaled, split.window, (start, stop))
    extra = feature_view(prepared.extra, split.window, (start, stop))
    outputs = engine.predict_head(contexts, extra)[:, :1]
    actual = prepared.scaled[start:stop, None]
    moves = encode_targets(np.asarray(contexts), actual, engine.representation)[:, 0]
    widen = {}
    for level in levels:
        ends = quantile_function(outputs, spec, [(1 - level) / 2, (1 + level) / 2])
        errors = np.maximum(ends[:, 0, 0] - moves, moves - ends[:, 0, 1])
        widen[f"{level:g}"] = conformal_quantile(errors, level)
    return {
        "method": "cqr",
        "applied": bool(applied),
        "validation_days": int(stop - start),
        "widen": widen,
    }


def widen_quantiles(quantiles: np.ndarray, columns, cqr: dict | None) -> np.ndarray:
    """Scaled quantiles (b, days, k) named by `columns` with the CQR correction.

    Each lower_<tag> column loses Q x sqrt(day), each upper_<tag> gains it,
    for the level tag / 100; other columns and an unapplied record are left
    as they are.
    """
    if not cqr or not cqr.get("applied"):
        return quantiles
    quantiles = np.array(quantiles, dtype=np.float64)
    growth = np.sqrt(np.arange(1, quantiles.shape[1] + 1))
    for k, column in enumerate(columns):
        side, _, tag = column.partition("_")
        if side in ("lower", "upper"):
            q = cqr["widen"][f"{int(tag) / 100:g}"] * growth
            quantiles[:, :, k] += -q if side == "lower" else q
    return quantiles
