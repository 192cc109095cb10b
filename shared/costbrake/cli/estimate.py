"""`costbrake estimate`: a feature's monthly cost on one or more models, before it ships."""

from __future__ import annotations

from decimal import Decimal

import click
from rich.table import Table

from costbrake.cli.main import USD, Context, console, emit_json, json_option, main, pass_context
from costbrake.cli.pricing import price_sources
from costbrake.errors import UnknownModel
from costbrake.estimate import DAYS_PER_MONTH, DEFAULT_THRESHOLD_USD, Workload, estimate, price_of
from costbrake.formatting import usd_exact
from costbrake.pricing_import import rates_per_million


@main.command("estimate")
@click.option("--daily-calls", type=click.IntRange(min=0), required=True, help="Calls per day.")
@click.option("--input-tokens", type=click.IntRange(min=0), required=True, help="Input tokens per call.")
@click.option("--output-tokens", type=click.IntRange(min=0), required=True, help="Output tokens per call.")
@click.option("--model", "models", multiple=True, required=True, help="Model to price (repeat to compare).")
@click.option(
    "--threshold",
    type=USD,
    default=str(DEFAULT_THRESHOLD_USD),
    show_default=True,
    help="Warn when a model's monthly cost is above this many USD.",
)
@json_option
@pass_context
def estimate_command(
    obj: Context,
    daily_calls: int,
    input_tokens: int,
    output_tokens: int,
    models: tuple[str, ...],
    threshold: Decimal,
    as_json: bool,
) -> None:
    """Monthly cost = daily calls x (input tokens x input price + output tokens x output price) x 30."""
    sources = price_sources(obj)
    try:
        prices = [price_of(sources.effective, model) for model in dict.fromkeys(models)]
    except UnknownModel as error:
        raise click.ClickException(error.message) from error
    workload = Workload(daily_calls, input_tokens, output_tokens)
    estimates = estimate(prices, workload, threshold)
    if as_json:
        emit_json(
            {
                "daily_calls": daily_calls,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "days_per_month": DAYS_PER_MONTH,
                "threshold_usd": usd_exact(threshold, symbol=False),
                "prices": "packaged + ledger overrides" if sources.from_ledger else "packaged",
                "models": [
                    {
                        "model": e.price.model,
                        "provider": e.price.provider,
                        "source": sources.source_of(e.price.model),
                        "usd_per_million": rates_per_million(e.rates),
                        "long_context": e.long_context,
                        "per_call_usd": usd_exact(e.per_call_usd, symbol=False),
                        "daily_usd": usd_exact(e.daily_usd, symbol=False),
                        "monthly_usd": usd_exact(e.monthly_usd, symbol=False),
                        "over_threshold": e.over_threshold,
                    }
                    for e in estimates
                ],
            }
        )
        return
    table = Table(
        title=f"{daily_calls:,} calls/day x ({input_tokens:,} input + {output_tokens:,} output tokens), "
        f"{DAYS_PER_MONTH} days"
    )
    table.add_column("model")
    for column in ("in $/M", "out $/M", "per call", "per day", "per month"):
        table.add_column(column, justify="right")
    for e in estimates:
        rates = rates_per_million(e.rates)
        marker = " *" if e.long_context else ""
        month = f"[bold red]{usd_exact(e.monthly_usd)}[/]" if e.over_threshold else usd_exact(e.monthly_usd)
        table.add_row(
            e.price.model + marker,
            rates["input"],
            rates["output"],
            usd_exact(e.per_call_usd),
            usd_exact(e.daily_usd),
            month,
        )
    console.print(table)
    if any(e.long_context for e in estimates):
        click.echo("* input above the model's long-context threshold: its higher rates apply.")
    for e in estimates:
        if e.over_threshold:
            click.echo(
                f"WARNING: {e.price.model} would cost {usd_exact(e.monthly_usd)}/month, "
                f"above the {usd_exact(threshold)}/month threshold."
            )
