"""The gateway Lambda's resolver: routers, and the one place where domain errors become HTTP."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from costbrake.clock import SystemClock
from costbrake.config import load_settings
from costbrake.dal import Ledger
from costbrake.errors import CostbrakeError, InvalidRequest
from costbrake.gateway import telemetry
from costbrake.gateway.errors import error_body
from costbrake.gateway.routes import completions, info
from costbrake.gateway.service import Gateway, ProviderKeys
from costbrake.pricing import PriceTable

logger = Logger(service="costbrake")
app = APIGatewayRestResolver()
app.include_router(completions)
app.include_router(info)

_gateway: Gateway | None = None


def build_gateway() -> Gateway:
    settings = load_settings()
    return Gateway(settings, Ledger(settings), PriceTable.default(), SystemClock(), ProviderKeys(settings))


def current_gateway() -> Gateway:
    global _gateway
    if _gateway is None:
        _gateway = build_gateway()
    return _gateway


def use_gateway(gateway: Gateway | None) -> None:
    """Install a gateway built elsewhere (local stack, tests); None rebuilds from the environment."""
    global _gateway
    _gateway = gateway


@app.exception_handler(CostbrakeError)
def costbrake_error(error: CostbrakeError) -> Response[str]:
    telemetry.rejected(error, *telemetry.rejection_labels(error, app.current_event, _gateway))
    if error.status >= 500:
        logger.warning("request failed", extra={"status": error.status, "reason": error.message})
    else:
        logger.info("request refused", extra={"status": error.status, "reason": error.message})
    return Response(
        status_code=error.status,
        content_type="application/json",
        body=error_body(app.current_event.path, error),
        headers=error.headers,
    )


@app.not_found
def not_found(_: Exception) -> Response[str]:
    error = InvalidRequest(f"No route {app.current_event.http_method} {app.current_event.path}.")
    error.status = 404
    return Response(404, "application/json", error_body(app.current_event.path, error))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    current_gateway()
    return app.resolve(event, context)
