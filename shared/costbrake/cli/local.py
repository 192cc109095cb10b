"""`costbrake local` and `costbrake simulate`: the local stack and replays, no AWS."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import click
from rich.console import Console

from costbrake.cli.main import console, main
from costbrake.cli.report import write_report

REPORT_DAYS = 7

# ---- local stack ------------------------------------------------------------------------------


@main.command()
@click.option("--port", default=8080, show_default=True, help="Port of the local gateway on 127.0.0.1.")
@click.option("--moto-port", default=5005, show_default=True, help="Port of moto's server on 127.0.0.1.")
@click.option("--dev-key", default=None, help="Use this secret as the dev key instead of a random one.")
def local(port: int, moto_port: int, dev_key: str | None) -> None:
    """Run costbrake locally: moto, tables from template.yaml, the gateway, a mock provider."""
    from costbrake.local.stack import DEV_USER, LocalStack

    # The gateway app in a process of its own (as in Lambda: uvicorn --factory costbrake.gateway.asgi:create_app),
    # moto's server in another; this process runs the pipeline (stream consumers, schedules) and the mock provider.
    stack = LocalStack(port=port, moto_port=moto_port, dev_key=dev_key, gateway_process=True).start()
    provider = (
        "built-in MOCK provider (no OPENAI_API_KEY/ANTHROPIC_API_KEY set)" if stack.mock_provider else "real providers"
    )

    def say(text: str) -> None:
        console.print(text, soft_wrap=True)  # never wrapped: the export lines are copied into a shell

    say(f"[bold green]costbrake local[/] is running — upstream: {provider}")
    say(f"  OpenAI base URL:    {stack.url}/v1")
    say(f"  Anthropic base URL: {stack.url}")
    say(f"  dev key:            {stack.dev_secret}   (user {DEV_USER}, tier pro, feature chat)")
    assert stack.app_server is not None
    pids = f"gateway app {stack.app_server.pid}, moto {stack.moto.pid}, pipeline and mock provider {os.getpid()}"
    say(f"  processes (pid):    {pids}")
    say("  For the CLI in another shell:")
    for name, value in stack.env_exports().items():
        say(f"    export {name}={value}")
    say("Ctrl-C to stop.")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


# ---- simulation -------------------------------------------------------------------------------


@main.group()
def simulate() -> None:
    """Replays on a simulated clock through the real gateway, pipeline and ledger (in-process, no AWS)."""


@simulate.command("incident")
@click.option("--users", default=300, show_default=True, help="Users of the normal traffic.")
@click.option("--days", default=14, show_default=True, help="Days of normal traffic before the incident.")
@click.option("--incident-days", default=4, show_default=True)
@click.option("--calls-per-user-day", default=1.5, show_default=True, help="Normal calls per user per day.")
@click.option("--quick", is_flag=True, help="A small replay (40 users, 3 days, 1 incident day) in about a minute.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--report",
    "report_format",
    type=click.Choice(["text", "json", "html"]),
    help="Also build the cost report of the replay's last 7 days (as `costbrake report` would at its end).",
)
@click.option("--report-out", type=click.Path(dir_okay=False, path_type=Path), help="Write that report to FILE.")
def simulate_incident(
    users: int,
    days: int,
    incident_days: int,
    calls_per_user_day: float,
    quick: bool,
    as_json: bool,
    report_format: str | None,
    report_out: Path | None,
) -> None:
    """DESIGN's $38,000 incident: 50k-token prompts to an expensive model, a few power users, one runaway."""
    # The replay's thousands of gateway log lines and EMF metrics would bury its summary.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from rich.progress import Progress

    from costbrake.simulate.incident import IncidentConfig, run_incident
    from costbrake.simulate.traffic import QUICK_SHAPE, TrafficShape

    shape = QUICK_SHAPE if quick else TrafficShape(users, days, calls_per_user_day, incident_days=incident_days)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("replaying", total=None)
        config = IncidentConfig(shape=shape, report_days=REPORT_DAYS if report_format else None)
        report = run_incident(config, lambda done, total: progress.update(task, completed=done, total=total))
    if report.cost_report is not None and report_format:
        write_report(report.cost_report, report_format, report_out)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    for line in report.lines():
        click.echo(line)
    for alert in report.incident_alerts[:6]:
        click.echo(f"  {alert}")
