"""`costbrake budgets`: limits per user, tier, feature and the global budget."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import click
from rich.table import Table

from costbrake.cli.keys import canonical_user, limits_text
from costbrake.cli.main import USD, Context, console, emit_json, json_option, main, pass_context
from costbrake.cli.status import standing_json, standings_table
from costbrake.cli.switches import actor_option, who
from costbrake.cli.users import limits_json
from costbrake.formatting import percent, plain_decimal, usd_exact
from costbrake.records import ApiKey, Limits, SettingsSnapshot

# ---- budgets ----------------------------------------------------------------------------------


@main.group()
def budgets() -> None:
    """Spend limits per user, tier, feature and the global monthly budget."""


@budgets.command("set")
@click.option("--user", "user_id")
@click.option("--feature")
@click.option("--tier")
@click.option("--key", "key_id", help="A key's own budgets (all its end users together), by its id.")
@click.option("--global", "global_", is_flag=True)
@click.option("--hour", type=USD, help="USD per UTC hour (users, tiers, keys).")
@click.option("--day", type=USD, help="USD per UTC day (users, tiers, keys).")
@click.option("--month", type=USD, help="USD per UTC month.")
@click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute (users, tiers).")
@actor_option
@pass_context
def budgets_set(
    obj: Context,
    user_id: str | None,
    feature: str | None,
    tier: str | None,
    key_id: str | None,
    global_: bool,
    hour: Decimal | None,
    day: Decimal | None,
    month: Decimal | None,
    rpm: int | None,
    actor: str | None,
) -> None:
    """Set limits for exactly one of --user, --feature, --tier (creates it), --key, --global (audited)."""
    from costbrake.operations.budgets import set_global_budget, set_tier_limits
    from costbrake.operations.features import set_feature_budget
    from costbrake.operations.keys import UnknownKey, set_key_limits
    from costbrake.operations.users import set_user_limits

    targets = [t for t in (user_id, feature, tier, key_id, global_ or None) if t]
    if len(targets) != 1:
        raise click.UsageError("name exactly one of --user, --feature, --tier, --key, --global")
    limits = Limits(hour, day, month, rpm)
    if limits == Limits():
        raise click.UsageError("set at least one of --hour, --day, --month, --rpm")
    actor = who(actor)
    if feature:
        feature = _feature_name(feature)
    if user_id:
        profile = set_user_limits(obj.admin, obj.clock, canonical_user(user_id, "--user") or "", limits, actor)
        click.echo(f"user {profile.user_id}: {limits_text(profile.overrides, 'tier defaults')}")
    elif key_id:
        if rpm is not None:
            raise click.UsageError("a key takes --hour, --day and --month (requests per minute are per user)")
        try:
            key = set_key_limits(obj.admin, obj.clock, key_id, limits, actor)
        except UnknownKey as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"key {key.key_id}: {limits_text(key.limits, 'no budgets of its own')}")
    elif tier:
        saved = set_tier_limits(obj.admin, obj.clock, tier, limits, actor)
        click.echo(f"tier {tier}: {limits_text(saved.limits, 'tier defaults')}")
    else:
        if hour is not None or day is not None or rpm is not None or month is None:
            raise click.UsageError("features and the global budget take --month only")
        if feature:
            saved_feature = set_feature_budget(obj.admin, obj.clock, obj.settings, feature, month, actor)
            click.echo(f"feature {feature}: {usd_exact(saved_feature.month_usd)}/month")
        else:
            set_global_budget(obj.admin, obj.clock, obj.settings, month, actor)
            click.echo(f"global: {usd_exact(month)}/month")


@budgets.command("show")
@click.option("--user", "user_id")
@click.option("--feature")
@click.option("--tier")
@click.option("--key", "key_id", help="A key's own budgets, by its id.")
@click.option("--global", "global_", is_flag=True)
@json_option
@pass_context
def budgets_show(
    obj: Context,
    user_id: str | None,
    feature: str | None,
    tier: str | None,
    key_id: str | None,
    global_: bool,
    as_json: bool,
) -> None:
    """The limits in effect: all of them, or one of --user, --feature, --tier, --key, --global with its standing
    now."""
    targets = [t for t in (user_id, feature, tier, key_id, global_ or None) if t]
    if len(targets) > 1:
        raise click.UsageError("name at most one of --user, --feature, --tier, --key, --global")
    if feature:
        from costbrake.operations.features import feature_key

        feature = feature_key(feature)
    snapshot = obj.admin.load_settings()
    if user_id:
        _show_user(obj, snapshot, canonical_user(user_id, "--user") or "", as_json)
    elif key_id:
        _show_key(obj, key_id, as_json)
    elif tier:
        _show_tier(snapshot, tier, as_json)
    elif feature or global_:
        _show_month_budget(obj, snapshot, feature, as_json)
    else:
        _show_all(obj, snapshot, as_json)


def _show_all(obj: Context, snapshot: SettingsSnapshot, as_json: bool) -> None:
    from costbrake.policy import global_budget

    month = global_budget(obj.settings, snapshot).month_usd
    features = sorted((f for f in snapshot.features.values() if f.month_usd is not None), key=lambda f: f.name)
    tiers = sorted(snapshot.tiers.values(), key=lambda t: t.name)
    defaults = _user_defaults(obj)
    budgeted_keys = sorted(
        ((key, created) for key, created in obj.admin.list_keys() if key.limits != Limits() and not key.revoked),
        key=lambda pair: (pair[1], pair[0].key_id),
    )
    if as_json:
        emit_json(
            {
                "global": {"month_usd": plain_decimal(month), "source": _global_source(snapshot)},
                "features": [
                    {
                        "name": f.name,
                        "month_usd": plain_decimal(f.month_usd),
                        "share_of_global": plain_decimal(_share(f.month_usd, month)),
                    }
                    for f in features
                ],
                "tiers": [{"name": t.name, **limits_json(t.limits)} for t in tiers],
                "user_defaults": limits_json(defaults),
                "keys": [_key_budget_json(key) for key, _ in budgeted_keys],
            }
        )
        return
    click.echo(f"global: {usd_exact(month)}/month ({_global_source(snapshot)})")
    table = Table(title="Feature month budgets")
    for column in ("feature", "month", "share of global"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for f in features:
        table.add_row(f.name, usd_exact(f.month_usd), percent(_share(f.month_usd, month)))
    console.print(table)
    limits = Table(title="Per-user limits by tier (a user's own overrides win)")
    for column in ("tier", "hour", "day", "month", "requests/minute"):
        limits.add_column(column, justify="left" if column == "tier" else "right")
    for name, tier_limits in [*((t.name, t.limits) for t in tiers), ("(deployment default)", defaults)]:
        limits.add_row(name, *_limit_cells(tier_limits))
    console.print(limits)
    key_table = Table(title="Key budgets (all of a key's end users together)")
    for column in ("key id", "name", "kind", "hour", "day", "month"):
        key_table.add_column(column, justify="right" if column in ("hour", "day", "month") else "left")
    for key, _ in budgeted_keys:
        kind = "service" if key.service else f"user {key.user_id}"
        key_table.add_row(key.key_id, key.name, kind, *_limit_cells(key.limits)[:3])
    console.print(key_table)


def _key_budget_json(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "service": key.service,
        "user_id": key.user_id,
        **{name: value for name, value in limits_json(key.limits).items() if name != "rpm"},
    }


def _show_key(obj: Context, key_id: str, as_json: bool) -> None:
    """A key's own budgets with their standing now, and their audited changes."""
    from costbrake.budgets import key_lines
    from costbrake.status import read_standings

    found = obj.admin.find_key(key_id)
    if found is None:
        from costbrake.operations.keys import UnknownKey

        raise click.ClickException(str(UnknownKey(key_id)))
    key = found[0]
    now = obj.clock.now()
    standings = read_standings(obj.admin, obj.rollups, now, [("key", key.key_id, line) for line in key_lines(key, now)])
    history = obj.admin.key_history(key.key_id)
    if as_json:
        emit_json(
            _key_budget_json(key)
            | {
                "scope": "key",
                "budgets": [standing_json(s) for s in standings],
                "history": [{"at": e.at, "actor": e.actor, "from": e.old_value, "to": e.new_value} for e in history],
            }
        )
        return
    click.echo(
        f"key {key.key_id}: {limits_text(key.limits, 'no budgets of its own (its users and features bound it)')}"
    )
    if standings:
        console.print(standings_table("Standing now", standings))
    for entry in history[-5:]:
        click.echo(f"{entry.at:%Y-%m-%d %H:%M} {entry.old_value or '-'} -> {entry.new_value} by {entry.actor}")


