"""`costbrake report`: the last N days and the projected month, as text, JSON or a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import Progress

from costbrake.cli.main import Context, json_text, main, pass_context

if TYPE_CHECKING:
    from costbrake.reports.model import CostReport


@main.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90), help="Length of the period.")
@click.option(
    "--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json", "html"]), help="Output."
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE instead of stdout.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 10_000), help="Users listed by cost.")
@pass_context
def report(obj: Context, days: int, fmt: str, as_json: bool, out: Path | None, top: int) -> None:
    """Cost report: spend and projection against budget, by feature, user and model, efficiency, anomalies."""
    from costbrake.reports.model import build_report
    from costbrake.reports.source import collect_inputs

    stores, settings, now = obj.stores, obj.settings, obj.clock.now()
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"reading {days} days of call records", total=days)
        inputs = collect_inputs(stores, settings, now, days, lambda done, _: progress.update(task, completed=done))
    write_report(build_report(inputs, top_users=top), "json" if as_json else fmt, out)
    if out is not None:
        click.echo(f"{len(inputs.calls)} calls over {days} days", err=True)


def write_report(built: CostReport, fmt: str, out: Path | None) -> None:
    """Render as text, json or html, to ``out`` or stdout."""
    if fmt == "json":
        text = json_text(built.as_dict())
    elif fmt == "html":
        from costbrake.reports.html import render_html

        text = render_html(built)
    else:
        from costbrake.reports.text import render_text

        text = render_text(built)
    if out is None:
        click.echo(text)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as error:
            raise click.ClickException(f"cannot write {out}: {error.strerror}") from error
        click.echo(f"wrote {out}", err=True)
