"""`costbrake features`: a feature's caps and cost reducers (response cache, history truncation), audited."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click
from rich.table import Table

from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.cli.switches import actor_option, who
from costbrake.formatting import plain_decimal
from costbrake.records import AuditEntry, CacheMode, Feature, OverCap


class SimilarityType(click.ParamType):
    name = "similarity"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a number", param, ctx)


def feature_settings_json(feature: Feature) -> dict[str, Any]:
    return {
        "name": feature.name,
        "state": feature.state.value,
        "reason": feature.reason,
        "month_usd": plain_decimal(feature.month_usd),
        "max_input_tokens": feature.max_input_tokens,
        "max_output_tokens": feature.max_output_tokens,
        "default_max_output_tokens": feature.default_max_output_tokens,
        "over_cap": feature.over_cap.value,
        "cache": feature.cache.value,
        "cache_ttl_seconds": feature.cache_ttl_seconds,
        "semantic_threshold": format(feature.semantic_threshold, "f"),
        "truncate": feature.truncate,
        "cache_generation": feature.cache_generation,
    }


def _history_json(entry: AuditEntry) -> dict[str, str]:
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "from": entry.old_value,
        "to": entry.new_value,
        "reason": entry.reason,
    }


def _feature_name(name: str) -> str:
    """A feature as the ledger knows it: its canonical spelling (or a configured name from before names were
    canonical, as it is); a name with no canonical form is refused when it is used to create one."""
    from costbrake.operations.features import feature_key

    if not name.strip():
        raise click.BadParameter("a feature name cannot be empty", param_hint="NAME")
    return feature_key(name)


@main.group()
def features() -> None:
    """Feature settings: output/input caps, response cache (exact or semantic) and history truncation."""


@features.command("list")
@json_option
@pass_context
def features_list(obj: Context, as_json: bool) -> None:
    """Every configured feature's caps and cost reducers (unconfigured features have the defaults: all off)."""
    configured = sorted(obj.admin.load_settings().features.values(), key=lambda f: f.name)
    if as_json:
        emit_json([feature_settings_json(feature) for feature in configured])
        return
    table = Table(title="Features")
    columns = ("feature", "state", "cache", "cache ttl", "threshold", "truncate", "max input", "max output")
    for column in columns:
        table.add_column(column, justify="right" if column.startswith(("max", "cache ttl")) else "left")
    for f in configured:
        table.add_row(
            f.name,
            f.state.value,
            f.cache.value,
            f"{f.cache_ttl_seconds:,}s" if f.cache is not CacheMode.OFF else "-",
            format(f.semantic_threshold, "f") if f.cache is CacheMode.SEMANTIC else "-",
            "on" if f.truncate else "off",
            f"{f.max_input_tokens:,}",
            f"{f.max_output_tokens:,} ({f.over_cap.value})",
        )
    console.print(table)


@features.command("show")
@click.argument("name")
@json_option
@pass_context
def features_show(obj: Context, name: str, as_json: bool) -> None:
    """NAME's settings and its audited changes (settings and switch flips), oldest first."""
    name = _feature_name(name)
    feature = obj.admin.load_settings().features.get(name)
    if feature is None:
        raise click.ClickException(f"unknown feature {name!r}: not configured (`costbrake features list`)")
    history = obj.admin.feature_history(name)
    if as_json:
        emit_json(feature_settings_json(feature) | {"history": [_history_json(entry) for entry in history]})
        return
    table = Table(title=f"Feature {name}", show_header=False)
    table.add_column("setting")
    table.add_column("value")
    for setting, value in feature_settings_json(feature).items():
        table.add_row(setting, "-" if value is None else str(value))
    console.print(table)
    if history:
        changes = Table(title=f"Changes to {name}")
        for column in ("at (UTC)", "actor", "action", "from", "to", "reason"):
            changes.add_column(column)
        for entry in history:
            row = _history_json(entry)
            changes.add_row(*(row[key] for key in ("at", "actor", "action", "from", "to", "reason")))
        console.print(changes)


@features.command("set")
@click.argument("name")
@click.option("--create", is_flag=True, help="NAME has no configuration yet: create it with the defaults.")
@click.option("--cache", type=click.Choice([mode.value for mode in CacheMode]), help="Response cache mode.")
@click.option("--cache-ttl", "cache_ttl", type=int, help="How long a cached answer is served (seconds).")
@click.option("--semantic-threshold", type=SimilarityType(), help="Cosine similarity a semantic hit needs (e.g. 0.95).")
@click.option("--truncate", type=click.Choice(["on", "off"]), help="Drop the oldest turns above max input tokens.")
@click.option("--max-input-tokens", type=int, help="Input cap: refused above it (or truncated with --truncate on).")
@click.option("--max-output-tokens", type=int, help="Output cap of one call.")
@click.option("--over-cap", type=click.Choice([o.value for o in OverCap]), help="Output asked above the cap.")
@click.option("--flush-cache", is_flag=True, help="Stop serving every answer cached so far (also on any cache change).")
@click.option("--reason", default="", help="Why; recorded in the audit trail.")
@actor_option
@pass_context
def features_set(
    obj: Context,
    name: str,
    create: bool,
    cache: str | None,
    cache_ttl: int | None,
    semantic_threshold: Decimal | None,
    truncate: str | None,
    max_input_tokens: int | None,
    max_output_tokens: int | None,
    over_cap: str | None,
    flush_cache: bool,
    reason: str,
    actor: str | None,
) -> None:
    """Change NAME's caps and cost reducers (takes effect within the gateway's settings cache time), audited."""
    from costbrake.feature_settings import LOW_THRESHOLD, FeatureChanged, FeatureChanges, set_feature_settings
    from costbrake.operations.features import UnknownFeature

    changes = FeatureChanges(
        cache=CacheMode(cache) if cache else None,
        cache_ttl_seconds=cache_ttl,
        semantic_threshold=semantic_threshold,
        truncate=None if truncate is None else truncate == "on",
        max_input_tokens=max_input_tokens,
        max_output_tokens=max_output_tokens,
        over_cap=OverCap(over_cap) if over_cap else None,
    )
    try:
        before, after = set_feature_settings(
            obj.admin,
            obj.clock,
            obj.settings,
            _feature_name(name),
            changes,
            who(actor),
            reason,
            create=create,
            flush_cache=flush_cache,
        )
    except (UnknownFeature, ValueError, FeatureChanged) as error:
        raise click.ClickException(str(error)) from error
    if before == after:
        click.echo(f"feature {after.name}: unchanged")
        return
    shown = feature_settings_json(after)
    old = feature_settings_json(before)
    changed = [key for key in shown if shown[key] != old[key]] or list(changes.named())
    described = ", ".join(f"{key} {old[key]} -> {shown[key]}" for key in changed)
    click.echo(f"feature {after.name}: {described} — by {who(actor)}")
    if after.cache is CacheMode.SEMANTIC and after.semantic_threshold < LOW_THRESHOLD:
        click.echo(
            f"WARNING: a semantic threshold below {LOW_THRESHOLD} serves answers to questions that only look alike.",
            err=True,
        )
    if after.cache is CacheMode.SEMANTIC and before.cache is not CacheMode.SEMANTIC:
        click.echo("note: each semantic lookup embeds the last user turn, a call charged to the feature.", err=True)
