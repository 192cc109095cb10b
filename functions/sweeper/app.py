"""Sweeper Lambda (EventBridge schedule): releases reservations of calls whose gateway Lambda died."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costbrake.clock import SystemClock
from costbrake.config import load_settings
from costbrake.dal.reservations import ReservationStore
from costbrake.pipeline.sweeper import sweep
from costbrake.wiring import stores_from_settings

logger = Logger(service="costbrake-sweeper")
_reservations: ReservationStore | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _reservations
    if _reservations is None:
        _reservations = stores_from_settings(load_settings()).reservations
    result = sweep(_reservations, SystemClock())
    logger.info(
        "sweep done",
        extra={
            "released": result.released,
            "settled_meanwhile": result.settled_meanwhile,
            "settled_for_the_gateway": result.settled_for_the_gateway,
        },
    )
    return {"released": result.released, "released_usd": str(result.released_usd)}
