"""One global model over a panel: prepare every series, score each beside naive.

Every series is cut at the panel's shared cut-off date (no series trains on a
day another is tested on), scaled by its own scalers fitted on its own
training rows, and fed to one network through one shuffled stream of
windows (forecaster.train.fit). Each series is then scored on its test days
beside the naive forecast, and the panel is summarised by the mean and the
worst ratio to naive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.config import PrepSettings
from forecaster.errors import ForecasterError

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
    the others become extra inputs. Series too short for the window before
    the cut-off are left out with a warning (an error if none is left).
    `cutoff` overrides the panel's own cut-off date (the `train_fraction`
    point of its dates), e.g. to train one series alone on the days a
    whole panel would use. `covariates` ({name: Series}) are past
    covariates (forecaster.prep.covariates), aligned on each series' dates.
    """
    from forecaster.data.panel import cutoff_date, drop_short
    from forecaster.prep.features import parse_features, warmup_rows
    from forecaster.prep.windows import prepare

    features = parse_features(features)
    cutoff = (
        cutoff_date(panel, prep.train_fraction)
        if cutoff is None
        else pd.Timestamp(cutoff)
    )
    warmup = warmup_rows(features) + (1 if covariates else 0)
    panel, notes = drop_short(panel, prep.window + warmup, prep.horizon, cutoff)
    val_from = validation_date(panel, cutoff, prep.val_fraction)
    parts, skipped = {}, []
    for name, item in panel.items():
        values, extra = _inputs(item, features, covariates)
        n_train = int(values.index.searchsorted(cutoff, side="left"))
        try:
            parts[name] = prepare(values, prep, n_train, extra, val_from)
        except ForecasterError as err:
            skipped.append(f"skipped series {name!r}: {err}")
    for note in skipped:
        log.warning(note)
    if not parts:
        raise ForecasterError(
            f"No series of the panel can be trained on: {'; '.join(skipped)}"
        )
    return PreparedPanel(cutoff, features, parts, notes + skipped)


def _inputs(item, features, covariates):
    """The target and its extra inputs (features, then covariates) on shared days."""
    from forecaster.prep.covariates import align_covariates
    from forecaster.prep.features import model_inputs

    values, extra = model_inputs(item, features)
    if not covariates:
        return values, extra
    aligned = align_covariates(values.index, covariates, f"series {item.name!r}")
    extra = aligned if extra is None else pd.concat([extra, aligned], axis=1)
    return values.iloc[1:], extra.iloc[1:]  # a first day has no covariate change


def validation_date(panel, cutoff, val_fraction: float) -> pd.Timestamp:
    """The first validation date: the newest `val_fraction` of the panel's
    training days (its dates before `cutoff`) validate, the same for every
    series."""
    dates = panel.dates[panel.dates < pd.Timestamp(cutoff)]
    return dates[min(len(dates) - 1, int(len(dates) * (1 - val_fraction)))]


def evaluate_panel(engine, prepared: PreparedPanel, calibrate: bool = False) -> dict:
    """Each series scored on its test days beside naive, and the panel summary.

    Returns {"series": {name: evaluation}, "table": DataFrame (one row per
    series), "summary": {mean_ratio, worst_ratio, worst_series}}, each
    evaluation as `forecaster.evaluate.evaluation.evaluate` gives it.
    """
    from forecaster.evaluate.evaluation import evaluate

    results = {
        name: evaluate(engine, part, calibrate) for name, part in prepared.parts.items()
    }
    table = series_table({name: r["metrics"] for name, r in results.items()})
    worst = table.loc[table["ratio"].idxmax()]
    summary = {
        "series": len(table),
        "mean_ratio": float(table["ratio"].mean()),
        "worst_ratio": float(worst["ratio"]),
        "worst_series": str(worst["series"]),
    }
    return {"series": results, "table": table, "summary": summary}


def series_table(metrics: dict) -> pd.DataFrame:
    """One row per series from {name: metrics}: scores beside naive, coverage."""
    rows = []
    for name, one in metrics.items():
        coverage = one["interval_coverage_one_step"]
        rows.append(
            {
                "series": name,
                "test_days": one["test_days"],
                "model_rmse": one["model"]["rmse"],
                "naive_rmse": one["naive"]["rmse"],
                "ratio": one["rmse_ratio_to_naive"],
                "direction": one["model"]["directional_accuracy"],
                "coverage_80": coverage["0.8"],
                "coverage_95": coverage["0.95"],
            }
        )
    return pd.DataFrame(rows)


def format_panel(table: pd.DataFrame, summary: dict) -> str:
    """One row per series beside naive, then the panel's mean and worst ratio."""
    shown = table.to_string(
        index=False,
        formatters={
            "model_rmse": "{:.4f}".format,
            "naive_rmse": "{:.4f}".format,
            "ratio": "{:.3f}".format,
            "direction": "{:.3f}".format,
            "coverage_80": "{:.1%}".format,
            "coverage_95": "{:.1%}".format,
        },
    )
    return (
        f"{shown}\npanel of {summary['series']}: mean ratio to naive "
        f"{summary['mean_ratio']:.3f}, worst {summary['worst_ratio']:.3f} "
        f"({summary['worst_series']})\n(ratio = model RMSE / naive RMSE on the "
        "same test days; naive = tomorrow's price is today's)"
    )


# ------------------------------------------------------------- the bundle


