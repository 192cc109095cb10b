"""The `costbrake` command group, its shared options (--stack) and what every command module uses."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import click
from rich.console import Console

from costbrake.clock import SystemClock
from costbrake.config import Settings
from costbrake.formatting import plain_decimal


def _console() -> Console:
    # Piped or redirected (scripts, CI logs, `| less`) rich assumes 80 columns and cuts the tables' cells.
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        return Console(width=PIPED_WIDTH)
    return Console()


PIPED_WIDTH = 160
console = _console()


class DecimalType(click.ParamType):
    name = "usd"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not an amount in USD", param, ctx)
        if not amount.is_finite() or amount < 0:  # NaN first: comparing it raises
            self.fail(f"{value!r} must be a non-negative amount", param, ctx)
        return amount


USD = DecimalType()


def _stack_settings(stack: str | None) -> dict[str, str]:
    """Table names from a deployed stack's outputs (boto3's normal credentials and region)."""
    if not stack:
        return {}
    import boto3

    session = boto3.session.Session()
    outputs = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    found = {
        "ledger_table": by_key["LedgerTableName"],
        "calls_table": by_key["CallsTableName"],
        "alert_topic_arn": by_key["AlertTopicArn"],
    }
    # The stack's region as boto3 resolved it (env or ~/.aws/config): the tables are there too.
    return found | ({"aws_region": session.region_name} if session.region_name else {})


class Context:
    def __init__(self, stack: str | None) -> None:
        self._stack = stack
        self.clock = SystemClock()
        self._settings: Settings | None = None
        self._stores: Any = None

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
    def stores(self) -> Any:
        """The deployment's stores (``costbrake.wiring.Stores``), built on first use."""
        if self._stores is None:
            from costbrake.wiring import stores_from_settings

            self._stores = stores_from_settings(self.settings)
        return self._stores

    @property
    def admin(self) -> Any:
        return self.stores.admin

    @property
    def rollups(self) -> Any:
        return self.stores.rollups


pass_context = click.make_pass_decorator(Context)

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (money as strings).")


def json_text(data: Any) -> str:
    """``data`` as JSON: Decimals as strings (exact), datetimes as ISO-8601."""
    return json.dumps(data, indent=2, default=_json_default)


def emit_json(data: Any) -> None:
    click.echo(json_text(data))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class OperatorGroup(click.Group):
    """Refusals from the ledger (unreachable, throttled) end a command with their message, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from costbrake.errors import CostbrakeError

        try:
            return super().invoke(ctx)
        except CostbrakeError as error:
            raise click.ClickException(f"{error.message} ({type(error).__name__})") from error
        except ModuleNotFoundError as missing:
            if missing.name not in LOCAL_EXTRA_MODULES:
                raise
            raise click.ClickException(
                f"`costbrake {ctx.invoked_subcommand}` runs moto on this machine, which `pip install costbrake` "
                "leaves out: pip install 'costbrake[local]'"
            ) from missing


# What `costbrake local` and `costbrake simulate` import from the `local` extra (moto and its server).
LOCAL_EXTRA_MODULES = frozenset({"moto", "werkzeug", "flask", "flask_cors"})


@click.group(cls=OperatorGroup)
@click.option("--stack", envvar="COSTBRAKE_STACK", help="CloudFormation stack to operate on (default: env tables).")
@click.pass_context
def main(ctx: click.Context, stack: str | None) -> None:
    """Operate costbrake: keys, users, budgets, switches, status, reports, prices, estimates, the local stack."""
    ctx.obj = Context(stack)
