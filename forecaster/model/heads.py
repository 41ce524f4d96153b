"""Output heads: what the network forecasts for each step, in NumPy (no TensorFlow).

A head turns the last Dense layer's outputs into a forecast of the next move
in the model's representation (forecaster.prep.windows), one per step:
- "mse": one value per step, the point forecast, trained on squared error;
- "normal" and "student-t": the location and scale of the move (and the
  t's degrees of freedom, one value learned for the whole model), trained by
  negative log-likelihood;
- "quantile": the move's QUANTILES, non-crossing by construction (each one
  is the median plus or minus a sum of positive steps), trained by pinball
  loss;
- "direction": P(the next move is up), trained by binary cross-entropy
  (`objective="direction"`).

Probabilistic and direction heads also feed the network each day's move
beside the path (`move_channel`): risk is read from the size of recent
moves, which the path relative to its last value hides behind a difference.
Both transforms are written here once, in NumPy, and in Keras in
forecaster.model.keras_heads; the tests hold the two to 1e-5. `quantile_function`
reads any quantile of a head's outputs, so uniform draws become samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.config import check_loss
from forecaster.errors import ForecasterError

DEFAULT_LOSS = "student-t"  # a price model's head when no loss is named
QUANTILES = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975)
SCALE_OFFSET = 0.5413248546129181  # softplus(SCALE_OFFSET) = 1: an untrained
#   head's scale is the training moves' standard deviation
MIN_SCALE = 1e-3  # floor of the scale, in units of that standard deviation
MIN_DF = 2.0  # the t's degrees of freedom are MIN_DF + softplus(weight) > 2
INITIAL_DF = 6.0  # degrees of freedom before training
DF_GAIN = 20.0  # a gain on the df weight with which the df trains:
#   df = MIN_DF + softplus(gain x the stored weight). Adam moves a weight by
#   about the learning rate a step whatever its gradient, so with a gain of 1
#   the one df weight moved < 0.01 over a whole run (df stayed 6.0); 20 lets
#   it travel a few units in a few hundred steps. ModelSettings.df_gain
#   chooses (1 by default); a model saved without "df_gain" has a gain of 1.


@dataclass(frozen=True)
class HeadSpec:
    """What a model's head outputs: its kind, steps and parameters per step."""

    kind: str = "mse"  # one of LOSSES, or "direction"
    horizon: int = 1
    move_scale: float = 1.0  # std of the training moves in the representation
    quantiles: tuple[float, ...] = ()

    @property
    def n_params(self) -> int:
        """Parameters per step: 1, 2 (normal), 3 (t, df repeated) or the quantiles."""
        return {"mse": 1, "direction": 1, "normal": 2, "student-t": 3}.get(
            self.kind, len(self.quantiles)
        )

    @property
    def probabilistic(self) -> bool:
        return self.kind in ("normal", "student-t", "quantile")

    @property
    def point_index(self) -> int | None:
        """Which parameter is the point forecast (None: the output is the point)."""
        if self.kind == "quantile":
            return self.quantiles.index(0.5)
        return 0 if self.kind in ("normal", "student-t") else None


def head_kind(loss: str | None, objective: str = "price") -> str:
    """The head a model gets for `loss` (None: DEFAULT_LOSS) and `objective`."""
    check_loss(loss, objective)
    if objective == "direction":
        return "direction"
    return loss or DEFAULT_LOSS


def require_price_objective(objective: str, what: str) -> None:
    """Refuse a direction model in `what`, a run that scores price forecasts."""
    if objective == "direction":
        raise ForecasterError(
            f"{what} scores price forecasts, not the P(up) of a direction model: "
            "train it with train.py alone, which scores it on the test days. "
            f"Received: objective={objective!r}"
        )


def spec_from_config(config: dict) -> HeadSpec:
    """The HeadSpec of a saved model's config.json (mse when it has no head layer)."""
    layers = config.get("config", {}).get("layers", [])
    dense = [layer for layer in layers if layer.get("class_name") == "Dense"]
    for layer in layers:
        if layer.get("class_name") == "DistributionHead":
            options = layer.get("config", {})
            return HeadSpec(
                kind=options["kind"],
                horizon=int(options["horizon"]),
                move_scale=float(options["move_scale"]),
                quantiles=tuple(options.get("quantiles") or ()),
            )
    units = dense[-1].get("config", {}).get("units", 1) if dense else 1
    return HeadSpec(horizon=int(units))


# ------------------------------------------------------------- the transforms


def softplus(x):
    """log(1 + exp(x)), elementwise, without overflow."""
    return np.logaddexp(0.0, x)


def move_channel(x: np.ndarray, move_scale: float) -> np.ndarray:
    """Inputs (b, window, f) plus a channel: the daily moves of channel 0 / move_scale.

    The first day's move is 0 (nothing before it in the window).
    """
    moves = np.diff(x[..., :1], axis=1, prepend=x[:, :1, :1]) / move_scale
    return np.concatenate([x, moves], axis=-1)


