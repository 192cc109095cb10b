"""The report as one self-contained HTML page: inline CSS and SVG charts, no script, nothing fetched from anywhere.

A Content-Security-Policy forbids every external resource and every script, so even a name that slipped past the
escaping could not run or phone home.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from costbrake.formatting import percent, usd
from costbrake.reports.charts import (
    BUDGET_COLOR,
    FEATURE_COLORS,
    MAX_X_LABELS,
    OTHER_COLOR,
    PROJECTION_COLOR,
    TOTAL_COLOR,
    BulletRow,
    Rule,
    Stack,
    bar_list,
    budget_bullets,
    column_chart,
)
from costbrake.reports.figures import CostSeries
from costbrake.reports.model import CostReport
from costbrake.reports.text import (
    RECONCILIATION_OFF,
    REDUCERS_NONE,
    Table,
    anomaly_table,
    budget_table,
    efficiency_lines,
    feature_efficiency_table,
    feature_table,
    model_table,
    period_title,
    printable,
    rate_basis,
    reconciliation_table,
    reconciliation_title,
    reducers_table,
    summary_lines,
    user_table,
)

FEATURES_CHARTED = 7  # the rest are summed as "other"
ANOMALIES_LISTED = 100

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 0; background: #fff; }
main { max-width: 1140px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 22px; margin: 8px 0 16px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
dl.pairs { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 0; }
dl.pairs dt { color: #666; }
dl.pairs dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { background: #f6f6f6; }
th.name, td.name { text-align: left; }
td.name { max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
th.wrap, td.wrap { white-space: normal; text-align: left; min-width: 300px; }
p.note { color: #555; font-size: 13px; margin: 4px 0 0; }
ul.advice li { margin: 4px 0; }
svg.chart { display: block; max-width: 100%; height: auto; margin-top: 6px; }
.empty { color: #777; font-style: italic; }
"""


def render_html(report: CostReport) -> str:
    title = period_title(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>",
        f"<body><main><h1>{escape(title)}</h1>",
        _pairs(summary_lines(report)),
        _section("Cost over time", _cost_chart(report)),
        _section(f"This month's budgets ({report.month.removeprefix('m#')})", _budget_chart(report)),
        _section("Cost by feature over time", _feature_chart(report)),
        _section("Top users", _user_chart(report) + _table(user_table(report))),
        _section("Budgets", _table(budget_table(report))),
        _section("Cost by feature", _table(feature_table(report))),
        _section("Token efficiency by feature", _table(feature_efficiency_table(report))),
        _section("Token efficiency by model", _table(model_table(report))),
        _section("Efficiency (all calls)", _pairs(efficiency_lines(report))),
        _section(
            "Response cache and truncation by feature",
            _table(reducers_table(report))
            if report.reducers.features
            else f'<p class="empty">{escape(REDUCERS_NONE)}</p>',
        ),
        _section(f"Anomalies, last 14 days ({len(report.anomalies)})", _table(anomaly_table(report, ANOMALIES_LISTED))),
        _section(
            reconciliation_title(report),
            _table(reconciliation_table(report))
            if report.reconciliation.checked
            else f'<p class="empty">{escape(RECONCILIATION_OFF)}</p>',
        ),
        _section("Advice", _advice(report)),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in pairs)
    return f'<dl class="pairs">{rows}</dl>'


