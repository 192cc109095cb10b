"""Reporter Lambda (weekly EventBridge schedule): the cost report of the last 7 days, published on the alert topic."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costbrake.clock import SystemClock
from costbrake.config import load_settings
from costbrake.pipeline.reporter import publish_weekly_report
from costbrake.wiring import Stores, stores_from_settings

logger = Logger(service="costbrake-reporter")
_stores: Stores | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _stores
    settings = load_settings()
    if not settings.alert_topic_arn:
        raise RuntimeError("COSTBRAKE_ALERT_TOPIC_ARN is not set")
    if _stores is None:
        _stores = stores_from_settings(settings)
    sns = boto3.client("sns", region_name=settings.aws_region)
    published = publish_weekly_report(_stores, settings, SystemClock(), sns, settings.alert_topic_arn)
    result = {
        "message_id": published.message_id,
        "subject": published.subject,
        "calls": published.calls,
        "cost_usd": str(published.cost_usd),
        "truncated": published.truncated,
    }
    logger.info("cost report published", extra=result)
    return result
