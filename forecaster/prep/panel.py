"""Every series of a panel prepared for one network: one cut-off, scalers per series.

Every series is cut at the panel's shared cut-off date (no series trains on a
day another is tested on), scaled by its own scalers fitted on its own
training rows, and validated on the same dates as the others. A single series
is a panel of one: it gets exactly the split `forecaster.prep.windows.prepare`
gives it alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecaster.config import PrepSettings, parse_features
from forecaster.data.series import Panel
from forecaster.errors import ForecasterError
from forecaster.prep.covariates import align_covariates
from forecaster.prep.features import model_inputs, warmup_rows
from forecaster.prep.ranges import adjusted_ohlc
from forecaster.prep.windows import (
    MIN_FIT_WINDOWS,
    Prepared,
    Scaler,
    prepare,
    scaler_for,
    validation_start,
)

log = logging.getLogger("forecaster")


@dataclass
class PreparedPanel:
    """The series of a panel, each cut at `cutoff` and scaled on its training rows."""

    cutoff: pd.Timestamp
    features: tuple[str, ...]
    parts: dict  # name -> windows.Prepared, in the panel's order
    notes: list[str] = field(default_factory=list)

    def select(self, names) -> PreparedPanel:
        """Only the series named in `names`, in that order (each must exist)."""
        unknown = [name for name in names if name not in self.parts]
        if unknown:
            raise ForecasterError(
                f"series {unknown[0]!r} is not in this panel: it has "
                f"{', '.join(list(self.parts)[:12])}. Received: series={list(names)}"
            )
        parts = {name: self.parts[name] for name in names}
        return PreparedPanel(self.cutoff, self.features, parts, list(self.notes))


def prepare_panel(
    panel, prep: PrepSettings, features=("close",), cutoff=None, covariates=None
) -> PreparedPanel:
    """Cut every series at the panel's cut-off and fit its scalers on its train rows.

    `features` (forecaster.prep.features.FEATURES): `close` is the target itself;
    the others become extra inputs. In a panel of several, a series too short
    for the window before the cut-off, or that cannot be prepared, is left
    out with a warning (an error if none is left); a lone series' problem is
    its error. `cutoff` overrides the panel's own cut-off date (the
    `train_fraction` point of its dates), e.g. to train one series alone on
    the days a whole panel would use. `covariates` ({name: Series}) are past
    covariates (forecaster.prep.covariates), aligned on each series' dates.
    """
    features = parse_features(features)
    warmup = warmup_rows(features) + (1 if covariates else 0)
    # A lone series of prices alone, cut at its own train_fraction point, is
    # split by `prepare` itself (the same rows): its errors are one series'.
    own_split = cutoff is None and len(panel) == 1 and not warmup
    cutoff = (
        cutoff_date(panel, prep.train_fraction)
        if cutoff is None
        else pd.Timestamp(cutoff)
    )
    notes = []
    if len(panel) > 1:
        panel, notes = drop_short(panel, prep.window + warmup, prep.horizon, cutoff)
    val_from = validation_date(panel, cutoff, prep)
    parts, skipped = {}, []
    for name, item in panel.items():
        values, extra = series_inputs(item, features, covariates)
        n_train = None if own_split else int(values.index.searchsorted(cutoff))
        try:
            part = prepare(values, prep, n_train, extra, val_from)
            parts[name] = replace(part, ohlc=series_ohlc(item, values.index))
        except ForecasterError as err:
            if len(panel) == 1:
                raise
            skipped.append(f"skipped series {name!r}: {err}")
    for note in skipped:
        log.warning(note)
    if not parts:
        raise ForecasterError(
            f"No series of the panel can be trained on: {'; '.join(skipped)}"
        )
    return PreparedPanel(cutoff, features, parts, notes + skipped)


def series_inputs(item, features, covariates):
    """The target and its extra inputs (features, then covariates) on shared days."""
    values, extra = model_inputs(item, features)
    if not covariates:
        return values, extra
    aligned = align_covariates(values.index, covariates, f"series {item.name!r}")
    extra = aligned if extra is None else pd.concat([extra, aligned], axis=1)
    return values.iloc[1:], extra.iloc[1:]  # a first day has no covariate change


def series_ohlc(item, dates) -> np.ndarray | None:
    """The series' split-adjusted Open/High/Low/Close on `dates`, (n, 4), or
    None without High/Low (forecaster.prep.ranges; High below Low is an error)."""
    ohlc = adjusted_ohlc(item)
    return None if ohlc is None else ohlc.loc[dates].to_numpy(np.float64)


def validation_date(panel, cutoff, prep: PrepSettings) -> pd.Timestamp:
    """The first validation date, the same for every series of the panel.

    The newest `val_fraction` of the training windows validate, counted on
    the panel's dates before `cutoff` (`forecaster.prep.windows.validation_start`):
    for a panel of one, exactly the series' own split.
    """
    dates = panel.dates[panel.dates < pd.Timestamp(cutoff)]
    start = validation_start(len(dates), prep)
    return dates[min(max(start, 0), len(dates) - 1)]


def context_part(
    values: pd.Series,
    scaler: Scaler,
    representation: str,
    extra: pd.DataFrame | None = None,
    extra_scalers=(),
) -> Prepared:
    """Days a forecast starts from, scaled by a trained series' scalers (no split).

    `values` (n,) are prices; `extra` (n, n_extra) the raw input features on
    the same days, each scaled by its scaler in `extra_scalers`.
    """
    prices = values.to_numpy(dtype=np.float64)
    scaled_extra = None
    if extra is not None and extra.shape[1]:
        scaled_extra = np.column_stack(
            [
                one.transform(extra[column].to_numpy(dtype=np.float64))
                for one, column in zip(extra_scalers, extra.columns, strict=True)
            ]
        )
    return Prepared(
        dates=pd.DatetimeIndex(values.index),
        prices=prices,
        scaled=scaler.transform(prices),
        scaler=scaler,
        split=None,
        representation=representation,
        extra=scaled_extra,
        extra_scalers=list(extra_scalers),
        extra_names=[] if scaled_extra is None else [str(c) for c in extra.columns],
    )


# ------------------------------------------------- one new series, forecast

UNSEEN_SCALE_DAYS = 250  # days whose min and max scale a series the model never saw


def prepare_new_series(
    item, prepared: PreparedPanel, representation: str, intervals: dict
) -> tuple[Prepared, dict, list[str]]:
    """A series given at forecast time to a panel model: (part, intervals, notes).

    A series of the panel keeps the scalers it was trained with. An unseen
    one is scaled by its own min and max over its last UNSEEN_SCALE_DAYS
    days (the model never saw its training part), and its bands are the
    mean of the panel's series' relative widths. `intervals`: {name:
    intervals by method}, as the model holds them; the series' own are
    returned the same way.
    """
    names = list(prepared.parts)
    first = prepared.parts[names[0]]
    if any(name.startswith("cov_") for name in first.extra_names):
        raise ForecasterError(
            "This panel bundle was trained with covariates: forecasting a series "
            "from a new file needs them too, which is not supported yet."
        )
    values, extra = series_inputs(item, prepared.features, None)
    if item.name in prepared.parts:
        known = prepared.parts[item.name]
        scaler, extra_scalers = known.scaler, known.extra_scalers
        own = intervals[item.name]
        notes = [f"{item.name} is a series of this panel: its own scalers are used"]
    else:
        recent = slice(-UNSEEN_SCALE_DAYS, None)
        scaler = scaler_for(representation).fit(values.to_numpy()[recent])
        extra_scalers = [
            Scaler().fit(extra[column].to_numpy()[recent])
            for column in (extra.columns if extra is not None else [])
        ]
        own = {
            method: mean_intervals([intervals[name][method] for name in names])
            for method in intervals[names[0]]
        }
        notes = [
            f"{item.name} is not a series of this panel ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}): it is scaled by its own min and "
            f"max over its last {min(UNSEEN_SCALE_DAYS, len(values))} days, and its "
            "bands are the mean of the panel's series' relative widths"
        ]
    part = context_part(values, scaler, representation, extra, extra_scalers)
    for note in notes:
        log.info(note)
    return part, own, notes


def mean_intervals(all_intervals: list[dict]) -> dict:
    """Intervals whose half-widths are the mean of several series' (same steps)."""
    steps = min(one["steps"] for one in all_intervals)
    mean = dict(all_intervals[0], steps=steps)
    mean["levels"] = {
        level: list(
            np.mean([one["levels"][level][:steps] for one in all_intervals], axis=0)
        )
        for level in all_intervals[0]["levels"]
    }
    if "cqr" in mean:  # a probabilistic head's correction: the mean one too
        widen = mean["cqr"]["widen"]
        mean["cqr"] = dict(
            mean["cqr"],
            widen={
                level: float(
                    np.mean([one["cqr"]["widen"][level] for one in all_intervals])
                )
                for level in widen
            },
        )
    return mean