def _table(table: Table) -> str:
    if not table.rows:
        return '<p class="empty">none</p>'
    last = len(table.headers) - 1

    def css(n: int) -> str:  # a text column at the end (a summary) wraps; other names stay on one line
        return ("wrap" if n == last and n > 0 else "name") if table.is_left(n) else ""

    head = "".join(f'<th class="{css(n)}">{escape(h)}</th>' for n, h in enumerate(table.headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{css(n)}">{escape(printable(cell))}</td>' for n, cell in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _advice(report: CostReport) -> str:
    if not report.advice:
        return '<p class="empty">nothing to change</p>'
    return '<ul class="advice">' + "".join(f"<li>{escape(a.message)}</li>" for a in report.advice) + "</ul>"


# ---- charts ----------------------------------------------------------------------------------------------------


def _series(report: CostReport) -> CostSeries:
    return report.hourly or report.daily


def _labels(series: CostSeries) -> list[str]:
    stamp = "%b %d" if series.granularity == "day" else "%b %d %H:00"
    return [f"{start:{stamp}}" for start in series.starts]


def _ticks(series: CostSeries) -> list[str]:
    """Days: every n-th. Hours: on round hours (every 1, 2, 3, 4, 6 or 12), the date at midnight."""
    count = len(series.starts)
    if series.granularity == "day":
        step = -(-count // MAX_X_LABELS)
        return [f"{start:%b %d}" if n % step == 0 else "" for n, start in enumerate(series.starts)]
    every = next((h for h in (1, 2, 3, 4, 6, 12) if count / h <= MAX_X_LABELS), 24)
    return [
        (f"{start:%b %d}" if start.hour == 0 else f"{start:%H}h") if start.hour % every == 0 else ""
        for start in series.starts
    ]


def _floats(values: Sequence[Decimal]) -> list[float]:
    return [float(v) for v in values]


def _cost_chart(report: CostReport) -> str:
    series = _series(report)
    per = "day" if series.granularity == "day" else "hour"
    buckets_per_day = 1 if per == "day" else 24
    rules = []
    if report.daily_budget_usd is not None:
        budget = report.daily_budget_usd / buckets_per_day
        rules.append(Rule(f"budget {usd(budget)}/{per} (month budget / days)", BUDGET_COLOR, float(budget)))
    rate = report.run_rate_usd_per_day / buckets_per_day
    rules.append(Rule(f"run rate {usd(rate)}/{per}", PROJECTION_COLOR, float(rate), "3 3"))
    chart = column_chart(
        f"Cost per {per}",
        _labels(series),
        [Stack("cost", TOTAL_COLOR, _floats(series.totals))],
        rules,
        _ticks(series),
    )
    return chart + f'<p class="note">{escape(_projection_note(report))}</p>'


def _projection_note(report: CostReport) -> str:
    g = report.global_budget
    basis = f"over the last {report.days} days" if report.rate_since <= report.start else rate_basis(report).strip()
    note = f"Run rate {usd(report.run_rate_usd_per_day)}/day {basis}."
    if g is None:
        return note + " No global budget."
    note += (
        f" Projected month: {usd(g.projected_usd)} of a {usd(g.month_usd)} budget ({percent(g.projected_utilization)})"
    )
    if g.exhausted_at is None:
        return note + "."
    return note + f"; the budget runs out on {g.exhausted_at:%Y-%m-%d %H:%M} UTC."


def _budget_chart(report: CostReport) -> str:
    lines = [report.global_budget, *report.feature_budgets] if report.global_budget else report.feature_budgets
    if not lines:
        return '<p class="empty">no budgets</p>'
    rows = [
        BulletRow(line.scope, float(line.spent_usd), float(line.projected_usd), float(line.month_usd)) for line in lines
    ]
    return budget_bullets("Month to date and projected, against each budget", rows)


def _feature_chart(report: CostReport) -> str:
    series = _series(report)
    if not series.by_feature:
        return '<p class="empty">no calls</p>'
    shown = series.by_feature[:FEATURES_CHARTED]
    stacks = [Stack(f.name, FEATURE_COLORS[n % len(FEATURE_COLORS)], _floats(f.costs)) for n, f in enumerate(shown)]
    rest = series.by_feature[FEATURES_CHARTED:]
    if rest:
        other = [sum((f.costs[n] for f in rest), Decimal(0)) for n in range(len(series.starts))]
        stacks.append(Stack(f"other ({len(rest)} features)", OTHER_COLOR, _floats(other)))
    per = "day" if series.granularity == "day" else "hour"
    return column_chart(f"Cost per {per} by feature", _labels(series), stacks, ticks=_ticks(series))


def _user_chart(report: CostReport) -> str:
    if not report.top_users:
        return ""
    rows = [
        (
            u.user_id,
            float(u.cost_usd),
            f"{usd(u.cost_usd)} ({percent(u.share)}, {u.calls:,} call{'s' if u.calls != 1 else ''})",
        )
        for u in report.top_users
    ]
    return bar_list(f"Top {len(rows)} users by cost", rows)
