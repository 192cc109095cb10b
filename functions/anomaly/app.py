"""Anomaly Lambda (calls table stream): rules over the rollups, SNS alerts, switch flips and user blocks."""

from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costbrake.clock import SystemClock
from costbrake.config import load_settings
from costbrake.pipeline.alerts import LoggingPublisher, SnsPublisher
from costbrake.pipeline.monitor import Monitor, on_stream_batch
from costbrake.wiring import stores_from_settings

logger = Logger(service="costbrake-anomaly")
_handle: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _handle
    if _handle is None:
        settings = load_settings()
        if not settings.alert_topic_arn:
            raise RuntimeError("COSTBRAKE_ALERT_TOPIC_ARN is not set")
        stores, clock = stores_from_settings(settings), SystemClock()
        sns = boto3.client("sns", region_name=settings.aws_region)
        publisher = LoggingPublisher(SnsPublisher(sns, settings.alert_topic_arn), stores.alerts)
        monitor = Monitor(stores.admin, stores.alerts, stores.rollups, settings, clock, publisher)
        _handle = on_stream_batch(monitor, stores.alerts, clock)
    return _handle(event, context)
