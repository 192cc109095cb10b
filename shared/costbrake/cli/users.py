"""`costbrake users`: a user's profile, limits, keys and standing; tier changes; blocks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.table import Table

from costbrake.cli.keys import canonical_user, key_json
from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.cli.status import standing_json, standings_table
from costbrake.cli.switches import actor_option, announce_or_warn, who
from costbrake.formatting import plain_decimal
from costbrake.records import Limits, UserProfile

_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
UNTIL_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(str(value).strip())
        if not match or int(match.group(1)) == 0:
            self.fail(f"{value!r} is not a duration like 30m, 2h or 7d", param, ctx)
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def utc(moment: datetime) -> datetime:
    """A time given without a zone is UTC (what every window and limit uses)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "hour_usd": plain_decimal(limits.hour_usd),
        "day_usd": plain_decimal(limits.day_usd),
        "month_usd": plain_decimal(limits.month_usd),
        "rpm": limits.rpm,
    }


def _profile(obj: Context, user_id: str) -> UserProfile:
    from costbrake.operations.users import UnknownUser, find_user

    try:
        return find_user(obj.admin, canonical_user(user_id, "USER_ID") or "", obj.clock.now())
    except UnknownUser as error:
        raise click.ClickException(str(error)) from error


@main.group()
def users() -> None:
    """End users: profile, tier, limits, keys, blocks."""


@users.command("show")
@click.argument("user_id")
@json_option
@pass_context
def users_show(obj: Context, user_id: str, as_json: bool) -> None:
    """USER's tier, limits (and where each comes from), block, keys and budgets now."""
    from costbrake.operations.users import is_blocked
    from costbrake.policy import user_limits
    from costbrake.status import limit_sources, user_standings

    now = obj.clock.now()
    profile = _profile(obj, user_id)
    user_id = profile.user_id  # canonical: what the gateway charges
    snapshot = obj.admin.load_settings()
    limits = user_limits(obj.settings, snapshot, profile)
    sources = limit_sources(snapshot, profile)
    user_keys = sorted(
        ((key, created) for key, created in obj.admin.list_keys() if key.user_id == user_id), key=lambda kc: kc[1]
    )
    standings = user_standings(obj.admin, obj.rollups, obj.settings, now, profile)
    history = obj.admin.user_history(user_id)
    blocked = is_blocked(profile, now)
    if as_json:
        emit_json(
            {
                "user": user_id,
                "tier": profile.tier,
                "blocked": blocked,
                "blocked_until": profile.blocked_until.isoformat() if blocked and profile.blocked_until else None,
                "blocked_reason": profile.blocked_reason if blocked else "",
                "limits": limits_json(limits),
                "limit_sources": sources,
                "overrides": limits_json(profile.overrides),
                "keys": [key_json(key, created) for key, created in user_keys],
                "budgets": [standing_json(s) for s in standings],
                "history": [
                    {"at": e.at, "actor": e.actor, "action": e.action, "from": e.old_value, "to": e.new_value}
                    | {"reason": e.reason}
                    for e in history
                ],
            }
        )
        return
    state = "not blocked"
    if blocked and profile.blocked_until is not None:
        state = f"[bold red]blocked until {profile.blocked_until:%Y-%m-%d %H:%M} UTC[/]: {profile.blocked_reason}"
    console.print(f"user [bold]{user_id}[/], tier {profile.tier}, {state}")
    table = Table(title="Limits")
    table.add_column("limit")
    table.add_column("value", justify="right")
    table.add_column("from")
    for name, value in limits_json(limits).items():
        table.add_row(name, "-" if value is None else str(value), sources[name])
    console.print(table)
    console.print(standings_table("Budgets now", standings))
    active = [key.key_id + (f" ({key.name})" if key.name else "") for key, _ in user_keys if not key.revoked]
    console.print(f"keys: {', '.join(active) or 'none active'}")
    for entry in history[-5:]:
        change = f"{entry.old_value or '-'} -> {entry.new_value or '-'}"
        console.print(f"{entry.at:%Y-%m-%d %H:%M} {entry.action} {change} by {entry.actor}: {entry.reason}")


@users.command("set-tier")
@click.argument("user_id")
@click.argument("tier")
@click.option("--create", is_flag=True, help="Create the user's profile if there is none.")
@actor_option
@pass_context
def users_set_tier(obj: Context, user_id: str, tier: str, create: bool, actor: str | None) -> None:
    """Move USER to TIER (an existing tier; the user's own overrides stay)."""
    from costbrake.operations.users import UnknownTier, UnknownUser, set_user_tier

    try:
        profile = set_user_tier(
            obj.admin, obj.clock, canonical_user(user_id, "USER_ID") or "", tier, who(actor), create=create
        )
    except (UnknownTier, UnknownUser) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"user {profile.user_id} is now on tier {profile.tier}")


@users.command("block")
@click.argument("user_id")
@click.option("--for", "duration", type=Duration(), help="How long: 30m, 2h, 7d.")
@click.option("--until", type=click.DateTime(UNTIL_FORMATS), help="Until this UTC time, e.g. 2026-12-01T00:00.")
@click.option("--reason", required=True, help="Why; recorded, announced, and returned with the user's refusals.")
@actor_option
@pass_context
def users_block(
    obj: Context, user_id: str, duration: timedelta | None, until: datetime | None, reason: str, actor: str | None
) -> None:
    """Refuse USER's calls until a time (403 with the reason); announced on the alert topic."""
    from costbrake.operations.users import UnknownUser, block_user

    if duration is not None and until is None:
        end = obj.clock.now() + duration
    elif until is not None and duration is None:
        end = utc(until)
    else:
        raise click.UsageError("say how long: exactly one of --for (e.g. 2h) or --until (e.g. 2026-12-01T00:00)")
    try:
        profile, alert = block_user(
            obj.admin, obj.clock, canonical_user(user_id, "USER_ID") or "", end, reason, who(actor)
        )
    except UnknownUser as error:
        raise click.ClickException(str(error)) from error
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--for/--until") from error
    click.echo(f"user {profile.user_id} is blocked until {end.isoformat()} ({reason}) — by {who(actor)}")
    announce_or_warn(obj, alert)


@users.command("unblock")
@click.argument("user_id")
@click.option("--reason", required=True, help="Why; recorded and announced.")
@actor_option
@pass_context
def users_unblock(obj: Context, user_id: str, reason: str, actor: str | None) -> None:
    """Lift USER's block; announced on the alert topic."""
    from costbrake.operations.users import UnknownUser, unblock_user

    try:
        profile, alert = unblock_user(
            obj.admin, obj.clock, canonical_user(user_id, "USER_ID") or "", reason, who(actor)
        )
    except UnknownUser as error:
        raise click.ClickException(str(error)) from error
    if alert is None:
        click.echo(f"user {profile.user_id} is not blocked; nothing changed")
        return
    click.echo(f"user {profile.user_id} is unblocked ({reason}) — by {who(actor)}")
    announce_or_warn(obj, alert)
