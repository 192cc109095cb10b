"""`costbrake switch`: feature kill-switches."""

from __future__ import annotations

import click

from costbrake.cli.main import Context, main, pass_context
from costbrake.records import SwitchState

# ---- switches ---------------------------------------------------------------------------------


@main.group()
def switch() -> None:
    """Feature kill-switches: on, downgrade (cheaper model), off (403)."""


@switch.command("set")
@click.argument("feature")
@click.argument("state", type=click.Choice([s.value for s in SwitchState]))
@click.option("--reason", required=True, help="Why; recorded in the audit trail and returned with a 403.")
@click.option("--actor", default=None, help="Who (default: $USER).")
@pass_context
def switch_set(obj: Context, feature: str, state: str, reason: str, actor: str | None) -> None:
    """Flip FEATURE's switch (takes effect within the gateway's cache time)."""
    import getpass

    from costbrake.operations import set_switch

    who = actor or f"cli:{getpass.getuser()}"
    flipped = set_switch(obj.ledger, obj.clock, obj.settings, feature, SwitchState(state), reason, who)
    click.echo(f"feature {flipped.name} is now {flipped.state.value} ({reason}) — by {who}")
