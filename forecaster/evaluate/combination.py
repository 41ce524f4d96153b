"""A quantile average of the network's one-step distribution and the best anchor's.

The combined forecast's quantile at each level is w x the model's plus
(1 - w) x the anchor's (a "Vincentized" average, which keeps the shape of a
location-scale forecast and stays as sharp as its parts, unlike a linear pool).
It is a `QuantileSet` on the midpoints of `GRID_SIZE` equal cells of (0, 1),
so its CRPS (2 x the mean pinball loss over the grid) is the midpoint rule of
CRPS = 2 x the integral of the pinball loss over the levels: within 5e-5 of a
Student-t's closed form with 4 df (tests/test_combination.py), so it is printed and
compared beside the closed forms.

The anchor (a key of forecaster.evaluate.baselines' REGISTRY, one of `ANCHORS`)
and the weight w (one of `WEIGHTS`) are chosen on the validation slice, the
newest training days: the anchor is fitted on the days before that slice, the
model is the one trained (its early stopping saw the same slice), and the pair
with the lowest CRPS there wins. For the test days the anchor is the one fitted
on the whole training part, as every baseline is; the test days choose nothing.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate import baselines, scores
from forecaster.evaluate.predictive import QuantileSet

log = logging.getLogger("forecaster")

ANCHORS = (  # candidate anchors, by baseline key (those fitted in this run)
    "garch_t",
    "gjr_skewt",
    "egarch_t",
    "range_garch_t",
    "range_gjr_t",
    "log_har_t",
)
WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))  # the model's weight
GRID_SIZE = 400  # quantile levels (k + 0.5) / GRID_SIZE: 0.00125 .. 0.99875.
#   The earlier grid k / 200 (k = 1 .. 199), averaged, left out the outer
#   half-cells and overstated a t's CRPS by 0.5%: as much as the pool gains.
#   The levels reports score (0.025, 0.1 ...) interpolate between neighbours
#   0.0025 apart (relative error < 1e-4).
GRID = (np.arange(GRID_SIZE) + 0.5) / GRID_SIZE
KEY, LABEL = "combined", "model + anchor"


@dataclasses.dataclass
class Combination:
    """The choice made on validation and the combined test-day distribution."""

    anchor: str  # the baseline key chosen
    weight: float  # the model's weight (1 - weight on the anchor)
    distribution: QuantileSet  # the test days' combined forecast
    validation: dict  # validation CRPS by anchor and weight, and the alternatives'
    anchor_label: str = ""  # the anchor's printed label

    @property
    def preferred(self) -> bool:
        """Whether validation prefers the combination to the model alone."""
        return self.weight < 1.0

    def record(self) -> dict:
        """What metrics.json keeps of the choice."""
        return {
            "anchor": self.anchor,
            "anchor_label": self.anchor_label,
            "weight_model": self.weight,
            "preferred": self.preferred,
            "chosen_on": "validation",
            "validation": string_keys(self.validation),
        }


def string_keys(value):
    """`value` with every dict key a string, as metrics.json reads it back."""
    if isinstance(value, dict):
        return {str(key): string_keys(item) for key, item in value.items()}
    return value


def quantile_grid(distribution, levels=GRID) -> np.ndarray:
    """A distribution's quantiles at `levels`: (n_days, len(levels))."""
    return np.stack([distribution.quantile(level) for level in levels], axis=1)


def quantile_average(model, anchor, weight: float, name: str = LABEL) -> QuantileSet:
    """weight x the model's quantiles + (1 - weight) x the anchor's, on `GRID`."""
    if not 0.0 <= weight <= 1.0:
        raise ForecasterError(f"weight must be in [0, 1]. Received: weight={weight}")
    values = weight * quantile_grid(model) + (1 - weight) * quantile_grid(anchor)
    return QuantileSet(name, values, GRID)


def choose_weight(model_grid, anchor_grid, actual, weights=WEIGHTS) -> tuple:
    """The weight with the lowest mean grid CRPS, and every weight's CRPS.

    `model_grid`, `anchor_grid`: (n, GRID_SIZE) quantiles on the same days as
    `actual` (n,). Ties go to the larger weight (the model alone is preferred
    unless the anchor helps).
    """
    crps = {
        float(w): float(
            scores.crps_quantiles(
                actual, w * model_grid + (1 - w) * anchor_grid, GRID
            ).mean()
        )
        for w in weights
    }
    best = min(crps.values())
    chosen = max(w for w, value in crps.items() if value <= best * (1 + 1e-12))
    return chosen, crps


def validation_days(days: baselines.TestDays, val_start: int) -> baselines.TestDays:
    """`days` cut to the training part, with the validation slice as its "test".

    Every array field as long as the prices is cut to the training part, so a
    baseline reads nothing after it; the model's point forecasts and bands
    (test-day inputs) are dropped.
    """
    n, n_train = len(days.prices), days.n_train
    cut = {}
    for field in dataclasses.fields(days):
        value = getattr(days, field.name)
        if hasattr(value, "__len__") and not isinstance(value, (str, dict)):
            if len(value) == n:
                cut[field.name] = value[:n_train]
    cut.update(n_train=val_start, predicted=None, intervals=None)
    return dataclasses.replace(days, **cut)


def combine(model_val, model_test, days, val_start: int, found: dict):
    """The combination chosen on validation, or None when no anchor is there.

    `model_val`, `model_test`: the model's distributions on the validation
    days prices[val_start:n_train] and the test days; `days`: the test days'
    `baselines.TestDays`; `found`: the baselines fitted for the test days.
    """
    candidates = [key for key in ANCHORS if key in found]
    if model_val is None or not candidates:
        return None
    val_days = validation_days(days, val_start)
    actual = np.asarray(days.prices[val_start : days.n_train], np.float64)
    model_grid = quantile_grid(model_val)
    record, best = {"model_alone": None, "by_anchor": {}}, None
    for key in candidates:
        anchor_val = baselines.distribution(key, val_days)
        if anchor_val is None:
            continue
        weight, by_weight = choose_weight(model_grid, quantile_grid(anchor_val), actual)
        record["by_anchor"][key] = {"weight_model": weight, "crps": by_weight}
        record["model_alone"] = by_weight[1.0]
        if best is None or by_weight[weight] < best[2]:
            best = (key, weight, by_weight[weight])
    if best is None:
        log.info("no anchor could be fitted on the days before validation")
        return None
    key, weight, _ = best
    test = quantile_average(model_test, found[key], weight)
    return Combination(key, weight, test, record, baselines.label(key))
