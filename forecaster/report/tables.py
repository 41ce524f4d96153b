"""Text tables for people: a training run's scores, error by step, backtests."""

from __future__ import annotations

import math

import pandas as pd

from forecaster.evaluate.anchors import LABELS
from forecaster.evaluate.direction import format_direction_table, format_reliability
from forecaster.evaluate.evaluation import format_table

__all__ = ["format_backtest", "format_steps", "format_table", "training_summary"]


def training_summary(metrics: dict, table: str) -> str:
    """Scores beside naive, error by step and interval coverage, as train.py prints.

    A direction model's (objective="direction"): `direction_summary`.
    """
    if "direction" in metrics:
        return direction_summary(metrics, table)
    coverage = metrics["interval_coverage_one_step"]
    return "\n".join(
        [
            table,
            "",
            format_steps(metrics["rmse_by_step"]),
            "",
            "prediction intervals on the test days (one step ahead): "
            + ", ".join(
                f"{float(k):.0%} band covers {v:.1%}" for k, v in coverage.items()
            ),
            *(
                ["", format_distribution(metrics["distribution"])]
                if "distribution" in metrics
                else []
            ),
            *(
                ["", format_multi_step(metrics["multi_step"])]
                if metrics.get("multi_step")
                else []
            ),
        ]
    )


def direction_summary(metrics: dict, table: str) -> str:
    """A direction model's test days, its scores beside the base rate, reliability."""
    reliability = pd.DataFrame(metrics["reliability"]).astype(float)
    return "\n".join(
        [
            f"P(up) on {metrics['test_days']} test days, {metrics['test_start']} to "
            f"{metrics['test_end']}",
            table,
            "",
            format_reliability(reliability),
        ]
    )


def format_steps(by_step: dict, shown=(1, 2, 5, 10, 20, 30)) -> str:
    """Test RMSE by horizon step for the model's methods and naive, a few steps."""
    steps = list(by_step["step"])
    picked = [steps.index(k) for k in shown if k in steps]
    if steps[-1] not in [steps[i] for i in picked]:
        picked.append(len(steps) - 1)
    header = "RMSE by step " + "".join(f"{steps[i]:>9}" for i in picked)
    rows = [header]
    for name in ("recursive", "undamped", "direct", "naive"):
        if name in by_step:
            values = by_step[name]
            rows.append(f"{name:<13}" + "".join(f"{values[i]:>9.3f}" for i in picked))
    rows.append(f"(scored on the test origins with a full {steps[-1]}-day path)")
    return "\n".join(rows)


NOT_ANCHOR_CRPS = ("crps_main", "crps_model", "crps_combined", "crps_model_cqr")