def cutoff_date(panel: Panel, train_fraction: float = 0.75) -> pd.Timestamp:
    """The first test date, shared by every series of the panel.

    Rule: take the sorted union of all the series' dates (n of them); the
    oldest `int(n * train_fraction)` dates are training days, and the cut-off
    is the next date. Every series trains on its days before the cut-off and
    is tested from it on, so no series trains on a day another is tested on.
    For a panel of one this is today's single-series split.
    """
    if not 0 < train_fraction < 1:
        raise ForecasterError(
            "train_fraction must be between 0 and 1 (exclusive). "
            f"Received: train_fraction={train_fraction}"
        )
    dates = panel.dates
    n_train = int(len(dates) * train_fraction)
    if n_train < 1 or n_train >= len(dates):
        raise ForecasterError(
            f"The panel has {len(dates)} date(s), too few to cut at "
            f"train_fraction={train_fraction}. Use longer series."
        )
    return dates[n_train]


def train_rows(panel: Panel, cutoff) -> dict[str, int]:
    """How many rows of each series fall before `cutoff` (its training rows).

    A series' rows `[:train_rows[name]]` train; the rest are its test rows.
    """
    cutoff = pd.Timestamp(cutoff)
    return {
        name: int(item.values.index.searchsorted(cutoff, side="left"))
        for name, item in panel.items()
    }


