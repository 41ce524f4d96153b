"""One-step predictive distributions for the test days, in price units.

Two kinds share one interface, `interval(level)` and `quantile(level)`, so
forecaster.evaluate.scores can score both:
- `LocationScale`: a normal (df None) or Student-t per day, with CDF, CRPS
  and log score in closed form;
- `QuantileBands`: central bands around a point forecast at a few levels
  (today's split-conformal bands), whose quantiles exist only at the median
  and at the ends of those bands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.evaluate import scores


@dataclass
class LocationScale:
    """location + scale x Z per test day, Z standard normal or Student-t(df).

    Arrays (n,) in price units. `scale` is the t's scale parameter, not its
    standard deviation (which is scale x sqrt(df / (df - 2))).
    """

    name: str
    location: np.ndarray  # (n,) centre of each day's distribution
    scale: np.ndarray  # (n,) spread of each day's distribution, > 0
    df: float | None = None  # Student-t degrees of freedom; None = normal
    params: dict = field(default_factory=dict)  # what was fitted, for the record

    def quantile(self, level: float) -> np.ndarray:
        """The `level` quantile of each day's distribution, (n,)."""
        from scipy import special, stats  # lazy: scipy takes 0.5 s; forecasts need none

        scores.check_level(level)
        z = special.ndtri(level) if self.df is None else stats.t.ppf(level, self.df)
        return self.location + self.scale * z

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central `level` interval: quantiles (1 - level) / 2 and (1 + level) / 2."""
        scores.check_level(level)
        return self.quantile((1 - level) / 2), self.quantile((1 + level) / 2)

    def cdf(self, actual) -> np.ndarray:
        """F(actual) for each day: the PIT values, (n,)."""
        if self.df is None:
            return scores.pit_normal(actual, self.location, self.scale)
        return scores.pit_student_t(actual, self.location, self.scale, self.df)

    def crps(self, actual) -> np.ndarray:
        """Closed-form CRPS for each day, (n,)."""
        if self.df is None:
            return scores.crps_normal(actual, self.location, self.scale)
        return scores.crps_student_t(actual, self.location, self.scale, self.df)

    def log_score(self, actual) -> np.ndarray:
        """Negative log density at the outcome for each day, (n,)."""
        if self.df is None:
            return scores.log_score_normal(actual, self.location, self.scale)
        return scores.log_score_student_t(actual, self.location, self.scale, self.df)


@dataclass
class QuantileBands:
    """Symmetric central bands center +- half_widths[level] per test day.

    `half_widths` maps each level (e.g. 0.8, 0.95) to (n,) half-widths in
    price units. Quantiles exist at 0.5 (the centre) and at (1 -+ level) / 2.
    """

    name: str
    center: np.ndarray  # (n,) point forecast
    half_widths: dict[float, np.ndarray]  # level -> (n,) half-width, >= 0

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The band at `level`, one of the levels it was built with."""
        half = self._half_width(level)
        return self.center - half, self.center + half

    def quantile(self, level: float) -> np.ndarray:
        """The centre at 0.5, a band's end at (1 -+ band level) / 2, (n,)."""
        scores.check_level(level)
        if np.isclose(level, 0.5):
            return np.asarray(self.center, dtype=np.float64)
        band = abs(2 * level - 1)
        half = self._half_width(band, asked=level)
        return self.center + np.sign(level - 0.5) * half

    def _half_width(self, band: float, asked: float | None = None) -> np.ndarray:
        for known, half in self.half_widths.items():
            if np.isclose(known, band):
                return np.asarray(half, dtype=np.float64)
        if asked is None:
            choices, asked = sorted(self.half_widths), band
        else:
            ends = [(1 - k) / 2 for k in self.half_widths]
            choices = sorted({0.5, *ends, *(1 - e for e in ends)})
        raise ForecasterError(
            f"level must be one of {', '.join(f'{c:g}' for c in choices)} for "
            f"{self.name}. Received: level={asked}"
        )


@dataclass
class QuantileSet:
    """A quantile head's forecast: increasing quantiles at fixed levels per test day.

    `values` (n, k) in price units at `levels` (k,), ascending. Quantiles at
    other levels, and the CDF used for PIT values and P(up), interpolate
    linearly between them and are held at the ends outside them.
    """

    name: str
    values: np.ndarray  # (n, k) quantiles, increasing along the last axis
    levels: np.ndarray  # (k,) in (0, 1), increasing

    def quantile(self, level: float) -> np.ndarray:
        scores.check_level(level)
        levels = np.asarray(self.levels, dtype=np.float64)
        return np.array([np.interp(level, levels, row) for row in self.values])

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        scores.check_level(level)
        return self.quantile((1 - level) / 2), self.quantile((1 + level) / 2)

    def cdf(self, actual) -> np.ndarray:
        """F(actual) interpolated between the quantiles, in [levels[0], levels[-1]]."""
        actual = np.asarray(actual, dtype=np.float64)
        levels = np.asarray(self.levels, dtype=np.float64)
        return np.array(
            [
                np.interp(a, row, levels)
                for a, row in zip(actual, self.values, strict=True)
            ]
        )

    def crps(self, actual) -> np.ndarray:
        """CRPS from the quantiles: 2 x mean pinball loss over its levels, (n,)."""
        return scores.crps_quantiles(actual, self.values, self.levels)
