"""The report's forecast-distribution section, read from metrics.json as saved.

The same figures train.py prints (forecaster.report.tables.format_distribution):
the model's one-step distribution scores beside each baseline, each test's
verdict (Diebold-Mariano and whatever else the evaluation recorded), and the
P(up) scores with their reliability diagram. Rows and columns come from
whatever methods and tests metrics.json holds; nothing is recomputed here.
"""

from __future__ import annotations

import html

from forecaster.report.html_blocks import section_html, table_html
from forecaster.report.html_sections import (
    direction_scores_html,
    reliability_html,
)
from forecaster.report.tables import (
    DISTRIBUTION_COLUMNS,
    combination_line,
    format_anchors,
)

COLUMN_LABELS = {key: label for label, key, _ in DISTRIBUTION_COLUMNS}
SECTION_TITLE = "Forecast distribution beside the baselines"
NOTE = (
    "<p>One-step forecast distribution on the test days, each method on the "
    "same days (lower is better; cov = share of days inside the 80% / 95% "
    "interval; n/a = a method that gives no such score).</p>"
)


def distribution_section(metrics: dict) -> str:
    """One series' distribution section; empty when metrics.json has none."""
    distribution = metrics.get("distribution")
    if not distribution:
        return ""
    return section_html(SECTION_TITLE, distribution_html(metrics, "up-reliability"))


DETAIL_MAX_SERIES = 5  # a panel's series shown with every table and their chart


def panel_distribution_section(metrics: dict) -> str:
    """A panel's distribution section: one table of every series, then detail.

    The table gives each series' default distribution and its scores, its
    test against GARCH-t and its pool; the first DETAIL_MAX_SERIES series
    get every table and their reliability diagram as one series' report
    does (200 series' blocks took most of a panel report's drawing time).
    """
    series = {
        name: one for name, one in (metrics.get("series") or {}).items()
        if one.get("distribution")
    }  # fmt: skip
    if not series:
        return ""
    blocks = [
        f"<h3 id='distribution-{index}'>{html.escape(str(name))}</h3>"
        + distribution_html(one, f"up-reliability-{index}")
        for index, (name, one) in enumerate(list(series.items())[:DETAIL_MAX_SERIES])
    ]
    note = "<p>Each series' default distribution on its test days, one step ahead"
    note += " (cov = share of days inside the band; vs GARCH-t: the CRPS ratio"
    note += " and its Diebold-Mariano p-value).</p>"
    if len(series) > DETAIL_MAX_SERIES:
        note += (
            f"<p>Every table and the reliability diagram follow for the first "
            f"{DETAIL_MAX_SERIES} of {len(series)} series; metrics.json holds "
            "them all.</p>"
        )
    body = note + series_table(series) + "".join(blocks)
    return section_html(f"{SECTION_TITLE}, per series", body)


SERIES_COLUMNS = ("crps", "interval_score_0.8", "coverage_0.8")
SERIES_COLUMNS += ("interval_score_0.95", "coverage_0.95")


def series_table(series: dict) -> str:
    """One row per series: its default distribution's scores, vs GARCH-t, its pool."""
    header = ["series", "distribution"]
    header += [COLUMN_LABELS[key] for key in SERIES_COLUMNS]
    header += ["vs GARCH-t CRPS", "DM p", "pool: network weight"]
    rows = []
    for name, one in series.items():
        distribution = one["distribution"]
        main = (distribution.get("methods") or {}).get(distribution.get("main"), {})
        test = (distribution.get("tests") or {}).get("model_vs_garch_crps") or {}
        pool = distribution.get("combination") or {}
        weight = pool.get("weight_model") if pool.get("preferred") else None
        rows.append(
            [
                name,
                main.get("label", distribution.get("main", "")),
                *(score_text(main.get(key)) for key in SERIES_COLUMNS),
                score_text(test.get("ratio")),
                score_text(test.get("p_value")),
                "no pool"
                if weight is None
                else f"{weight:.0%} + {pool['anchor_label']}",
            ]
        )
    table = table_html(header, rows)
    return table.replace("<table>", "<table class='panel-distribution'>", 1)


def distribution_html(metrics: dict, chart_id: str, chart: bool = True) -> str:
    """The methods table, the tests table and the P(up) block of one series.

    `chart`: with the P(up) reliability diagram, when there is one.
    """
    distribution = metrics["distribution"]
    parts = [NOTE, methods_table(distribution)]
    if distribution.get("combination"):
        line = combination_line(distribution["combination"], distribution["main"])
        parts.append(f"<p>{html.escape(line)}</p>")
    tests = distribution.get("tests") or {}
    if tests:
        parts.append("<h4>Tests</h4>" + tests_table(tests))
    if distribution.get("anchors"):  # as train.py prints it
        parts.append(
            "<h4>Against each anchor: DM, VaR backtests, model confidence set</h4>"
            f"<pre class='anchors'>{html.escape(format_anchors(distribution))}</pre>"
        )
    direction = distribution.get("direction")
    if direction:
        parts.append("<h4>Direction: P(up) beside the base rate</h4>")
        parts.append(direction_scores_html(metrics, direction))
        if chart and direction.get("reliability"):
            parts.append(reliability_html(direction["reliability"], chart_id))
    return "".join(parts)


def methods_table(distribution: dict) -> str:
    """One row per method (the model first, as saved), one column per score."""
    methods = distribution.get("methods") or {}
    found = _keys(methods.values(), skip=("label",))
    known = [key for key in COLUMN_LABELS if key in found]  # train.py's order first
    keys = known + [key for key in found if key not in known]
    header = ["method", *(COLUMN_LABELS.get(key, key) for key in keys)]
    rows = [
        [row.get("label", name), *(score_text(row.get(key)) for key in keys)]
        for name, row in methods.items()
    ]
    table = table_html(header, rows)
    return table.replace("<table>", "<table class='distribution'>", 1)


def tests_table(tests: dict) -> str:
    """One row per test, with every figure it recorded and its verdict last."""
    keys = _keys(tests.values(), skip=("verdict",))
    verdict = any("verdict" in test for test in tests.values())
    header = ["test", *(key.replace("_", " ") for key in keys)]
    rows = []
    for name, test in tests.items():
        row = [name.replace("_", " "), *(score_text(test.get(key)) for key in keys)]
        rows.append(row + ([test.get("verdict", "")] if verdict else []))
    table = table_html(header + (["verdict"] if verdict else []), rows)
    return table.replace("<table>", "<table class='tests'>", 1)


def _keys(rows, skip: tuple[str, ...]) -> list[str]:
    """Every key the rows hold, in the order first seen, less `skip`."""
    keys: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            keys.update((key, None) for key in row if key not in skip)
    return list(keys)


def score_text(value) -> str:
    """A score as table text: n/a for None or NaN, 4 significant figures."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value if isinstance(value, str) else _listed(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _listed(value) -> str:
    """A list or dict a test recorded (a confidence set, say), as short text."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)
