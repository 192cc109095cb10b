"""`costbrake keys`: API keys."""

from __future__ import annotations

import click

from costbrake.cli.main import Context, main, pass_context

# ---- keys -------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """API keys (stored hashed; the secret is shown once)."""


@keys.command("create")
@click.option("--user", "user_id", help="End user the key is bound to (user key).")
@click.option("--tier", help="Tier for that user (free, pro, enterprise, ...).")
@click.option("--service", is_flag=True, help="Service key: may name end users in requests.")
@click.option("--feature", help="Feature charged when a request names none.")
@click.option("--name", default="", help="A label for the key.")
@pass_context
def keys_create(
    obj: Context, user_id: str | None, tier: str | None, service: bool, feature: str | None, name: str
) -> None:
    """Create a key and print its secret."""
    from costbrake.operations import create_key

    try:
        new = create_key(obj.ledger, obj.clock, user_id=user_id, tier=tier, service=service, feature=feature, name=name)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    click.echo(new.secret)
    kind = "service key" if service else f"user key for {user_id}"
    click.echo(f"key id {new.key.key_id} ({kind}); store the secret now, it is not kept.", err=True)
