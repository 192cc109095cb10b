"""The `costbrake` operator CLI: keys, budgets, switches, the local stack."""

from __future__ import annotations

import json
import signal
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from costbrake.clock import SystemClock
from costbrake.config import Settings
from costbrake.records import Limits, SwitchState

console = Console()


class DecimalType(click.ParamType):
    name = "usd"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not an amount in USD", param, ctx)
        if amount < 0 or not amount.is_finite():
            self.fail(f"{value!r} must be a non-negative amount", param, ctx)
        return amount


USD = DecimalType()


def _stack_settings(stack: str | None) -> dict[str, str]:
    """Table names from a deployed stack's outputs (boto3's normal credentials and region)."""
    if not stack:
        return {}
    import boto3

    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    return {"ledger_table": by_key["LedgerTableName"], "calls_table": by_key["CallsTableName"]}


class Context:
    def __init__(self, stack: str | None) -> None:
        self._stack = stack
        self.clock = SystemClock()
        self._settings: Settings | None = None
        self._ledger: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings(**_stack_settings(self._stack))
            except Exception as error:
                raise click.ClickException(
                    "Which deployment? Pass --stack NAME, or set COSTBRAKE_LEDGER_TABLE and COSTBRAKE_CALLS_TABLE "
                    f"(costbrake local prints them). ({error})"
                ) from error
        return self._settings

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            from costbrake.dal import Ledger

            self._ledger = Ledger(self.settings)
        return self._ledger


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--stack", envvar="COSTBRAKE_STACK", help="CloudFormation stack to operate on (default: env tables).")
@click.pass_context
def main(ctx: click.Context, stack: str | None) -> None:
    """Operate costbrake: keys, budgets, kill-switches, the local stack."""
    ctx.obj = Context(stack)


# ---- local stack ------------------------------------------------------------------------------


@main.command()
@click.option("--port", default=8080, show_default=True, help="Port of the local gateway on 127.0.0.1.")
@click.option("--moto-port", default=5005, show_default=True, help="Port of moto's server on 127.0.0.1.")
@click.option("--dev-key", default=None, help="Use this secret as the dev key instead of a random one.")
def local(port: int, moto_port: int, dev_key: str | None) -> None:
    """Run costbrake locally: moto, tables from template.yaml, the gateway, a mock provider."""
    from costbrake.local.stack import DEV_USER, LocalStack

    stack = LocalStack(port=port, moto_port=moto_port, dev_key=dev_key).start()
    provider = (
        "built-in MOCK provider (no OPENAI_API_KEY/ANTHROPIC_API_KEY set)" if stack.mock_provider else "real providers"
    )
    console.print(f"[bold green]costbrake local[/] is running — upstream: {provider}")
    console.print(f"  OpenAI base URL:    {stack.url}/v1")
    console.print(f"  Anthropic base URL: {stack.url}")
    console.print(f"  dev key:            {stack.dev_secret}   (user {DEV_USER}, tier pro, feature chat)")
    console.print("  For the CLI in another shell:")
    for name, value in stack.env_exports().items():
        console.print(f"    export {name}={value}")
    console.print("Ctrl-C to stop.")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


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


# ---- budgets ----------------------------------------------------------------------------------


@main.group()
def budgets() -> None:
    """Spend limits per user, tier, feature and the global monthly budget."""


