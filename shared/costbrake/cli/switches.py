"""`costbrake switch`: feature kill-switches; and how operators' actions are attributed and announced."""

from __future__ import annotations

import getpass
from typing import Any

import click
from rich.table import Table

from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.formatting import plain_decimal, usd_exact
from costbrake.pipeline.alerts import Alert
from costbrake.records import Feature, SwitchState

actor_option = click.option(
    "--actor", default=None, help="Who, for the audit trail and the alert (default: cli:$USER)."
)


def who(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def announce_or_warn(obj: Context, alert: Alert) -> None:
    """Publish an operator action's alert; the action stands even when the alert cannot go out (said on stderr)."""
    from costbrake.operations.announce import announce

    try:
        click.echo(announce(obj.settings, obj.stores.alerts, alert), err=True)
    except Exception as error:  # SNS or the alert log unreachable: the action is done, say so loudly
        click.echo(f"WARNING: the action is done but its alert could not be published: {error}", err=True)


def feature_json(feature: Feature) -> dict[str, Any]:
    return {
        "name": feature.name,
        "state": feature.state.value,
        "reason": feature.reason,
        "month_usd": plain_decimal(feature.month_usd),
        "max_input_tokens": feature.max_input_tokens,
        "max_output_tokens": feature.max_output_tokens,
        "over_cap": feature.over_cap.value,
    }


_STATE_STYLE = {SwitchState.ON: "green", SwitchState.DOWNGRADE: "yellow", SwitchState.OFF: "bold red"}


@main.group()
def switch() -> None:
    """Feature kill-switches: on, downgrade (cheaper model), off (403)."""


@switch.command("set")
@click.argument("feature")
@click.argument("state", type=click.Choice([s.value for s in SwitchState]))
@click.option("--reason", required=True, help="Why; recorded in the audit trail and returned with a 403.")
@click.option("--create", is_flag=True, help="FEATURE has no configuration yet: create it with the defaults.")
@actor_option
@pass_context
def switch_set(obj: Context, feature: str, state: str, reason: str, create: bool, actor: str | None) -> None:
    """Flip FEATURE's switch (takes effect within the gateway's cache time); announced on the alert topic."""
    from costbrake.operations.features import UnknownFeature, switch_feature

    try:
        flipped, alert = switch_feature(
            obj.admin, obj.clock, obj.settings, feature, SwitchState(state), reason, who(actor), create=create
        )
    except (UnknownFeature, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"feature {flipped.name} is now {flipped.state.value} ({reason}) — by {who(actor)}")
    announce_or_warn(obj, alert)


@switch.command("list")
@json_option
@pass_context
def switch_list(obj: Context, as_json: bool) -> None:
    """Every configured feature's switch, reason and budget (unconfigured features are on)."""
    features = sorted(obj.admin.load_settings().features.values(), key=lambda f: f.name)
    if as_json:
        emit_json([feature_json(feature) for feature in features])
        return
    table = Table(title="Feature switches")
    for column in ("feature", "state", "reason", "month budget", "max output tokens"):
        table.add_column(column, justify="right" if column in ("month budget", "max output tokens") else "left")
    for f in features:
        table.add_row(
            f.name,
            f"[{_STATE_STYLE[f.state]}]{f.state.value}[/]",
            f.reason,
            "-" if f.month_usd is None else usd_exact(f.month_usd),
            f"{f.max_output_tokens:,}",
        )
    console.print(table)


@switch.command("history")
@click.argument("feature")
@json_option
@pass_context
def switch_history(obj: Context, feature: str, as_json: bool) -> None:
    """Every flip of FEATURE's switch, oldest first: when, who, from, to, why."""
    from costbrake.operations.features import feature_key

    feature = feature_key(feature)
    history = obj.admin.switch_history(feature)
    if not history and feature not in obj.admin.load_settings().features:
        raise click.ClickException(f"unknown feature {feature!r}: not configured and never switched")
    if as_json:
        emit_json({"feature": feature, "flips": history})
        return
    if not history:
        click.echo(f"feature {feature} was never switched")
        return
    table = Table(title=f"Switch history of {feature}")
    for column in ("at (UTC)", "actor", "from", "to", "reason"):
        table.add_column(column)
    for flip in history:
        table.add_row(flip["at"], flip["actor"], flip["from"], flip["to"], flip["reason"])
    console.print(table)
