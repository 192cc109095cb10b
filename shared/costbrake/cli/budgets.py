"""`costbrake budgets`: limits per user, tier, feature and the global budget."""

from __future__ import annotations

import json
from decimal import Decimal

import click
from rich.table import Table

from costbrake.cli.main import USD, Context, console, main, pass_context
from costbrake.records import Limits

# ---- budgets ----------------------------------------------------------------------------------


@main.group()
def budgets() -> None:
    """Spend limits per user, tier, feature and the global monthly budget."""


@budgets.command("set")
@click.option("--user", "user_id")
@click.option("--feature")
@click.option("--tier")
@click.option("--global", "global_", is_flag=True)
@click.option("--hour", type=USD, help="USD per UTC hour (users, tiers).")
@click.option("--day", type=USD, help="USD per UTC day (users, tiers).")
@click.option("--month", type=USD, help="USD per UTC month.")
@click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute (users, tiers).")
@pass_context
def budgets_set(
    obj: Context,
    user_id: str | None,
    feature: str | None,
    tier: str | None,
    global_: bool,
    hour: Decimal | None,
    day: Decimal | None,
    month: Decimal | None,
    rpm: int | None,
) -> None:
    """Set limits for exactly one of --user, --feature, --tier, --global."""
    from costbrake import operations as ops

    targets = [t for t in (user_id, feature, tier, global_ or None) if t]
    if len(targets) != 1:
        raise click.UsageError("name exactly one of --user, --feature, --tier, --global")
    limits = Limits(hour, day, month, rpm)
    if limits == Limits():
        raise click.UsageError("set at least one of --hour, --day, --month, --rpm")
    actor = "cli"
    if user_id:
        profile = ops.set_user_limits(obj.ledger, user_id, limits)
        click.echo(f"user {user_id}: {_limits_text(profile.overrides)}")
    elif tier:
        saved = ops.set_tier_limits(obj.ledger, obj.clock, tier, limits, actor)
        click.echo(f"tier {tier}: {_limits_text(saved.limits)}")
    else:
        if hour is not None or day is not None or rpm is not None or month is None:
            raise click.UsageError("features and the global budget take --month only")
        if feature:
            saved_feature = ops.set_feature_budget(obj.ledger, obj.clock, obj.settings, feature, month, actor)
            click.echo(f"feature {feature}: ${saved_feature.month_usd}/month")
        else:
            ops.set_global_budget(obj.ledger, obj.clock, obj.settings, month, actor)
            click.echo(f"global: ${month}/month")


def _limits_text(limits: Limits) -> str:
    parts = [
        f"${limits.hour_usd}/hour" if limits.hour_usd is not None else None,
        f"${limits.day_usd}/day" if limits.day_usd is not None else None,
        f"${limits.month_usd}/month" if limits.month_usd is not None else None,
        f"{limits.rpm} requests/minute" if limits.rpm is not None else None,
    ]
    return ", ".join(p for p in parts if p) or "tier defaults"


@main.group()
def budget() -> None:
    """Where a user stands against their budgets."""


@budget.command("show")
@click.option("--user", "user_id", required=True)
@click.option("--feature", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def budget_show(obj: Context, user_id: str, feature: str, as_json: bool) -> None:
    """Spent, reserved, limit and remaining in every window that applies to USER."""
    from costbrake.policy import budget_status

    report = budget_status(obj.ledger, obj.settings, obj.clock.now(), user_id, feature, key=None)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"Budget of {user_id} (feature {feature})")
    for column in ("scope", "window", "limit", "spent", "reserved", "remaining", "resets"):
        table.add_column(column, justify="right" if column in ("limit", "spent", "reserved", "remaining") else "left")
    for row in report["windows"]:
        table.add_row(
            row["scope"],
            row["window"],
            f"${row['limit_usd']}",
            f"${row['spent_usd']}",
            f"${row['reserved_usd']}",
            f"${row['remaining_usd']}",
            row["resets_at"],
        )
    console.print(table)
    if report["requests_per_minute"] is not None:
        console.print(f"rate limit: {report['requests_per_minute']} requests/minute")
