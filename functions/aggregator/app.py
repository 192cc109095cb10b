"""Aggregator Lambda (calls table stream): hourly and daily rollups, each call counted once."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from costbrake.clock import SystemClock
from costbrake.config import load_settings
from costbrake.pipeline.aggregator import RollupBatchProcessor, stream_handler
from costbrake.wiring import stores_from_settings

logger = Logger(service="costbrake-aggregator")
_handle: Callable[[dict[str, Any], Any], PartialItemFailureResponse] | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _handle
    if _handle is None:
        _handle = stream_handler(RollupBatchProcessor(stores_from_settings(load_settings()).rollups, SystemClock()))
    return _handle(event, context)
