"""`costbrake reconcile`: the ledger side by side with the providers' own usage and cost reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from costbrake.cli.main import Context, console, emit_json, json_option, main, pass_context
from costbrake.formatting import percent, usd

if TYPE_CHECKING:
    from costbrake.reconcile.figures import DayReconciliation, ModelLine
    from costbrake.reconcile.run import ReconcileResult


@main.command()
@click.option("--days", type=click.IntRange(1, 31), help="UTC days back, today included (default 7).")
@json_option
@click.option(
    "--publish",
    is_flag=True,
    help="Also do what the daily reconciler does: keep each day's status for reports, publish new alerts.",
)
@pass_context
def reconcile(obj: Context, days: int | None, as_json: bool, publish: bool) -> None:
    """Per day x provider x model: the provider's tokens and cost next to costbrake's, the variance, and why."""
    from costbrake.reconcile.deployment import NoAlertTopic, reconcile_deployment
    from costbrake.reconcile.settings import AdminKeysUnavailable, ReconcileSettings

    try:
        settings = ReconcileSettings()
        result = reconcile_deployment(obj.stores, obj.settings, settings, obj.clock, publish=publish, days=days)
    except (AdminKeysUnavailable, NoAlertTopic) as error:
        raise click.ClickException(str(error)) from error
    except ValueError as error:  # pydantic's ValidationError: a COSTBRAKE_ variable out of range
        raise click.ClickException(f"invalid reconciliation settings: {error}") from error
    if as_json:
        emit_json(result.as_dict())
    else:
        _print(result)
    if result.errors:
        raise click.exceptions.Exit(1)


def _print(result: ReconcileResult) -> None:
    if not result.enabled:
        click.echo(result.message)
        return
    table = Table(title="Reconciliation with the providers' reports (UTC days)")
    for name in ("day", "provider", "status", "provider $", "costbrake $", "variance", "unguarded $", "why"):
        table.add_column(name, justify="right" if name.endswith("$") or name == "variance" else "left")
    for day in result.days:
        table.add_row(
            day.day.isoformat(),
            day.provider,
            day.status.value + ("" if day.final else " (not final)"),
            usd(day.provider_usd),
            usd(day.ledger_usd),
            _variance(day),
            usd(day.unguarded_usd) if day.unguarded_usd else "",
            _why(day),
        )
    console.print(table)
    lines = [(day, line) for day in result.days for line in day.lines if _notable(line)]
    if lines:
        models = Table(title="Models that differ")
        for name in ("day", "provider", "model", "tokens (provider / costbrake)", "provider $", "costbrake $", "note"):
            models.add_column(name)
        for day, line in lines:
            tokens = f"{line.provider_tokens.total:,} / {line.ledger_tokens.total:,}"
            provider = usd(line.provider_usd)
            note = []
            if line.unguarded_usd:
                note.append(f"unguarded {usd(line.unguarded_usd)}")
            if line.drift_usd is not None:
                note.append(f"price drift x{line.price_factor}")
            models.add_row(
                day.day.isoformat(),
                day.provider,
                line.model,
                tokens,
                provider,
                usd(line.ledger_usd),
                ", ".join(note),
            )
        console.print(models)
    for provider in result.unchecked:
        click.echo(f"{provider}: no admin key configured, not reconciled")
    for provider, message in result.errors.items():
        click.echo(f"{provider}: {message}", err=True)
    for alert in result.alerts:
        click.echo(f"alert published: {alert.severity.value} {alert.type} {alert.scope} {alert.window.key}")


def _notable(line: ModelLine) -> bool:
    return bool(line.token_variance.total or line.usd_variance or line.unguarded_usd or line.drift_usd)


def _variance(day: DayReconciliation) -> str:
    fraction = day.variance_fraction
    sign = "-" if day.variance_usd < 0 else "+"
    text = f"{sign}{usd(abs(day.variance_usd))}"
    return text if fraction is None else f"{text} ({percent(fraction, signed=True)})"


def _why(day: DayReconciliation) -> str:
    seen: list[str] = []
    for finding in day.findings:
        label = finding.kind.value + (f" {finding.model}" if finding.model else "")
        if label not in seen:
            seen.append(label)
    return "; ".join(seen)
