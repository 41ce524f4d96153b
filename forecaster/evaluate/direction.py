"""Scores for direction forecasts: P(up) beside the base rate and "always up".

A direction forecast gives, for each test day, the probability p_up that the
price closes above the day before. It is scored on the days the price moved
(as forecaster.evaluate.evaluation does for directional accuracy): a day that closes
exactly at the previous price is neither up nor down, and is left out.
The benchmarks need nothing from the test part: the base-rate forecast says
"up with the training part's frequency" every day, and "always up" says up.

All arrays are (n,) over test days. Brier score and log loss are per day,
lower is better; the difference from the base rate is judged with the
Diebold-Mariano test (forecaster.evaluate.significance) and a moving-block bootstrap.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.errors import ForecasterError
from forecaster.evaluate.significance import diebold_mariano, verdict

LOG_LOSS_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] in the log loss
RELIABILITY_BINS = 10  # equal-width bins of P(up) in the reliability table
BOOTSTRAP_BLOCK = 10  # days per block: two trading weeks, about n^(1/3) at n = 1000
BOOTSTRAP_RESAMPLES = 2000  # bootstrap replicates of the mean loss difference
BOOTSTRAP_SEED = 0  # fixed, so the same losses always give the same interval
INTERVAL_LEVEL = 0.95  # level of the bootstrap interval
BASE_RATE_NAME = "base rate"


# --------------------------------------------------------------------- labels


def moved_days(actual, previous) -> np.ndarray:
    """(n,) bool: True where the price moved (actual != previous)."""
    actual, previous = _same_length(actual=actual, previous=previous)
    return actual != previous


def up_labels(actual, previous) -> np.ndarray:
    """(n,) float: 1.0 where actual > previous, else 0.0.

    An unmoved day gets 0.0 here; the scores leave such days out with
    `moved_days`, so it counts neither as up nor as down.
    """
    actual, previous = _same_length(actual=actual, previous=previous)
    return (actual > previous).astype(np.float64)


def base_rate(train_prices) -> float:
    """Share of up days among the moved days of the training prices (n,).

    The only statistic the base-rate forecast fits: give it the training
    part alone, never the test part.
    """
    prices = _finite_1d("train_prices", train_prices)
    moves = np.diff(prices)
    if not np.any(moves != 0):
        raise ForecasterError(
            "train_prices must move at least once to give a base rate. "
            f"Received: {len(prices)} prices and no move"
        )
    return float(np.mean(moves[moves != 0] > 0))


# --------------------------------------------------------------------- scores


def brier(p_up, up) -> np.ndarray:
    """Per-day Brier score (p_up - up)^2: p_up (n,) in [0, 1], up (n,) 0/1 -> (n,)."""
    p_up, up = _probabilities_and_labels(p_up, up)
    return (p_up - up) ** 2


def log_loss(p_up, up, eps: float = LOG_LOSS_EPS) -> np.ndarray:
    """Per-day log loss -log(probability given to what happened), (n,), in nats.

    p_up is clipped to [eps, 1 - eps] first, so a forecast of exactly 0 or 1
    (such as a share of samples) costs at most -log(eps), 13.8 nats at the
    default 1e-6, instead of an infinite loss that would swamp the mean.
    """
    if not 0 < eps < 0.5:
        raise ForecasterError(f"eps must be in (0, 0.5). Received: eps={eps}")
    p_up, up = _probabilities_and_labels(p_up, up)
    clipped = np.clip(p_up, eps, 1.0 - eps)
    return -(up * np.log(clipped) + (1.0 - up) * np.log1p(-clipped))


def reliability(p_up, up, bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """Calibration table of p_up (n,) against up (n,): one row per equal-width bin.

    Columns bin_lower, bin_upper, mean_forecast, observed_frequency, count.
    Bins are [k / bins, (k + 1) / bins), with 1.0 in the last; an empty bin
    has count 0 and NaN means. A calibrated forecast has observed_frequency
    close to mean_forecast in every bin with many days.
    """
    if not (isinstance(bins, int | np.integer) and bins >= 1):
        raise ForecasterError(f"bins must be an integer >= 1. Received: bins={bins}")
    p_up, up = _probabilities_and_labels(p_up, up)
    index = np.minimum((p_up * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_forecast = np.bincount(index, weights=p_up, minlength=bins) / count
        observed = np.bincount(index, weights=up, minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "mean_forecast": mean_forecast,
            "observed_frequency": observed,
            "count": count,
        }
    )


# ------------------------------------------------------------------ bootstrap


def reliability_records(table: pd.DataFrame) -> list[dict]:
    """The rows of a reliability table for metrics.json, an empty bin's NaN as None."""
    records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    return [{key: _plain(value) for key, value in row.items()} for row in records]


def _plain(value):
    """A NumPy scalar as the Python number it holds (JSON-ready); others as they are."""
    return value.item() if isinstance(value, np.generic) else value