def _feature_name(name: str) -> str:
    """A feature name typed by an operator, canonical; a usage error when it has no canonical form."""
    from costbrake.names import InvalidName, canonical_feature

    try:
        return canonical_feature(name)
    except InvalidName as error:
        raise click.BadParameter(error.message, param_hint="--feature") from None


def _show_user(obj: Context, snapshot: SettingsSnapshot, user_id: str, as_json: bool) -> None:
    from costbrake.operations.users import UnknownUser, find_user
    from costbrake.policy import user_limits
    from costbrake.status import limit_sources, user_standings

    now = obj.clock.now()
    try:
        profile = find_user(obj.admin, user_id, now)
    except UnknownUser as error:
        raise click.ClickException(str(error)) from error
    user_id = profile.user_id  # canonical
    limits = user_limits(obj.settings, snapshot, profile)
    sources = limit_sources(snapshot, profile)
    standings = user_standings(obj.admin, obj.rollups, obj.settings, now, profile)
    if as_json:
        emit_json(
            {
                "scope": "user",
                "user": user_id,
                "tier": profile.tier,
                "limits": limits_json(limits),
                "limit_sources": sources,
                "budgets": [standing_json(s) for s in standings],
            }
        )
        return
    cells = _limit_cells(limits)
    click.echo(f"user {user_id} (tier {profile.tier}):")
    for (name, source), cell in zip(sources.items(), cells, strict=True):
        click.echo(f"  {name:<9} {cell:>12}  from {source}")
    console.print(standings_table("Standing now", standings))