def with_best_anchor(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """`table` with the default distribution's CRPS beside the best anchor's
    on each row (the lowest CRPS of every anchor scored there), and the
    columns that adds; none when the folds have no distribution."""
    anchors = [
        c
        for c in table
        if c.startswith("crps_") and c not in NOT_ANCHOR_CRPS and table[c].notna().any()
    ]
    if "crps_main" not in table or not anchors or table["crps_main"].isna().all():
        return table, []
    scores = table[anchors].apply(pd.to_numeric)
    table = table.assign(
        crps=table["crps_main"],
        anchor_crps=scores.min(axis=1),
        crps_ratio=table["crps_main"] / scores.min(axis=1),
        best_anchor=scores.idxmin(axis=1).str.removeprefix("crps_"),
    )
    return table, ["crps", "anchor_crps", "crps_ratio", "best_anchor"]


def format_backtest(table: pd.DataFrame) -> str:
    """The per-fold and mean backtest table, model beside naive, and the
    default distribution's CRPS beside the best anchor's."""
    table, crps = with_best_anchor(table)
    if "series" in table:  # a panel: one row per fold and series
        columns = ["fold", "series", "test_days", "model_rmse", "naive_rmse"]
        columns += ["rmse_ratio", *crps]
        return table[columns].to_string(
            index=False, na_rep="", float_format=lambda v: f"{v:.4f}"
        )
    columns = [
        "fold",
        "test_start",
        "test_end",
        "test_days",
        "model_rmse",
        "naive_rmse",
        "rmse_ratio",
        "model_mae",
        "naive_mae",
        *crps,
    ]
    return table[columns].to_string(
        index=False, na_rep="", float_format=lambda v: f"{v:.4f}"
    )


DISTRIBUTION_COLUMNS = (  # (label, key, format) of the distribution table
    ("CRPS", "crps", "{:.4f}"),
    ("qCRPS", "crps_quantiles", "{:.4f}"),
    ("IS80", "interval_score_0.8", "{:.3f}"),
    ("cov80", "coverage_0.8", "{:.3f}"),
    ("IS95", "interval_score_0.95", "{:.3f}"),
    ("cov95", "coverage_0.95", "{:.3f}"),
    ("logS", "log_score", "{:.3f}"),
)


def format_distribution(result: dict) -> str:
    """The one-step distribution scores beside the baselines, with the DM verdicts."""
    methods = result["methods"]
    lines = [
        "one-step forecast distribution on the test days (lower is better; "
        "cov = share inside the 80% / 95% interval)",
        f"{'':<16}" + "".join(f"{label:>9}" for label, _, _ in DISTRIBUTION_COLUMNS),
    ]
    for row in methods.values():
        cells = "".join(
            f"{_cell(row[key], fmt):>9}" for _, key, fmt in DISTRIBUTION_COLUMNS
        )
        lines.append(f"{row['label']:<16}{cells}")
    if result.get("combination"):
        lines.append(combination_line(result["combination"], result["main"]))
    main, garch = methods.get(result["main"]), methods.get("garch_t")
    if garch is not None:
        ratios = "".join(
            f"{_cell(_ratio(main[key], garch[key]), '{:.3f}'):>9}"
            if not key.startswith(("coverage", "log"))
            else " " * 9
            for _, key, _ in DISTRIBUTION_COLUMNS
        )
        lines.append(f"{short_name(result) + '/GARCH':<16}{ratios}")
    for key, test in result["tests"].items():
        lines.append(f"DM {key.replace('_', ' ')}: {test['verdict']}")
    if result.get("anchors"):
        lines += ["", format_anchors(result)]
    if result.get("direction"):
        lines += ["", format_direction_table(result["direction"])]
    return "\n".join(lines)


def short_name(result: dict) -> str:
    """The main distribution's name in a row label: "pool" for the model + anchor."""
    return "pool" if result["main"] == "combined" else result["main"]


def combination_line(record: dict, main: str) -> str:
    """The pool row: its anchor and the network's weight (chosen on validation)."""
    weight, anchor = record["weight_model"], record["anchor_label"]
    default = "; it is the default's distribution" if main == "combined" else ""
    if weight == 0:
        return (
            "(model + anchor, the pool: validation gave the network weight 0, so "
            f"it is {anchor} itself{default})"
        )
    return (
        f"(model + anchor, the pool = {weight:.0%} the network's and "
        f"{1 - weight:.0%} {anchor}'s quantiles, the weight chosen on validation"
        f"{default})"
    )


ANCHOR_LOSSES = (  # (label, key) of the tests against each anchor
    ("CRPS", "crps"),
    ("IS80", "interval_score_0.8"),
    ("IS95", "interval_score_0.95"),
    ("logS", "log_score"),
)


def format_anchors(result: dict) -> str:
    """The main distribution against each anchor (DM), then VaR backtests and MCS.

    Ratios are the main's mean loss over the anchor's (below 1: ours is
    lower); for the log score, the difference of the means. p: DM (HLN).
    """
    tests, methods, main = result["anchors"], result["methods"], short_name(result)
    header = f"{main + ' vs':<16}" + "".join(
        f"{label + ' (p)':>17}" for label, _ in ANCHOR_LOSSES
    )
    lines = [
        f"{main} against each anchor: mean loss ratio (logS: difference), DM p",
        header,
    ]
    for key, losses in tests["dm"].items():
        cells = "".join(_dm_cell(losses.get(loss), loss) for _, loss in ANCHOR_LOSSES)
        lines.append(f"{methods[key]['label']:<16}{cells}")
    best = ", ".join(
        _best_cell(tests, label, loss, methods) for label, loss in ANCHOR_LOSSES
    )
    lines.append(f"{main} / the best anchor on each: {best}")
    if tests.get("refit_family"):
        lines.append(
            f"(best, refit/20d: {LABELS.get(tests['refit_family'], '?')}, the "
            "lowest BIC on the "
            "training days, re-estimated every 20 test days on the days before)"
        )
    return "\n".join(lines + ["", format_var(tests, methods)])


def _dm_cell(test, loss: str) -> str:
    if not test or "error" in test:
        return f"{'n/a':>17}"
    value = test["difference"] if loss == "log_score" else test["ratio"]
    return f"{_cell(value, '{:.3f}')} ({test['p_value']:.2f})".rjust(17)


def _best_cell(tests: dict, label: str, loss: str, methods: dict) -> str:
    key = tests["best"].get(loss)
    if key is None:
        return f"{label} n/a"
    if loss == "log_score":
        value = f"{tests['difference_to_best'][loss]:+.3f}"
    else:
        value = _cell(tests["ratio_to_best"].get(loss), "{:.3f}")
    return f"{label} {value} ({methods[key]['label']})"


def format_var(tests: dict, methods: dict) -> str:
    """VaR backtests (Kupiec, Christoffersen p-values) and the MCS, one row each."""
    mcs = tests.get("mcs") or {}
    lines = [
        "VaR backtests (hits / expected; Kupiec and Christoffersen p-values) and "
        f"the {1 - mcs.get('size', 0.1):.0%} model confidence set"
        + (f" on {mcs['loss']}" if mcs else ""),
        f"{'':<16}{'VaR 1%':>10}{'pUC':>7}{'pInd':>7}{'VaR 5%':>10}{'pUC':>7}"
        f"{'pInd':>7}{'MCS p':>10}",
    ]
    for key, var in tests["var"].items():
        cells = ""
        for level in ("0.01", "0.05"):
            if var is None:
                cells += f"{'n/a':>24}"
                continue
            one = var[level]
            kupiec = one["kupiec"]
            expected = kupiec["n"] * float(level)
            cells += f"{kupiec['hits']:>5}/{expected:<4.0f}"
            cells += (
                f"{kupiec['p_value']:>7.2f}{one['christoffersen']['p_value']:>7.2f}"
            )
        p_value = mcs.get("p_values", {}).get(key)
        mark = "" if p_value is None else ("in " if key in mcs["included"] else "out")
        shown = "" if p_value is None else f"{p_value:.2f} {mark}"
        lines.append(f"{methods[key]['label']:<16}{cells}{shown:>10}")
    return "\n".join(lines)


MULTI_STEP_LOSSES = (
    ("qCRPS", "qcrps"),
    ("IS80", "interval_score_0.8"),
    ("IS95", "interval_score_0.95"),
)


def format_multi_step(result: dict) -> str:
    """The main fan against each anchor 5 and 10 days out: mean loss ratios.

    One row per anchor, a column per horizon and loss (below 1: ours is
    lower), then the main fan's coverage.
    """
    main, horizons = result["main"], result["horizons"]
    methods = result["methods"]
    lines = [
        f"further out: {methods[main]['label']} / each anchor on the h-day log return "
        f"({result['origins']} origins, every {result['origin_stride']}th test day; "
        "lower is better)",
        f"{'':<24}"
        + "".join(
            f"{f'h={h} ' + label:>12}"
            for h in horizons
            for label, _ in MULTI_STEP_LOSSES
        ),
    ]
    for key, by_h in result["ratio_to_anchor"].items():
        cells = "".join(
            f"{_cell(by_h[str(h)][loss], '{:.3f}'):>12}"
            for h in horizons
            for _, loss in MULTI_STEP_LOSSES
        )
        lines.append(f"{methods[key]['label']:<24}{cells}")
    coverage = ", ".join(
        f"h={h}: {methods[main][str(h)]['coverage_0.8']:.1%} / "
        f"{methods[main][str(h)]['coverage_0.95']:.1%}"
        for h in horizons
    )
    lines.append(f"{methods[main]['label']} coverage 80% / 95%: {coverage}")
    return "\n".join(lines)


def _ratio(value, reference):
    return None if value is None or not reference else value / reference


def _cell(value, fmt: str) -> str:
    return "n/a" if value is None or math.isnan(value) else fmt.format(value)


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