def long_predictions(evaluation: dict) -> pd.DataFrame:
    """Every series' test-day predictions in one long frame with a series column."""
    frames = [
        result["predictions"].assign(series=name)
        for name, result in evaluation["series"].items()
    ]
    long = pd.concat(frames, ignore_index=True)
    return long[["series", *[c for c in long.columns if c != "series"]]]


def recent_rows(prepared: PreparedPanel, window: int) -> pd.DataFrame:
    """Each series' last `window` days: series, date, price and the raw features."""
    frames = []
    for name, part in prepared.parts.items():
        rows = pd.DataFrame(
            {
                "series": name,
                "date": part.dates[-window:],
                "price": part.prices[-window:],
            }
        )
        for k, feature in enumerate(part.extra_names):
            scaled = part.extra[-window:, k]
            rows[feature] = part.extra_scalers[k].inverse_transform(scaled)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def scaler_dicts(prepared: PreparedPanel) -> dict:
    """{name: the target scaler's dict, with "features": the feature scalers'}."""
    return {
        name: {
            **part.scaler.to_dict(),
            "features": [s.to_dict() for s in part.extra_scalers],
        }
        for name, part in prepared.parts.items()
    }


def from_bundle(bundle, recent: pd.DataFrame) -> PreparedPanel:
    """The series' recent days as a PreparedPanel that forecasts (no split)."""
    from forecaster.prep.windows import Prepared, Scaler

    panel = bundle.metadata["panel"]
    features = panel.get("inputs") or [f for f in panel["features"] if f != "close"]
    raw = _read_json_scalers(bundle)
    parts = {}
    for name in panel["series"]:
        rows = recent[recent["series"] == name]
        scaler = bundle.scaler[name]
        extra_scalers = [Scaler.from_dict(one) for one in raw[name]["features"]]
        extra = None
        if features:
            extra = np.column_stack(
                [
                    s.transform(rows[f].to_numpy())
                    for s, f in zip(extra_scalers, features, strict=True)
                ]
            )
        prices = rows["price"].to_numpy(dtype=np.float64)
        parts[name] = Prepared(
            dates=pd.DatetimeIndex(rows["date"]),
            prices=prices,
            scaled=scaler.transform(prices),
            scaler=scaler,
            split=None,
            representation=bundle.representation,
            extra=extra,
            extra_scalers=extra_scalers,
            extra_names=features,
        )
    return PreparedPanel(pd.Timestamp(panel["cutoff"]), tuple(panel["features"]), parts)


def _read_json_scalers(bundle) -> dict:
    import json

    from forecaster.store.bundle import SCALER_FILE

    return json.loads((bundle.path / SCALER_FILE).read_text())["series"]


# ------------------------------------------------- one new series, forecast

UNSEEN_SCALE_DAYS = 250  # days whose min and max scale a series the model never saw


def prepare_new_series(item, model) -> tuple[dict, dict, list[str]]:
    """A series given at forecast time, as forecast_panel takes it, and notes.

    A series of the panel keeps the scalers it was trained with. An unseen
    one is scaled by its own min and max over its last UNSEEN_SCALE_DAYS
    days (the model never saw its training part), and its bands are the
    mean of the panel's series' relative widths. Returns ({name: part},
    {name: intervals}, notes).
    """
    from forecaster.prep.windows import Prepared, Scaler, scaler_for

    prepared, settings = model.panel_, model.settings
    names = list(prepared.parts)
    inputs = model.metadata_["panel"].get("inputs", [])
    if any(name.startswith("cov_") for name in inputs):
        raise ForecasterError(
            "This panel bundle was trained with covariates: forecasting a series "
            "from a new file needs them too, which is not supported yet."
        )
    values, extra = _inputs(item, prepared.features, None)
    method = model.default_method_
    if item.name in prepared.parts:
        known = prepared.parts[item.name]
        scaler, extra_scalers = known.scaler, known.extra_scalers
        intervals = model.intervals_[item.name][method]
        notes = [f"{item.name} is a series of this panel: its own scalers are used"]
    else:
        recent = slice(-UNSEEN_SCALE_DAYS, None)
        rep = settings.prep.representation
        scaler = scaler_for(rep).fit(values.to_numpy()[recent])
        extra_scalers = [
            Scaler().fit(extra[column].to_numpy()[recent])
            for column in (extra.columns if extra is not None else [])
        ]
        intervals = _mean_intervals([model.intervals_[n][method] for n in names])
        notes = [
            f"{item.name} is not a series of this panel ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}): it is scaled by its own min and "
            f"max over its last {min(UNSEEN_SCALE_DAYS, len(values))} days, and its "
            "bands are the mean of the panel's series' relative widths"
        ]
    scaled_extra = None
    if extra is not None:
        scaled_extra = np.column_stack(
            [
                s.transform(extra[c].to_numpy())
                for s, c in zip(extra_scalers, extra.columns, strict=True)
            ]
        )
    prices = values.to_numpy(dtype=np.float64)
    part = Prepared(
        dates=pd.DatetimeIndex(values.index),
        prices=prices,
        scaled=scaler.transform(prices),
        scaler=scaler,
        split=None,
        representation=settings.prep.representation,
        extra=scaled_extra,
        extra_scalers=extra_scalers,
        extra_names=[] if extra is None else list(extra.columns),
    )
    for note in notes:
        log.info(note)
    return {item.name: part}, {item.name: intervals}, notes


def _mean_intervals(all_intervals: list[dict]) -> dict:
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