def _show_tier(snapshot: SettingsSnapshot, tier: str, as_json: bool) -> None:
    found = snapshot.tiers.get(tier)
    if found is None:
        from costbrake.operations.users import UnknownTier

        raise click.ClickException(str(UnknownTier(tier, sorted(snapshot.tiers))))
    if as_json:
        emit_json({"scope": "tier", "name": tier, **limits_json(found.limits)})
        return
    click.echo(f"tier {tier}: {limits_text(found.limits, 'tier defaults')}")


def _show_month_budget(obj: Context, snapshot: SettingsSnapshot, feature: str | None, as_json: bool) -> None:
    """The global budget (``feature`` None) or a feature's, with its standing now."""
    from costbrake.budgets import feature_month_line, global_month_line
    from costbrake.policy import global_budget
    from costbrake.status import FEATURE, GLOBAL, read_standings
    from costbrake.windows import Window, span

    now = obj.clock.now()
    month = span(Window.MONTH, now)
    configured = snapshot.features.get(feature) if feature else None
    if feature is None:
        line = global_month_line(global_budget(obj.settings, snapshot), month)
        data: dict[str, Any] = {"scope": "global", "source": _global_source(snapshot)}
        kind, name = GLOBAL, GLOBAL
    else:
        data = {"scope": "feature", "name": feature, "configured": configured is not None}
        if configured is None or configured.month_usd is None:
            data |= {"month_usd": None, "standing": None}
            if as_json:
                emit_json(data)
            else:
                state = "not configured (defaults apply)" if configured is None else "configured"
                click.echo(f"feature {feature}: {state}, no month budget (the global budget bounds it)")
            return
        line = feature_month_line(configured, configured.month_usd, month)
        kind, name = FEATURE, feature
    [standing] = read_standings(obj.admin, obj.rollups, now, [(kind, name, line)])
    if as_json:
        emit_json(data | {"month_usd": plain_decimal(line.limit), "standing": standing_json(standing)})
        return
    console.print(standings_table(f"{standing.scope} budget", [standing]))


def _user_defaults(obj: Context) -> Limits:
    s = obj.settings
    return Limits(s.default_user_hour_usd, s.default_user_day_usd, s.default_user_month_usd, s.default_user_rpm)


def _global_source(snapshot: SettingsSnapshot) -> str:
    return "set in the ledger" if snapshot.global_budget is not None else "deployment default"


def _share(part: Decimal | None, whole: Decimal) -> Decimal | None:
    return part / whole if part is not None and whole else None


def _limit_cells(limits: Limits) -> list[str]:
    return [
        *("-" if usd is None else usd_exact(usd) for usd in (limits.hour_usd, limits.day_usd, limits.month_usd)),
        "-" if limits.rpm is None else str(limits.rpm),
    ]


@main.group()
def budget() -> None:
    """Where a user stands against their budgets (kept for scripts; `budgets show --user` says more)."""


@budget.command("show")
@click.option("--user", "user_id", required=True)
@click.option("--feature", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def budget_show(obj: Context, user_id: str, feature: str, as_json: bool) -> None:
    """Spent, reserved, limit and remaining in every window that applies to USER."""
    from costbrake.budget_view import budget_status
    from costbrake.operations.features import feature_key
    from costbrake.operations.users import user_id_of

    user_id = user_id_of(obj.admin, canonical_user(user_id, "--user") or "")
    feature = feature_key(feature)
    report = budget_status(obj.admin, obj.settings, obj.clock.now(), user_id, feature, key=None)
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
            usd_exact(Decimal(row["limit_usd"])),
            usd_exact(Decimal(row["spent_usd"])),
            usd_exact(Decimal(row["reserved_usd"])),
            usd_exact(Decimal(row["remaining_usd"])),
            row["resets_at"],
        )
    console.print(table)
    if report["requests_per_minute"] is not None:
        console.print(f"rate limit: {report['requests_per_minute']} requests/minute")
