"""`costbrake status` (every budget, worst first) and `costbrake top users|features|models`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.formatting import percent, plain_decimal, usd
from costbrake.status import RUN_RATE_HOURS, TOP_USERS, Standing
from costbrake.top import DIMENSIONS, Top

RUN_RATE_NOTE = (
    f"cost in the hourly rollups of the trailing {RUN_RATE_HOURS} h (current hour included), per day of the time "
    "since the first of those hours with spend (at least an hour)"
)


def short_usd(amount: Decimal) -> str:
    """For tables (the exact amount is in --json): whole dollars from $1,000, cents from $1, else 4 places."""
    return usd(amount, places=4, whole_from=1000)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient bar on stderr (stdout stays clean for --json); yields the callback for (done, total)."""
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


# ---- budgets' standing ----------------------------------------------------------------------------


def standing_json(s: Standing) -> dict[str, Any]:
    p = s.projection
    return {
        "scope": s.scope,
        "kind": s.kind,
        "name": s.name,
        "window": s.window.window.value,
        "window_key": s.window.key,
        "limit_usd": plain_decimal(s.limit_usd),
        "spent_usd": plain_decimal(s.spent_usd),
        "reserved_usd": plain_decimal(s.reserved_usd),
        "remaining_usd": plain_decimal(s.remaining_usd),
        "utilization": plain_decimal(s.utilization),
        "run_rate_usd_per_day": plain_decimal(p.rate_usd_per_day),
        "projected_usd": plain_decimal(p.projected_usd),
        "projected_utilization": plain_decimal(p.projected_utilization),
        "exhausted": s.exhausted,
        "runs_out_at": p.exhausted_at.isoformat() if p.exhausted_at else None,
        "resets_at": s.window.end.isoformat(),
    }


def standings_table(title: str, standings: Sequence[Standing]) -> Table:
    table = Table(title=title)
    table.add_column("budget")
    table.add_column("window")
    for column in ("limit", "spent", "reserved", "used", "rate/day", "projected", "runs out (UTC)"):
        table.add_column(column, justify="right")
    for s in standings:
        p = s.projection
        if s.exhausted:
            runs_out, style = "exhausted", "bold red"
        elif p.exhausted_at is not None:
            runs_out, style = f"{p.exhausted_at:%m-%d %H:%M}", "yellow"
        else:
            runs_out, style = "-", None
        table.add_row(
            s.scope,
            s.window.window.value,
            short_usd(s.limit_usd),
            short_usd(s.spent_usd),
            short_usd(s.reserved_usd),
            percent(s.utilization),
            short_usd(p.rate_usd_per_day),
            short_usd(p.projected_usd),
            runs_out,
            style=style,
        )
    return table


@main.command()
@click.option(
    "--users",
    "top_users",
    type=click.IntRange(min=0),
    default=TOP_USERS,
    show_default=True,
    help="How many of the month's top spending users to include.",
)
@json_option
@pass_context
def status(obj: Context, top_users: int, as_json: bool) -> None:
    """Every budget: global month, feature months, the top users' hour/day/month; worst first.

    Spent and reserved come from the ledger's counters; the projection carries the committed spend forward at
    the run rate (cost of the trailing 24 hours of hourly rollups) to the end of the budget's window.
    """
    from costbrake.status import read_status

    with progress_bar("reading this month's rollups") as advance:
        found = read_status(obj.admin, obj.rollups, obj.settings, obj.clock.now(), top_users, advance)
    if as_json:
        emit_json(
            {
                "as_of": found.as_of.isoformat(),
                "run_rate": RUN_RATE_NOTE,
                "users": list(found.users),
                "budgets": [standing_json(s) for s in found.standings],
            }
        )
        return
    console.print(standings_table(f"Budgets at {found.as_of:%Y-%m-%d %H:%M} UTC, worst first", found.standings))
    click.echo(f"run rate: {RUN_RATE_NOTE}; - = lasts its window. Exact figures: --json.")


# ---- top spenders ---------------------------------------------------------------------------------


@main.group()
def top() -> None:
    """The most expensive users, features or models of the last N UTC days (daily rollups)."""


def _top_command(dimension: str) -> None:
    @top.command(dimension, help=f"The most expensive {dimension} of the last N UTC days (today included).")
    @click.option("--days", type=click.IntRange(1, 400), default=7, show_default=True, help="UTC days, today included.")
    @click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Rows to show.")
    @json_option
    @pass_context
    def command(obj: Context, days: int, limit: int, as_json: bool) -> None:
        from costbrake.top import read_top

        with progress_bar(f"reading {days} days of rollups") as advance:
            found = read_top(obj.rollups, dimension, obj.clock.now(), days, limit, advance)
        if as_json:
            emit_json(top_json(found))
            return
        console.print(top_table(found))
        click.echo(f"total: {short_usd(found.total.cost_usd)} over {found.total.calls:,} calls")


def top_json(found: Top) -> dict[str, Any]:
    return {
        "dimension": found.dimension,
        "as_of": found.as_of.isoformat(),
        "days": len(found.days),
        "from": found.days[0].start.isoformat(),
        "to": found.as_of.isoformat(),
        "total_usd": plain_decimal(found.total.cost_usd),
        "total_calls": found.total.calls,
        found.dimension: [
            {
                "name": s.name,
                "cost_usd": plain_decimal(s.totals.cost_usd),
                "calls": s.totals.calls,
                "input_tokens": s.totals.input_tokens,
                "output_tokens": s.totals.output_tokens,
                "errors": s.totals.errors,
                "share": plain_decimal(s.share),
            }
            for s in found.spenders
        ],
    }


def top_table(found: Top) -> Table:
    days = len(found.days)
    period = f"{found.days[0].start:%Y-%m-%d} to {found.as_of:%Y-%m-%d %H:%M} UTC ({days} day{'s' * (days > 1)})"
    table = Table(title=f"Top {found.dimension}, {period}")
    table.add_column(found.dimension.removesuffix("s"))
    for column in ("cost", "calls", "input tokens", "output tokens", "share"):
        table.add_column(column, justify="right")
    for s in found.spenders:
        t = s.totals
        tokens = (f"{t.input_tokens:,}", f"{t.output_tokens:,}")
        table.add_row(s.name, short_usd(t.cost_usd), f"{t.calls:,}", *tokens, percent(s.share))
    return table


for _dimension in DIMENSIONS:
    _top_command(_dimension)