def head_outputs(raw: np.ndarray, spec: HeadSpec, df_weight: float = 0.0):
    """Dense outputs (b, horizon * n_params) to the head's (b, horizon[, n_params]).

    `df_weight`: the t's softplus argument (the stored weight x its gain).

    mse: (b, horizon) as they are. direction: sigmoid, (b, horizon).
    normal: [location, scale]; student-t: [location, scale, df]; quantile:
    the quantiles in increasing order; all in the representation's units.
    """
    raw = np.asarray(raw, dtype=np.float64)
    if spec.kind == "mse":
        return raw
    if spec.kind == "direction":
        return 0.5 * (1.0 + np.tanh(0.5 * raw))
    raw = raw.reshape(len(raw), spec.horizon, spec.n_params)
    m = spec.move_scale
    if spec.kind == "quantile":
        return quantile_stack(raw, spec.point_index, m)
    location = m * raw[..., 0]
    scale = m * (softplus(raw[..., 1] + SCALE_OFFSET) + MIN_SCALE)
    parts = [location, scale]
    if spec.kind == "student-t":
        parts.append(np.full_like(location, MIN_DF + softplus(df_weight)))
    return np.stack(parts, axis=-1)


def quantile_stack(raw: np.ndarray, median: int, m: float) -> np.ndarray:
    """(b, h, Q) raw to increasing quantiles: median -+ cumulative softplus steps."""
    centre = m * raw[..., median : median + 1]
    above = m * np.cumsum(softplus(raw[..., median + 1 :]), axis=-1)
    below = m * np.cumsum(softplus(raw[..., :median][..., ::-1]), axis=-1)
    return np.concatenate([centre - below[..., ::-1], centre, centre + above], -1)


def point(outputs, spec: HeadSpec):
    """The point forecast (b, horizon) of head outputs: location, median or the value.

    Slicing only, so NumPy arrays and TensorFlow tensors both work.
    """
    index = spec.point_index
    return outputs if index is None else outputs[..., index]


# ------------------------------------------------------ the quantile function


def quantile_function(outputs: np.ndarray, spec: HeadSpec, levels) -> np.ndarray:
    """The head's quantiles of each step's move at `levels`, (b, steps, k).

    `outputs` (b, steps, n_params) from a probabilistic head; `levels` in
    (0, 1), shape (k,) for the same levels everywhere or (b, steps, k) for
    one set per step (uniform draws turn into samples this way). normal and
    student-t: location + scale x the standard quantile; quantile: linear
    interpolation between the head's quantiles (`interpolate_quantiles`).
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    if spec.kind == "quantile":
        return interpolate_quantiles(outputs, spec.quantiles, levels)
    if spec.kind not in ("normal", "student-t"):
        raise ForecasterError(
            "quantiles need a probabilistic head (loss normal, student-t or "
            f"quantile). Received: a head of kind {spec.kind!r}"
        )
    from scipy import special

    if spec.kind == "normal":
        standard = special.ndtri(levels)
    else:
        standard = _standard_t_quantiles(outputs[..., 2:3], levels)
    return outputs[..., 0:1] + outputs[..., 1:2] * standard


def _standard_t_quantiles(df: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The standard t's quantiles at `levels` for degrees of freedom `df`.

    The head's df is one number per model, and sampled paths repeat their
    levels (every series draws the same set): the quantile function, the
    costly part, then runs once per distinct level.
    """
    from scipy import special

    if df.size and np.all(df == df.flat[0]):
        distinct, where = np.unique(levels, return_inverse=True)
        standard = special.stdtrit(df.flat[0], distinct)[where]
        return np.broadcast_to(
            standard.reshape(levels.shape), np.broadcast_shapes(df.shape, levels.shape)
        )
    return special.stdtrit(df, levels)


def interpolate_quantiles(values: np.ndarray, known, levels: np.ndarray):
    """The inverse CDF through the points (known[j], values[..., j]), at `levels`.

    values (b, steps, Q) increasing, at the increasing levels `known` (Q,);
    levels (k,) or (b, steps, k). Linear between neighbouring levels, and
    the first and last segments go on as straight lines below known[0] and
    above known[-1], so the tails are finite. At a level of `known` the
    result is exactly that quantile.
    """
    known = np.asarray(known, dtype=np.float64)
    levels = np.broadcast_to(levels, (*values.shape[:-1], levels.shape[-1]))
    below = np.searchsorted(known, levels, side="right") - 1
    below = np.clip(below, 0, len(known) - 2)
    low = np.take_along_axis(values, below, axis=-1)
    high = np.take_along_axis(values, below + 1, axis=-1)
    weight = (levels - known[below]) / (known[below + 1] - known[below])
    return low * (1 - weight) + high * weight