@budgets.command("set")
@click.option("--user", "user_id")
@click.option("--feature")
@click.option("--tier")
@click.option("--global", "global_", is_flag=True)
@click.option("--hour", type=USD, help="USD per UTC hour (users, tiers).")
@click.option("--day", type=USD, help="USD per UTC day (users, tiers).")
@click.option("--month", type=USD, help="USD per UTC month.")
@click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute (users, tiers).")
@pass_context
def budgets_set(
    obj: Context,
    user_id: str | None,
    feature: str | None,
    tier: str | None,
    global_: bool,
    hour: Decimal | None,
    day: Decimal | None,
    month: Decimal | None,
    rpm: int | None,
) -> None:
    """Set limits for exactly one of --user, --feature, --tier, --global."""
    from costbrake import operations as ops

    targets = [t for t in (user_id, feature, tier, global_ or None) if t]
    if len(targets) != 1:
        raise click.UsageError("name exactly one of --user, --feature, --tier, --global")
    limits = Limits(hour, day, month, rpm)
    if limits == Limits():
        raise click.UsageError("set at least one of --hour, --day, --month, --rpm")
    actor = "cli"
    if user_id:
        profile = ops.set_user_limits(obj.ledger, user_id, limits)
        click.echo(f"user {user_id}: {_limits_text(profile.overrides)}")
    elif tier:
        saved = ops.set_tier_limits(obj.ledger, obj.clock, tier, limits, actor)
        click.echo(f"tier {tier}: {_limits_text(saved.limits)}")
    else:
        if hour is not None or day is not None or rpm is not None or month is None:
            raise click.UsageError("features and the global budget take --month only")
        if feature:
            saved_feature = ops.set_feature_budget(obj.ledger, obj.clock, obj.settings, feature, month, actor)
            click.echo(f"feature {feature}: ${saved_feature.month_usd}/month")
        else:
            ops.set_global_budget(obj.ledger, obj.clock, obj.settings, month, actor)
            click.echo(f"global: ${month}/month")


def _limits_text(limits: Limits) -> str:
    parts = [
        f"${limits.hour_usd}/hour" if limits.hour_usd is not None else None,
        f"${limits.day_usd}/day" if limits.day_usd is not None else None,
        f"${limits.month_usd}/month" if limits.month_usd is not None else None,
        f"{limits.rpm} requests/minute" if limits.rpm is not None else None,
    ]
    return ", ".join(p for p in parts if p) or "tier defaults"


@main.group()
def budget() -> None:
    """Where a user stands against their budgets."""


@budget.command("show")
@click.option("--user", "user_id", required=True)
@click.option("--feature", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def budget_show(obj: Context, user_id: str, feature: str, as_json: bool) -> None:
    """Spent, reserved, limit and remaining in every window that applies to USER."""
    from costbrake.policy import budget_status

    report = budget_status(obj.ledger, obj.settings, obj.clock.now(), user_id, feature, key=None)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"Budget of {user_id} (feature {feature})")
    for column in ("scope", "window", "limit", "spent", "reserved", "remaining", "resets"):
        table.add_column(column, justify="right" if column in ("limit", "spent", "reserved", "remaining") else "left")
    for row in report["windows"]:
        table.add_row(
            row["scope"],
            row["window"],
            f"${row['limit_usd']}",
            f"${row['spent_usd']}",
            f"${row['reserved_usd']}",
            f"${row['remaining_usd']}",
            row["resets_at"],
        )
    console.print(table)
    if report["requests_per_minute"] is not None:
        console.print(f"rate limit: {report['requests_per_minute']} requests/minute")


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
def simulate_incident(
    users: int, days: int, incident_days: int, calls_per_user_day: float, quick: bool, as_json: bool
) -> None:
    """DESIGN's $38,000 incident: 50k-token prompts to an expensive model, a few power users, one runaway."""
    from rich.progress import Progress

    from costbrake.simulate.incident import IncidentConfig, run_incident
    from costbrake.simulate.traffic import QUICK_SHAPE, TrafficShape

    shape = QUICK_SHAPE if quick else TrafficShape(users, days, calls_per_user_day, incident_days=incident_days)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("replaying", total=None)
        report = run_incident(
            IncidentConfig(shape=shape), lambda done, total: progress.update(task, completed=done, total=total)
        )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    for line in report.lines():
        click.echo(line)
    for alert in report.incident_alerts[:6]:
        click.echo(f"  {alert}")


if __name__ == "__main__":
    main()
