"""Forecast paths from many origins through an engine, and the steps kept per call.

`paths` runs an engine from every origin of a prepared series at once (the test
days' forecasts); `block_for` and `check_block` say how many steps each call keeps:
one for the recursive method, the model's horizon for the direct one.

A recursive point path feeds each step's location back as the next input, so
a small bias in the location (a drift) compounds over the steps: on AAPL the
raw path was 6% worse than naive at 10 days. `damp_drift` scales the path's
move away from the last price by a weight (0: the naive path, 1: the raw
one), which forecaster.evaluate.drift chooses on the validation slice.
"""

from __future__ import annotations

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.prep.windows import feature_view, window_view

METHODS = ("recursive", "direct")


def block_for(method: str, horizon: int) -> int:
    """Steps kept per model call: 1 for recursive, the model's horizon for direct."""
    if method not in METHODS:
        raise ForecasterError(
            f"Unknown method {method!r}: choose one of {', '.join(METHODS)}."
        )
    return 1 if method == "recursive" else horizon


def paths(
    engine, prepared, targets: tuple[int, int], steps: int, block: int
) -> np.ndarray:
    """Forecasts from each origin t in `targets`, `steps` ahead: (n_origins, steps).

    With extra input features (`prepared.extra`) the model is called once per
    origin (direct), so `steps` is at most its horizon.
    """
    contexts = window_view(prepared.scaled, prepared.split.window, targets)
    extra = feature_view(prepared.extra, prepared.split.window, targets)
    out = []
    for start in range(0, len(contexts), 2048):
        part = slice(start, start + 2048)
        if extra is None:
            out.append(engine.forecast(contexts[part], steps, block))
        else:
            out.append(engine.forecast(contexts[part], steps, block, extra[part]))
    scaled = np.concatenate(out) if out else np.empty((0, steps))
    return prepared.scaler.inverse_transform(scaled)


def check_block(method: str, horizon: int | None, trained: int) -> int:
    """Steps kept per model call for `method`; `horizon` may lower the direct one.

    `trained` is the model's own horizon. Raises when `horizon` is outside
    1..trained.
    """
    default = block_for(method, trained)
    if horizon is None:
        return default
    if horizon > trained:
        raise ForecasterError(
            f"horizon {horizon} is larger than the model was trained for "
            f"({trained}): retrain with horizon={horizon}, or use {trained} or less. "
            f"Received: horizon={horizon}"
        )
    if horizon < 1:
        raise ForecasterError(
            f"horizon must be at least 1. Received: horizon={horizon}"
        )
    return horizon


def damp_drift(path, last, weight: float, log: bool) -> np.ndarray:
    """The path's move from `last` scaled by `weight`: (b, steps) prices.

    `path` (b, steps) and `last` (b, 1) are prices; `log` scales the log move
    (a log-price model's), else the price move.
    """
    path, last = np.asarray(path, np.float64), np.asarray(last, np.float64)
    if log:
        return last * np.exp(weight * np.log(path / last))
    return last + weight * (path - last)