def drop_short(
    panel: Panel, window: int, horizon: int, cutoff, min_windows: int | None = None
) -> tuple[Panel, list[str]]:
    """Leave out series too short to train on before `cutoff`, or to test after it.

    A series needs `window + horizon - 1 + min_windows` rows before the
    cut-off (min_windows training windows, default the single-series
    minimum) and `horizon` rows from it on. Short ones are named with their
    row counts in the notes and a warning; if none is left, an error.
    """
    if min_windows is None:
        min_windows = MIN_FIT_WINDOWS
    before = train_rows(panel, cutoff)
    needed = window + horizon - 1 + min_windows
    day = f"{pd.Timestamp(cutoff):%Y-%m-%d}"
    reasons = {}
    for name, item in panel.items():
        after = len(item) - before[name]
        if before[name] < needed:
            reasons[name] = (
                f"series {name!r} has {before[name]} row(s) before the cut-off "
                f"{day}; window={window} and horizon={horizon} need {needed}"
            )
        elif after < horizon:
            reasons[name] = (
                f"series {name!r} has {after} row(s) from the cut-off {day} on; "
                f"horizon={horizon} needs {horizon}"
            )
    if len(reasons) == len(panel):
        raise ForecasterError(
            f"No series is long enough: {'; '.join(reasons.values())}. Use longer "
            "series or a smaller window."
        )
    notes = [f"skipped {reason}" for reason in reasons.values()]
    for note in notes:
        log.warning(note)
    kept = panel.without(reasons)
    kept.notes = panel.notes + notes
    return kept, notes