def bootstrap_interval(
    loss_a,
    loss_b,
    level: float = INTERVAL_LEVEL,
    block: int = BOOTSTRAP_BLOCK,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Moving-block bootstrap percentile interval of mean(loss_a - loss_b).

    loss_a, loss_b: (n,) per-day losses on the same days. Each replicate
    joins ceil(n / block) blocks of `block` consecutive days, their starts
    drawn uniformly from the n - block + 1 possible, and keeps the first n
    days (Kuensch 1989), so the autocorrelation within a block survives.
    The same arguments always give the same interval (generator seeded
    with `seed`).
    """
    difference = _loss_difference(loss_a, loss_b)
    _check_bootstrap(len(difference), level, block, resamples)
    means = _block_means(difference, block, resamples, seed)
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(means, [tail, 1.0 - tail])
    return float(lower), float(upper)


def _block_means(
    difference: np.ndarray, block: int, resamples: int, seed: int
) -> np.ndarray:
    """(resamples,) means of moving-block resamples, from prefix sums."""
    n = len(difference)
    blocks = -(-n // block)
    last = n - (blocks - 1) * block  # days kept from the final block
    starts = np.random.default_rng(seed).integers(0, n - block + 1, (resamples, blocks))
    prefix = np.concatenate([[0.0], np.cumsum(difference)])
    full = prefix[starts[:, :-1] + block] - prefix[starts[:, :-1]]
    final = prefix[starts[:, -1] + last] - prefix[starts[:, -1]]
    return (full.sum(axis=1) + final) / n


# -------------------------------------------------------------------- summary


def direction_scores(p_up, actual, previous, train_rate: float, name="model") -> dict:
    """Scores of P(up) on the moved days beside the base rate and "always up".

    p_up, actual, previous: (n,) on the test days; train_rate: the base rate
    from `base_rate` on the training prices. Brier and log loss of the model
    and of the base-rate forecast, their ratios (model / base rate), the
    Diebold-Mariano test on the Brier scores and a bootstrap interval of the
    mean Brier difference (model - base rate, below 0: the model is better;
    blocks of BOOTSTRAP_BLOCK days, or all the days when fewer),
    accuracy (p_up >= 0.5 says up) and that of "always up". A flat dict of
    plain floats, ints and strings, ready for metrics.json. Needs 3 moved
    days; the DM test refuses a Brier difference that is the same non-zero
    value every day (a constant forecast on a test part that only rose).
    """
    _check_probability("train_rate", train_rate)
    p_up, up, unmoved = _moved_part(p_up, actual, previous)
    base = np.full_like(p_up, float(train_rate))
    model_brier, base_brier = brier(p_up, up), brier(base, up)
    model_log, base_log = log_loss(p_up, up), log_loss(base, up)
    dm = diebold_mariano(model_brier, base_brier)
    block = min(BOOTSTRAP_BLOCK, len(up))  # a short test part is one block
    lower, upper = bootstrap_interval(model_brier, base_brier, block=block)
    return {
        "name": str(name),
        "days": int(len(up)),
        "unmoved_days": unmoved,
        "base_rate": float(train_rate),
        "brier": float(model_brier.mean()),
        "brier_base_rate": float(base_brier.mean()),
        "brier_ratio": _ratio(model_brier, base_brier),
        "log_loss": float(model_log.mean()),
        "log_loss_base_rate": float(base_log.mean()),
        "log_loss_ratio": _ratio(model_log, base_log),
        "dm_statistic": dm.statistic,
        "dm_p_value": dm.p_value,
        "verdict": verdict(dm, str(name), BASE_RATE_NAME),
        "brier_difference": float(np.mean(model_brier - base_brier)),
        "brier_difference_lower": lower,
        "brier_difference_upper": upper,
        "interval_level": INTERVAL_LEVEL,
        "bootstrap_block": block,
        "accuracy": float(np.mean((p_up >= 0.5) == (up == 1))),
        "accuracy_always_up": float(up.mean()),
    }


def format_direction_table(scores: dict) -> str:
    """A small text table of `direction_scores`: model, base rate, their ratio."""
    name = scores["name"]
    lines = [f"{'direction':<12}{name:>12}{'base rate':>12}{'ratio':>10}"]
    rows = [
        ("Brier", "brier", "brier_base_rate", "{:.4f}"),
        ("Log loss", "log_loss", "log_loss_base_rate", "{:.4f}"),
        ("Accuracy", "accuracy", "accuracy_always_up", "{:.3f}"),
    ]
    for label, key, base_key, fmt in rows:
        model, base = scores[key], scores[base_key]
        ratio = model / base if base else math.nan
        lines.append(
            f"{label:<12}{fmt.format(model):>12}{fmt.format(base):>12}{ratio:>10.3f}"
        )
    level = f"{scores['interval_level']:.0%}"
    lines.append(
        f"Brier: {scores['verdict']}; {level} block-bootstrap interval of the "
        f"difference [{scores['brier_difference_lower']:+.4f}, "
        f"{scores['brier_difference_upper']:+.4f}]"
    )
    lines.append(
        f"({scores['days']} days that moved; base rate = up with the training "
        f"part's frequency, {scores['base_rate']:.3f}; in the Accuracy row, "
        "always up)"
    )
    return "\n".join(lines)


def score_frame(scores: dict) -> pd.DataFrame:
    """`direction_scores` as a frame: rows brier, log_loss, accuracy.

    Columns model, benchmark (the base rate; "always up" for accuracy) and
    model/benchmark.
    """
    rows = {}
    for key, base_key in (
        ("brier", "brier_base_rate"),
        ("log_loss", "log_loss_base_rate"),
        ("accuracy", "accuracy_always_up"),
    ):
        model, base = scores[key], scores[base_key]
        rows[key] = {
            "model": model,
            "benchmark": base,
            "model/benchmark": model / base if base else math.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def format_reliability(table: pd.DataFrame) -> str:
    """The bins of a `reliability` table that hold days, as text: the calibration."""
    lines = [f"{'P(up) bin':<14}{'mean P(up)':>12}{'up share':>10}{'days':>7}"]
    for row in table[table["count"] > 0].itertuples():
        lines.append(
            f"{row.bin_lower:.2f} to {row.bin_upper:.2f}".ljust(14)
            + f"{row.mean_forecast:>12.3f}{row.observed_frequency:>10.3f}"
            + f"{int(row.count):>7}"
        )
    lines.append("(calibrated: the up share is close to the mean P(up) in each bin)")
    return "\n".join(lines)


# -------------------------------------------------------------------- helpers


def _moved_part(p_up, actual, previous) -> tuple[np.ndarray, np.ndarray, int]:
    """p_up and up labels on the moved days, and how many days did not move."""
    moved = moved_days(actual, previous)
    p_up = _probabilities("p_up", p_up)
    if p_up.shape != moved.shape:
        raise ForecasterError(
            "p_up must have one value per day of actual. "
            f"Received: p_up.shape={p_up.shape}, actual.shape={moved.shape}"
        )
    if moved.sum() < 3:
        raise ForecasterError(
            "direction scores need at least 3 days that moved. "
            f"Received: {int(moved.sum())} of {len(moved)} days moved"
        )
    up = up_labels(actual, previous)
    return p_up[moved], up[moved], int((~moved).sum())


def _ratio(loss_a: np.ndarray, loss_b: np.ndarray) -> float:
    """mean(loss_a) / mean(loss_b), NaN when the latter is 0."""
    denominator = loss_b.mean()
    return float(loss_a.mean() / denominator) if denominator else math.nan


def _probabilities_and_labels(p_up, up) -> tuple[np.ndarray, np.ndarray]:
    p_up, up = _probabilities("p_up", p_up), _finite_1d("up", up, minimum=0)
    if p_up.shape != up.shape:
        raise ForecasterError(
            "p_up and up must have the same length. "
            f"Received: p_up.shape={p_up.shape}, up.shape={up.shape}"
        )
    if np.any((up != 0) & (up != 1)):
        bad = up[(up != 0) & (up != 1)][0]
        raise ForecasterError(f"up must hold only 0 and 1. Received: up={bad}")
    return p_up, up


def _probabilities(name: str, values) -> np.ndarray:
    values = _one_d(name, values)
    outside = ~((values >= 0) & (values <= 1))  # NaN counts as outside
    if np.any(outside):
        day = int(np.argmax(outside))
        raise ForecasterError(
            f"{name} must be in [0, 1]. Received: {name}={values[day]} on day {day}"
        )
    return values


def _check_probability(name: str, value) -> None:
    if not 0 <= value <= 1:
        raise ForecasterError(f"{name} must be in [0, 1]. Received: {name}={value}")


def _same_length(**named) -> list[np.ndarray]:
    values = [_finite_1d(name, value, minimum=0) for name, value in named.items()]
    if len({v.shape for v in values}) > 1:
        shapes = ", ".join(
            f"{k}.shape={v.shape}" for k, v in zip(named, values, strict=True)
        )
        raise ForecasterError(f"arrays must have the same length. Received: {shapes}")
    return values


def _finite_1d(name: str, values, minimum: int = 2) -> np.ndarray:
    values = _one_d(name, values)
    if len(values) < minimum:
        raise ForecasterError(
            f"{name} needs at least {minimum} values. Received: {len(values)}"
        )
    if not np.all(np.isfinite(values)):
        day = int(np.argmax(~np.isfinite(values)))
        raise ForecasterError(
            f"{name} must be finite. Received: {name}={values[day]} on day {day}"
        )
    return values


def _one_d(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ForecasterError(
            f"{name} must be 1-d, one value per day. Received: {name}.shape="
            f"{values.shape}"
        )
    return values


def _loss_difference(loss_a, loss_b) -> np.ndarray:
    a, b = _same_length(loss_a=loss_a, loss_b=loss_b)
    return a - b


def _check_bootstrap(n: int, level: float, block: int, resamples: int) -> None:
    if not 0 < level < 1:
        raise ForecasterError(f"level must be in (0, 1). Received: level={level}")
    if not 1 <= block <= n:
        raise ForecasterError(
            f"block must be in [1, {n}] (the number of days). Received: block={block}"
        )
    if resamples < 1:
        raise ForecasterError(
            f"resamples must be at least 1. Received: resamples={resamples}"
        )
