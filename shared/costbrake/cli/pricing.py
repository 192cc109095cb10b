"""`costbrake pricing`: the price table in effect (packaged + ledger overrides), LiteLLM imports, resets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.cli.switches import who
from costbrake.errors import LedgerUnavailable, UnknownModel
from costbrake.estimate import price_of
from costbrake.formatting import plain_decimal
from costbrake.pricing import PRICED_TIERS, ModelPrice, PriceTable, TokenRates
from costbrake.pricing_import import (
    SUPPORTED_PROVIDERS,
    ModelChange,
    PriceDiff,
    PriceImportError,
    diff_prices,
    load_litellm,
    per_million,
    rates_per_million,
)

PACKAGED = "packaged"
OVERRIDE = "ledger override"


@dataclass(frozen=True)
class PriceSources:
    """The packaged table and the ledger's overrides (none when no deployment could be read)."""

    packaged: PriceTable
    overrides: Mapping[str, ModelPrice] = field(default_factory=dict)
    from_ledger: bool = False

    @property
    def effective(self) -> PriceTable:
        return self.packaged.with_overrides(self.overrides.values())

    def replaced(self, model: str) -> ModelPrice | None:
        """The packaged price an override replaces, if any."""
        if model in self.overrides and _own_entry(self.packaged, model):
            return self.packaged.get(model)
        return None

    def source_of(self, model: str) -> str:
        if model not in self.overrides:
            return PACKAGED
        return f"{OVERRIDE} (replaces packaged)" if self.replaced(model) else OVERRIDE


def price_sources(obj: Context, *, need_ledger: bool = False) -> PriceSources:
    """The prices in effect: the ledger's overrides when a deployment is configured and reachable.

    Without one, the packaged prices (said on stderr) unless ``need_ledger``, which makes that an error.
    """
    packaged = PriceTable.default()
    try:
        snapshot = obj.admin.load_settings()
    except click.ClickException:  # no deployment configured
        if need_ledger:
            raise
        click.echo(
            "No deployment configured (--stack, or COSTBRAKE_LEDGER_TABLE and COSTBRAKE_CALLS_TABLE): "
            "packaged prices only.",
            err=True,
        )
        return PriceSources(packaged)
    except LedgerUnavailable as error:
        if need_ledger:
            raise click.ClickException(f"{error} ({error.__cause__ or 'no detail'})") from error
        click.echo(f"The ledger could not be read ({error.__cause__ or error}): packaged prices only.", err=True)
        return PriceSources(packaged)
    return PriceSources(packaged, snapshot.prices, from_ledger=True)


def _own_entry(table: PriceTable, model: str) -> bool:
    """The table prices ``model`` under its own name (not only through its base model)."""
    return any(price.model == model for price in table.models())


def price_json(price: ModelPrice, sources: PriceSources) -> dict[str, Any]:
    return {
        "model": price.model,
        "provider": price.provider,
        "mode": price.mode,
        "source": sources.source_of(price.model),
        "max_input_tokens": price.max_input_tokens,
        "max_output_tokens": price.max_output_tokens,
        "usd_per_million": rates_per_million(price.rates),
        "long_context": _long_context_json(price, price.long_context_rates),
        # As charged: the data's rates, or the default factor's for a tier the data does not price.
        "service_tiers": {
            tier: {
                "from_data": tier in dict(price.service_tiers),
                "usd_per_million": rates_per_million(price.tier_rates(tier).rates),
                "long_context": _long_context_json(price, price.tier_rates(tier).long_context_rates),
            }
            for tier in PRICED_TIERS
        },
        "web_search_usd_per_use": plain_decimal(price.web_search_price),
        "spec": price.to_spec(),
    }


def _long_context_json(price: ModelPrice, rates: TokenRates | None) -> dict[str, Any] | None:
    if rates is None:
        return None
    return {"above_input_tokens": price.long_context_threshold, "usd_per_million": rates_per_million(rates)}


def _model_price(table: PriceTable, model: str) -> ModelPrice:
    try:
        return price_of(table, model)
    except UnknownModel as error:
        raise click.ClickException(error.message) from error


# ---- commands -----------------------------------------------------------------------------------


@main.group()
def pricing() -> None:
    """Per-token prices: the packaged table, operators' overrides in the ledger, LiteLLM imports."""


