"""`costbrake keys`: API keys."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.records import ApiKey


def key_json(key: ApiKey, created_at: str) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "user_id": key.user_id,
        "service": key.service,
        "default_feature": key.default_feature,
        "month_usd": None if key.month_usd is None else format(key.month_usd, "f"),
        "revoked": key.revoked,
        "created_at": created_at,
    }


@main.group()
def keys() -> None:
    """API keys (stored hashed; the secret is shown once)."""


@keys.command("create")
@click.option("--user", "user_id", help="End user the key is bound to (user key).")
@click.option("--tier", help="Tier for that user (free, pro, enterprise, ...).")
@click.option("--service", is_flag=True, help="Service key: may name end users in requests.")
@click.option("--feature", help="Feature charged when a request names none.")
@click.option("--name", default="", help="A label for the key.")
@json_option
@pass_context
def keys_create(
    obj: Context, user_id: str | None, tier: str | None, service: bool, feature: str | None, name: str, as_json: bool
) -> None:
    """Create a key and print its secret (alone on stdout, or with the key's fields with --json)."""
    from costbrake.operations import UnknownTier, create_key, require_tier

    if service and user_id:
        raise click.UsageError("a key is either bound to --user or a --service key, not both")
    if tier is not None:
        try:
            require_tier(obj.ledger, tier)
        except UnknownTier as error:
            raise click.BadParameter(str(error), param_hint="--tier") from error
    try:
        new = create_key(obj.ledger, obj.clock, user_id=user_id, tier=tier, service=service, feature=feature, name=name)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    if as_json:
        emit_json({"secret": new.secret, **key_json(new.key, obj.clock.now().isoformat())})
        return
    click.echo(new.secret)
    kind = "service key" if service else f"user key for {user_id}"
    click.echo(f"key id {new.key.key_id} ({kind}); store the secret now, it is not kept.", err=True)


@keys.command("list")
@click.option("--user", "user_id", help="Only this user's keys.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@json_option
@pass_context
def keys_list(obj: Context, user_id: str | None, active: bool, as_json: bool) -> None:
    """Every key (ids and labels, never secrets), oldest first."""
    found = sorted(obj.ledger.list_keys(), key=lambda pair: (pair[1], pair[0].key_id))
    found = [
        (key, created)
        for key, created in found
        if (user_id is None or key.user_id == user_id) and not (active and key.revoked)
    ]
    if as_json:
        emit_json([key_json(key, created) for key, created in found])
        return
    table = Table(title="API keys")
    for column in ("key id", "name", "user", "kind", "default feature", "created (UTC)", "state"):
        table.add_column(column)
    for key, created in found:
        table.add_row(
            key.key_id,
            key.name,
            key.user_id or "-",
            "service" if key.service else "user",
            key.default_feature or "-",
            created[:19],
            "[red]revoked[/]" if key.revoked else "active",
        )
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@pass_context
def keys_revoke(obj: Context, key_id: str) -> None:
    """Revoke KEY_ID (as `keys list` shows it); its calls are refused within the gateway's cache time."""
    key = next((key for key, _ in obj.ledger.list_keys() if key.key_id == key_id), None)
    if key is None:
        raise click.ClickException(f"unknown key id {key_id!r} (`costbrake keys list` shows them)")
    if key.revoked:
        click.echo(f"key {key_id} was already revoked")
        return
    obj.ledger.revoke_key(key_id)
    click.echo(f"key {key_id} revoked; gateways refuse it once their key cache expires (seconds)")
