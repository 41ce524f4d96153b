"""One global model over a panel: prepare every series, score each beside naive.

Every series is cut at the panel's shared cut-off date (no series trains on a
day another is tested on), scaled by its own scalers fitted on its own
training rows, and fed to one network through one shuffled stream of
windows (forecaster.training). Each series is then scored on its test days
beside the naive forecast, and the panel is summarised by the mean and the
worst ratio to naive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from forecaster.config import PrepSettings
from forecaster.errors import ForecasterError

log = logging.getLogger("forecaster")


@dataclass
class PreparedPanel:
    """The series of a panel, each cut at `cutoff` and scaled on its training rows."""

    cutoff: pd.Timestamp
    features: tuple[str, ...]
    parts: dict  # name -> training.Prepared, in the panel's order
    notes: list[str] = field(default_factory=list)


def prepare_panel(panel, prep: PrepSettings, features=("close",)) -> PreparedPanel:
    """Cut every series at the panel's cut-off and fit its scalers on its train rows.

    `features` (forecaster.features.FEATURES): `close` is the target itself;
    the others become extra inputs. Series too short for the window before
    the cut-off are left out with a warning (an error if none is left).
    """
    from forecaster.data.panel import cutoff_date, drop_short
    from forecaster.features import model_inputs, parse_features, warmup_rows
    from forecaster.training import prepare

    features = parse_features(features)
    cutoff = cutoff_date(panel, prep.train_fraction)
    warmup = warmup_rows(features)
    panel, notes = drop_short(panel, prep.window + warmup, prep.horizon, cutoff)
    parts, skipped = {}, []
    for name, item in panel.items():
        values, extra = model_inputs(item, features)
        n_train = int(values.index.searchsorted(cutoff, side="left"))
        try:
            parts[name] = prepare(values, prep, n_train=n_train, features=extra)
        except ForecasterError as err:
            skipped.append(f"skipped series {name!r}: {err}")
    for note in skipped:
        log.warning(note)
    if not parts:
        raise ForecasterError(
            f"No series of the panel can be trained on: {'; '.join(skipped)}"
        )
    return PreparedPanel(cutoff, features, parts, notes + skipped)


def evaluate_panel(engine, prepared: PreparedPanel) -> dict:
    """Each series scored on its test days beside naive, and the panel summary.

    Returns {"series": {name: evaluation}, "table": DataFrame (one row per
    series), "summary": {mean_ratio, worst_ratio, worst_series}}, each
    evaluation as `forecaster.evaluation.evaluate` gives it.
    """
    from forecaster.evaluation import evaluate

    results = {name: evaluate(engine, part) for name, part in prepared.parts.items()}
    rows = []
    for name, result in results.items():
        metrics = result["metrics"]
        coverage = metrics["interval_coverage_one_step"]
        rows.append(
            {
                "series": name,
                "test_days": metrics["test_days"],
                "model_rmse": metrics["model"]["rmse"],
                "naive_rmse": metrics["naive"]["rmse"],
                "ratio": metrics["rmse_ratio_to_naive"],
                "direction": metrics["model"]["directional_accuracy"],
                "coverage_80": coverage["0.8"],
                "coverage_95": coverage["0.95"],
            }
        )
    table = pd.DataFrame(rows)
    worst = table.loc[table["ratio"].idxmax()]
    summary = {
        "series": len(table),
        "mean_ratio": float(table["ratio"].mean()),
        "worst_ratio": float(worst["ratio"]),
        "worst_series": str(worst["series"]),
    }
    return {"series": results, "table": table, "summary": summary}


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
