"""`costbrake keys`: API keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click
from rich.table import Table

from costbrake.cli.main import USD, Context, console, emit_json, json_option, main, pass_context
from costbrake.cli.switches import actor_option, who
from costbrake.formatting import plain_decimal, usd_exact
from costbrake.policy import key_features
from costbrake.records import ApiKey, Limits


def limits_text(limits: Limits, none: str) -> str:
    """``$1.00/hour, $5.00/day`` for the limits that are set."""
    parts = [
        f"{usd_exact(usd)}/{window}"
        for usd, window in ((limits.hour_usd, "hour"), (limits.day_usd, "day"), (limits.month_usd, "month"))
        if usd is not None
    ]
    if limits.rpm is not None:
        parts.append(f"{limits.rpm} requests/minute")
    return ", ".join(parts) or none


def key_json(key: ApiKey, created_at: str) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "user_id": key.user_id,
        "service": key.service,
        "default_feature": key.default_feature,
        "features": list(key_features(key)),
        "any_feature": key.any_feature,
        "hour_usd": plain_decimal(key.hour_usd),
        "day_usd": plain_decimal(key.day_usd),
        "month_usd": plain_decimal(key.month_usd),
        "revoked": key.revoked,
        "created_at": created_at,
    }


def features_text(key: ApiKey) -> str:
    """What `keys list` says a key may charge (its default first)."""
    listed = ", ".join(key_features(key))
    return f"any configured ({listed} by default)" if key.any_feature else listed


def canonical_features(names: tuple[str, ...]) -> tuple[str, ...]:
    """--feature values in their canonical spelling (``Chat`` is ``chat``), or a usage error naming the bad one."""
    from costbrake.names import InvalidName
    from costbrake.operations.features import feature_names

    try:
        return feature_names(names)
    except InvalidName as error:
        raise click.BadParameter(error.message, param_hint="--feature") from None


def canonical_user(value: str | None, hint: str) -> str | None:
    """A user id as typed, checked: one with no canonical form (unprintable, too long) is a usage error."""
    from costbrake.names import InvalidName, canonical_user_id

    if value is None:
        return None
    try:
        canonical_user_id(value, "user id")
    except InvalidName as error:
        raise click.BadParameter(error.message, param_hint=hint) from None
    return value


@main.group()
def keys() -> None:
    """API keys (stored hashed; the secret is shown once)."""


@keys.command("create")
@click.option("--user", "user_id", help="End user the key is bound to (user key).")
@click.option("--tier", help="Tier for that user (free, pro, enterprise, ...).")
@click.option("--service", is_flag=True, help="Service key: may name end users in requests.")
@click.option(
    "--feature",
    "features",
    multiple=True,
    help="A feature the key may charge (repeat for more); the first is charged when a request names none.",
)
@click.option("--any-feature", is_flag=True, help="The key may charge any configured feature its requests name.")
@click.option(
    "--create-features", is_flag=True, help="Configure --feature names that are new with the deployment's defaults."
)
@click.option("--hour", type=USD, help="The key's own budget: USD per UTC hour, all its end users together.")
@click.option("--day", type=USD, help="The key's own budget: USD per UTC day.")
@click.option("--month", type=USD, help="The key's own budget: USD per UTC month.")
@click.option("--name", default="", help="A label for the key.")
@actor_option
@json_option
@pass_context
def keys_create(
    obj: Context,
    user_id: str | None,
    tier: str | None,
    service: bool,
    features: tuple[str, ...],
    any_feature: bool,
    create_features: bool,
    hour: Decimal | None,
    day: Decimal | None,
    month: Decimal | None,
    name: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Create a key and print its secret (alone on stdout, or with the key's fields with --json).

    A key charges only the features it names (--feature, the first is its default) unless it is --any-feature;
    a key with neither charges the "default" feature only.
    """
    from costbrake.operations.features import UnconfiguredFeatures, configure_features, unconfigured_features
    from costbrake.operations.keys import create_key
    from costbrake.operations.users import UnknownTier, require_tier

    if service and user_id:
        raise click.UsageError("a key is either bound to --user or a --service key, not both")
    user_id = canonical_user(user_id, "--user")
    names = canonical_features(features)
    if tier is not None:
        try:
            require_tier(obj.admin, tier)
        except UnknownTier as error:
            raise click.BadParameter(str(error), param_hint="--tier") from error
    new_features = unconfigured_features(obj.admin, names)
    if new_features and not create_features:
        known = sorted(obj.admin.load_settings().features)
        raise click.BadParameter(str(UnconfiguredFeatures(new_features, known)), param_hint="--feature")
    limits = Limits(hour, day, month)
    try:
        new = create_key(
            obj.admin,
            obj.clock,
            user_id=user_id,
            tier=tier,
            service=service,
            features=names,
            any_feature=any_feature,
            limits=None if limits == Limits() else limits,
            name=name,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    if new_features:
        configure_features(obj.admin, obj.clock, obj.settings, new_features, who(actor))
        click.echo(f"configured new feature(s) {', '.join(new_features)} with the deployment's defaults", err=True)
    if as_json:
        emit_json({"secret": new.secret, **key_json(new.key, obj.clock.now().isoformat())})
        return
    click.echo(new.secret)
    kind = "service key" if service else f"user key for {new.key.user_id}"
    click.echo(
        f"key id {new.key.key_id} ({kind}; features: {features_text(new.key)}); store the secret now, it is not kept.",
        err=True,
    )


@keys.command("list")
@click.option("--user", "user_id", help="Only this user's keys.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@json_option
@pass_context
def keys_list(obj: Context, user_id: str | None, active: bool, as_json: bool) -> None:
    """Every key (ids and labels, never secrets), oldest first."""
    found = sorted(obj.admin.list_keys(), key=lambda pair: (pair[1], pair[0].key_id))
    if user_id is not None:
        from costbrake.operations.users import user_id_of

        user_id = user_id_of(obj.admin, canonical_user(user_id, "--user") or "")
    found = [
        (key, created)
        for key, created in found
        if (user_id is None or key.user_id == user_id) and not (active and key.revoked)
    ]
    if as_json:
        emit_json([key_json(key, created) for key, created in found])
        return
    table = Table(title="API keys")
    for column in ("key id", "name", "user", "kind", "features (default first)", "budgets", "created (UTC)", "state"):
        table.add_column(column)
    for key, created in found:
        table.add_row(
            key.key_id,
            key.name,
            key.user_id or "-",
            "service" if key.service else "user",
            features_text(key),
            limits_text(key.limits, "-"),
            created[:19],
            "[red]revoked[/]" if key.revoked else "active",
        )
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@pass_context
def keys_revoke(obj: Context, key_id: str) -> None:
    """Revoke KEY_ID (as `keys list` shows it); its calls are refused within the gateway's cache time."""
    key = next((key for key, _ in obj.admin.list_keys() if key.key_id == key_id), None)
    if key is None:
        raise click.ClickException(f"unknown key id {key_id!r} (`costbrake keys list` shows them)")
    if key.revoked:
        click.echo(f"key {key_id} was already revoked")
        return
    obj.admin.revoke_key(key_id)
    click.echo(f"key {key_id} revoked; gateways refuse it once their key cache expires (seconds)")
