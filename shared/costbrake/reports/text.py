"""The report as plain text for a terminal or an e-mail (aligned columns, ASCII rules, no colours).

The tables are built here once, as strings; ``render_text`` lays them out in columns, ``costbrake.reports.html``
renders the same tables as HTML.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costbrake.formatting import DASH, percent, usd
from costbrake.reports.figures import BudgetLine
from costbrake.reports.inputs import ANOMALY_DAYS
from costbrake.reports.model import CostReport

MAX_CELL = 40  # longer names are cut so the columns stay readable in an e-mail
WIDTH = 100  # long sentences wrap here
MAX_NOTE = 400  # summaries and advice, each on lines of their own
ANOMALIES_SHOWN = 20


# ---- formatting ------------------------------------------------------------------------------------------------


def rate_basis(report: CostReport) -> str:
    """Said only when the rate is not over the whole period (the first call came later)."""
    return "" if report.rate_since <= report.start else f" (since the first call, {report.rate_since:%Y-%m-%d %H:%M})"


def count(value: int | Decimal | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, Decimal) and value != value.to_integral_value():
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def ratio(value: Decimal | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def when(value: datetime | None) -> str:
    return DASH if value is None else f"{value:%Y-%m-%d %H:%M}"


# ---- tables ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = "l"  # per column, "l" (names) or "r" (figures); columns beyond it are figures

    def is_left(self, column: int) -> bool:
        return self.align[column : column + 1] == "l"


def budget_table(report: CostReport) -> Table:
    lines: Sequence[BudgetLine] = (
        [report.global_budget, *report.feature_budgets] if report.global_budget else report.feature_budgets
    )
    return Table(
        ("budget", "month", "spent", "used", "rate/day", "projected", "proj. used", "runs out (UTC)"),
        tuple(
            (
                line.scope,
                usd(line.month_usd),
                usd(line.spent_usd),
                percent(line.utilization),
                usd(line.rate_usd_per_day),
                usd(line.projected_usd),
                percent(line.projected_utilization),
                when(line.exhausted_at),
            )
            for line in lines
        ),
    )


def feature_table(report: CostReport) -> Table:
    return Table(
        ("feature", "calls", "errors", "cost", "share", "mean/call", "p95/call", "mean in", "mean out"),
        tuple(
            (
                f.name,
                count(f.calls),
                count(f.errors),
                usd(f.cost_usd),
                percent(f.share),
                usd(f.mean_cost_usd),
                usd(f.p95_cost_usd),
                count(f.tokens.mean_input_tokens),
                count(f.tokens.mean_output_tokens),
            )
            for f in report.features
        ),
    )


def feature_efficiency_table(report: CostReport) -> Table:
    return Table(
        ("feature", "p95 in", "p95 out", "out/in", "truncated", "cache hits"),
        tuple(
            (
                f.name,
                count(f.tokens.p95_input_tokens),
                count(f.tokens.p95_output_tokens),
                ratio(f.tokens.output_input_ratio),
                percent(f.tokens.truncation_rate),
                percent(f.tokens.cache_hit_rate),
            )
            for f in report.features
        ),
    )


def reducers_table(report: CostReport) -> Table:
    """Per feature: the response cache (lookups, hit rate, exact and semantic hits, saved, embeddings, net) and
    history truncation."""
    return Table(
        ("feature", "lookups", "hit rate", "exact", "semantic", "saved", "embeddings", "net saved", "truncated"),
        tuple(
            (
                f.name,
                count(f.lookups),
                percent(f.hit_rate),
                count(f.exact_hits),
                count(f.semantic_hits),
                usd(f.saved_usd),
                usd(f.embedding_usd),
                usd(f.net_saved_usd),
                count(f.truncated_calls),
            )
            for f in report.reducers.features
        ),
    )


REDUCERS_NONE = "no response caching or history truncation (costbrake features set NAME --cache ... --truncate on)"


def model_table(report: CostReport) -> Table:
    return Table(
        ("model", "calls", "cost", "mean/call", "$/1k tok", "mean in", "mean out", "out/in", "trunc.", "cache"),
        tuple(
            (
                m.name,
                count(m.calls),
                usd(m.cost_usd),
                usd(m.mean_cost_usd),
                usd(m.usd_per_1k_tokens),
                count(m.tokens.mean_input_tokens),
                count(m.tokens.mean_output_tokens),
                ratio(m.tokens.output_input_ratio),
                percent(m.tokens.truncation_rate),
                percent(m.tokens.cache_hit_rate),
            )
            for m in report.models
        ),
    )


def user_table(report: CostReport) -> Table:
    return Table(
        ("user", "cost", "calls", "share"),
        tuple((u.user_id, usd(u.cost_usd), count(u.calls), percent(u.share)) for u in report.top_users),
    )


def anomaly_table(report: CostReport, limit: int = ANOMALIES_SHOWN) -> Table:
    return Table(
        ("generated (UTC)", "severity", "type", "scope", "window", "current", "summary"),
        tuple(
            (when(a.generated_at), a.severity, a.type, a.scope, a.window, usd(a.current_usd), a.summary)
            for a in report.anomalies[:limit]
        ),
        align="lllllrl",
    )


def reconciliation_table(report: CostReport) -> Table:
    return Table(
        ("day (UTC)", "provider", "status", "provider", "costbrake", "variance", "unguarded", "models"),
        tuple(
            (
                line.day,
                line.provider,
                line.status + ("" if line.final else " (not final)"),
                usd(line.provider_usd),
                usd(line.costbrake_usd),
                usd(line.variance_usd),
                usd(line.unguarded_usd) if line.unguarded_usd else DASH,
                line.note,
            )
            for line in report.reconciliation.lines
        ),
        align="lllrrrrl",
    )


RECONCILIATION_OFF = (
    "not reconciled: the daily reconciler is off until a provider admin key is configured (docs/reconciliation.md)"
)


def reconciliation_title(report: CostReport) -> str:
    rec = report.reconciliation
    if not rec.checked:
        return "Reconciliation with the providers' reports"
    verdict = "needs attention" if rec.status == "attention" else "in agreement"
    return f"Reconciliation with the providers' reports, last {len({line.day for line in rec.lines})} days: {verdict}"


def summary_lines(report: CostReport) -> tuple[tuple[str, str], ...]:
    """The headline figures, as (label, value) pairs."""
    t, per_user = report.totals, report.per_user
    lines = [
        ("cost", f"{usd(t.cost_usd)} over {count(t.calls)} calls ({count(t.errors)} errors)"),
        ("run rate", f"{usd(report.run_rate_usd_per_day)}/day{rate_basis(report)}"),
    ]
    if report.global_budget:
        g = report.global_budget
        lines += [
            ("month to date", f"{usd(g.spent_usd)} of {usd(g.month_usd)} ({percent(g.utilization)})"),
            ("projected month", f"{usd(g.projected_usd)} ({percent(g.projected_utilization)} of the budget)"),
        ]
    lines += [
        ("tokens", f"{count(t.input_tokens)} in, {count(t.output_tokens)} out"),
        (
            "cost per user",
            f"{count(per_user.active_users)} active users: mean {usd(per_user.mean_usd)}, "
            f"median {usd(per_user.median_usd)}, p95 {usd(per_user.p95_usd)}, max {usd(per_user.max_usd)}",
        ),
    ]
    return tuple(lines)


def efficiency_lines(report: CostReport) -> tuple[tuple[str, str], ...]:
    tokens = report.tokens
    done = tokens.completed_calls
    return (
        ("input tokens", f"mean {count(tokens.mean_input_tokens)}, p95 {count(tokens.p95_input_tokens)}"),
        ("output tokens", f"mean {count(tokens.mean_output_tokens)}, p95 {count(tokens.p95_output_tokens)}"),
        ("output/input", ratio(tokens.output_input_ratio)),
        ("truncation", f"{percent(tokens.truncation_rate)} ({count(tokens.truncations)} of {count(done)} answers)"),
        ("cache hits", f"{percent(tokens.cache_hit_rate)} ({count(tokens.cache_hits)} of {count(done)} answers)"),
    )


def period_title(report: CostReport) -> str:
    return (
        f"costbrake cost report: {when(report.start)} to {when(report.end)} UTC "
        f"({report.days} day{'s' if report.days != 1 else ''})"
    )


# ---- plain text ------------------------------------------------------------------------------------------------


def printable(text: str) -> str:
    """Control characters (an ANSI escape in a user id...) replaced by "?"."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def plain(text: str, limit: int = MAX_CELL) -> str:
    """A user-supplied string made safe for a terminal or e-mail: printable, cut to ``limit`` characters."""
    cleaned = printable(text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "~"


def layout(table: Table, indent: str = "  ") -> list[str]:
    """The header and one line per row, each column as wide as its widest cell."""
    cells = [list(table.headers)] + [[plain(cell) for cell in row] for row in table.rows]
    widths = [max(len(row[n]) for row in cells) for n in range(len(table.headers))]
    return [
        indent
        + "  ".join(
            cell.ljust(width) if table.is_left(n) else cell.rjust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]


def _layout_or(table: Table, empty: str) -> list[str]:
    return layout(table) if table.rows else [f"  {empty}"]


def _with_notes(table: Table) -> list[str]:
    """The table without its last column, whose text goes on a line of its own under each row (long summaries)."""
    if not table.rows:
        return ["  none"]
    head = Table(table.headers[:-1], tuple(row[:-1] for row in table.rows), table.align)
    lines = layout(head)
    out = lines[:1]
    for line, row in zip(lines[1:], table.rows, strict=True):
        out += [line, *_wrapped(row[-1], "      ", "      ")]
    return out


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(plain(text, MAX_NOTE), WIDTH, initial_indent=first, subsequent_indent=rest)


def _pairs(pairs: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in pairs)
    return [f"  {label.ljust(width)}  {value}" for label, value in pairs]


def render_text(report: CostReport) -> str:
    """The whole report as plain text, about 100 columns wide (long names are cut, control characters replaced)."""
    out = [period_title(report), ""]
    out += _pairs(summary_lines(report))

    def section(title: str, body: list[str]) -> None:
        out.extend(["", title, "-" * len(title), *body])

    section(f"Budgets ({report.month.removeprefix('m#')})", _layout_or(budget_table(report), "no budgets"))
    section("Cost by feature", _layout_or(feature_table(report), "no calls"))
    section("Token efficiency by feature", _layout_or(feature_efficiency_table(report), "no calls"))
    section(f"Top {len(report.top_users)} users", _layout_or(user_table(report), "no calls"))
    section("Token efficiency by model", _layout_or(model_table(report), "no calls"))
    section("Efficiency (all calls)", _pairs(efficiency_lines(report)))
    section("Response cache and truncation by feature", _layout_or(reducers_table(report), REDUCERS_NONE))
    more = len(report.anomalies) - ANOMALIES_SHOWN
    section(
        f"Anomalies, last {ANOMALY_DAYS} days ({len(report.anomalies)})",
        _with_notes(anomaly_table(report)) + ([f"  ... and {more} more"] if more > 0 else []),
    )
    section(reconciliation_title(report), _layout_or(reconciliation_table(report), RECONCILIATION_OFF))
    advice = [line for a in report.advice for line in _wrapped(a.message, "  * ", "    ")]
    section("Advice", advice or ["  nothing to change"])
    return "\n".join(out) + "\n"