@pricing.command("list")
@click.option("--provider", type=click.Choice(SUPPORTED_PROVIDERS), help="Only this provider's models.")
@json_option
@pass_context
def pricing_list(obj: Context, provider: str | None, as_json: bool) -> None:
    """Every priced model (USD per million tokens), marking the ledger's overrides."""
    sources = price_sources(obj)
    prices = [p for p in sources.effective.models() if provider is None or p.provider == provider]
    if as_json:
        emit_json([price_json(price, sources) for price in prices])
        return
    table = Table(title="Prices in effect (USD per million tokens)")
    table.add_column("model")
    table.add_column("provider")
    for column in ("input", "output", "cache read"):
        table.add_column(column, justify="right")
    table.add_column("long context")
    table.add_column("context", justify="right")
    table.add_column("source")
    for price in prices:
        rates = rates_per_million(price.rates)
        table.add_row(
            price.model if price.mode != "embedding" else f"{price.model} (embedding)",
            price.provider,
            rates["input"],
            rates["output"],
            rates["cache read"],
            _long_context_text(price),
            f"{price.max_input_tokens:,}" if price.max_input_tokens else "?",
            sources.source_of(price.model),
        )
    console.print(table)


def _long_context_text(price: ModelPrice) -> str:
    if price.long_context_rates is None or price.long_context_threshold is None:
        return ""
    rates = rates_per_million(price.long_context_rates)
    return f">{price.long_context_threshold // 1000}k: {rates['input']}/{rates['output']}"


@pricing.command("show")
@click.argument("model")
@json_option
@pass_context
def pricing_show(obj: Context, model: str, as_json: bool) -> None:
    """Every rate of MODEL (both context tiers), where the price comes from and its override history."""
    sources = price_sources(obj)
    price = _model_price(sources.effective, model)
    packaged = sources.replaced(price.model)
    history = obj.admin.price_history(price.model) if sources.from_ledger else []
    if as_json:
        emit_json(
            price_json(price, sources)
            | {
                "requested": model,
                "packaged": None if packaged is None else price_json(packaged, PriceSources(sources.packaged)),
                "history": history,
            }
        )
        return
    if price.model != model:
        click.echo(f"{model} is a dated snapshot without a price of its own: priced as {price.model}.")
    table = Table(title=f"{price.model} ({price.provider}) — {sources.source_of(price.model)}")
    table.add_column("USD per million tokens")
    threshold = price.long_context_threshold
    columns = [(f"up to {threshold:,} input tokens" if threshold else "all calls", price.rates)]
    if price.long_context_rates is not None:
        columns.append((f"above {threshold:,} input tokens", price.long_context_rates))
    for tier in PRICED_TIERS:
        tier_rates = price.tier_rates(tier)
        source = "" if tier in dict(price.service_tiers) else ", default factor"
        columns.append((f"{tier}{source}", tier_rates.rates))
        if tier_rates.long_context_rates is not None:
            columns.append((f"{tier} above {threshold:,}", tier_rates.long_context_rates))
    if packaged is not None:
        columns.append(("packaged, overridden", packaged.rates))
    for heading, _ in columns:
        table.add_column(heading, justify="right")
    per_column = [rates_per_million(rates) for _, rates in columns]
    for label in per_column[0]:
        table.add_row(label, *(rates[label] for rates in per_column))
    console.print(table)
    window = f"{price.max_input_tokens:,}" if price.max_input_tokens else "unknown"
    most = f"{price.max_output_tokens:,}" if price.max_output_tokens else "unknown"
    click.echo(
        f"{price.mode} model; context window {window} input tokens, at most {most} output tokens; "
        f"web search ${plain_decimal(price.web_search_price)} per use."
    )
    for change in history[-3:]:
        what = "removed" if not change["to"] else "set"
        click.echo(
            f"override {what} {change['at']} by {change['actor']}"
            + (f": {change['reason']}" if change["reason"] else "")
        )


@pricing.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "models", multiple=True, help="Only these models of the file (repeatable).")
@click.option("--apply", "apply_", is_flag=True, help="Store the changed (and added) prices as ledger overrides.")
@click.option(
    "--add-new", is_flag=True, help="Also add the file's models that are not priced yet (default: only --model ones)."
)
@click.option("--actor", default=None, help="Who, for the audit trail (default: cli:$USER).")
@json_option
@pass_context
def pricing_import(
    obj: Context, file: Path, models: tuple[str, ...], apply_: bool, add_new: bool, actor: str | None, as_json: bool
) -> None:
    """Compare FILE (LiteLLM's model_prices_and_context_window.json) with the prices in effect.

    A dry run unless --apply. Only OpenAI and Anthropic chat, responses and embedding models are read; the rest
    is counted. Models not priced yet are added only with --add-new or when named with --model: every override
    is read by every gateway with its settings, so the table holds the models a team uses, not the whole
    community map.
    """
    try:
        imported = load_litellm(file)
    except PriceImportError as error:
        raise click.ClickException(f"{file}: {error}") from error
    chosen = imported.prices
    if models:
        missing = sorted(set(models) - set(chosen))
        if missing:
            raise click.ClickException(f"not among the file's OpenAI/Anthropic models: {', '.join(missing)}")
        chosen = {name: chosen[name] for name in models}
    sources = price_sources(obj, need_ledger=apply_)
    diff = diff_prices(sources.effective, chosen)
    if models:  # the rest of the table was left out on purpose, not missing from the file
        diff = replace(diff, not_in_file=[])
    not_added = [] if (add_new or models) else [price.model for price in diff.added]
    if not_added:
        diff = replace(diff, added=[])
    if apply_ and diff.to_apply:
        obj.admin.put_prices(diff.to_apply, who(actor), obj.clock.now(), reason=f"pricing import {file.name}")
    if as_json:
        emit_json(
            _diff_json(diff, imported.skipped, imported.unusable, applied=apply_, from_ledger=sources.from_ledger)
            | {"not_added": not_added}
        )
        return
    _print_diff(diff)
    skipped = ", ".join(f"{count} {reason}" for reason, count in imported.skipped.most_common())
    click.echo(
        f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.unchanged)} unchanged, "
        f"{len(diff.not_in_file)} priced now but not in the file (kept as they are)."
    )
    click.echo(
        f"Read {len(imported.prices)} OpenAI/Anthropic models (chat, responses, embedding); "
        f"skipped {skipped or 'nothing'}."
    )
    if not_added:
        click.echo(f"{len(not_added)} not priced here, not added (--add-new, or name them with --model): ", nl=False)
        click.echo(", ".join(not_added[:10]) + (" …" if len(not_added) > 10 else ""))
    for why in sorted(imported.unusable.values()):
        click.echo(f"  unusable: {why}")
    if not diff.to_apply:
        click.echo("Nothing to store: the prices in effect already match.")
    elif apply_:
        click.echo(
            f"Stored {_prices_text(len(diff.to_apply))} as ledger overrides; gateways use them within "
            f"{obj.settings.settings_cache_seconds:g} seconds."
        )
    else:
        click.echo(f"Dry run: nothing stored. Run again with --apply to store {_prices_text(len(diff.to_apply))}.")


def _prices_text(count: int) -> str:
    return f"{count} price" if count == 1 else f"{count} prices"


def _print_diff(diff: PriceDiff) -> None:
    if not diff.to_apply:
        return
    table = Table(title="Price changes (USD per million tokens)")
    for column in ("model", "change", "rate", "now", "file"):
        table.add_column(column, justify="right" if column in ("now", "file") else "left")
    for price in diff.added:
        rates = rates_per_million(price.rates)
        table.add_row(
            price.model, f"added ({price.provider})", "input/output", "—", f"{rates['input']}/{rates['output']}"
        )
    for change in diff.changed:
        for row, rate in enumerate(_change_rows(change)):
            table.add_row(change.model if row == 0 else "", "changed" if row == 0 else "", *rate)
    console.print(table)


def _change_rows(change: ModelChange) -> list[tuple[str, str, str]]:
    rows = [(rate.rate, _rate_text(rate.old), _rate_text(rate.new)) for rate in change.changes]
    rows += [(field.name, field.old or "—", field.new or "—") for field in change.fields]
    if change.old.model != change.model:
        rows = [(rate, f"{old} (as {change.old.model})", new) for rate, old, new in rows]
    return rows


def _rate_text(rate: Decimal | None) -> str:
    return "—" if rate is None else per_million(rate)


def _diff_json(
    diff: PriceDiff, skipped: Mapping[str, int], unusable: Mapping[str, str], *, applied: bool, from_ledger: bool
) -> dict[str, Any]:
    return {
        "compared_with": "packaged + ledger overrides" if from_ledger else "packaged",
        "applied": applied and bool(diff.to_apply),
        "added": {price.model: price.to_spec() for price in diff.added},
        "changed": {
            change.model: {
                rate.rate: {
                    "old_usd_per_million": None if rate.old is None else per_million(rate.old),
                    "new_usd_per_million": None if rate.new is None else per_million(rate.new),
                }
                for rate in change.changes
            }
            | {field.name: {"old": field.old, "new": field.new} for field in change.fields}
            for change in diff.changed
        },
        "unchanged": diff.unchanged,
        "not_in_file": diff.not_in_file,
        "skipped": dict(skipped),
        "unusable": dict(unusable),
    }


@pricing.command("reset")
@click.argument("model")
@click.option("--actor", default=None, help="Who, for the audit trail (default: cli:$USER).")
@pass_context
def pricing_reset(obj: Context, model: str, actor: str | None) -> None:
    """Remove MODEL's ledger override: the packaged price applies again (or the model is unpriced)."""
    if not obj.admin.delete_price(model, who(actor), obj.clock.now(), reason="pricing reset"):
        raise click.ClickException(f"{model} has no ledger override.")
    try:
        price = PriceTable.default().get(model)
    except UnknownModel:
        click.echo(f"{model}: override removed; the model has no packaged price, so calls to it are refused.")
        return
    rates = rates_per_million(price.rates)
    click.echo(
        f"{model}: override removed; the packaged price applies again ({rates['input']}/{rates['output']} per million)."
    )
