"""Reconciler Lambda (daily EventBridge schedule): the ledger against the providers' usage and cost reports.

Off until an admin key is configured (it logs so and returns). Keeps each day's status for reports, publishes
new `reconciliation` / `unguarded_spend` alerts, prints one EMF record per day and provider. Admin keys are read
from their own secret and never logged.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costbrake.clock import SystemClock
from costbrake.config import load_settings
from costbrake.reconcile.alerts import emf_lines
from costbrake.reconcile.deployment import reconcile_deployment
from costbrake.reconcile.settings import ReconcileSettings
from costbrake.wiring import Stores, stores_from_settings

logger = Logger(service="costbrake-reconciler")
_stores: Stores | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _stores
    settings = load_settings()
    reconcile_settings = ReconcileSettings()
    if not reconcile_settings.configured:
        result = {"enabled": False, "message": "reconciliation is off: no admin-key secret configured"}
        logger.info("reconciliation is off", extra=result)
        return result
    if _stores is None:
        _stores = stores_from_settings(settings)
    outcome = reconcile_deployment(_stores, settings, reconcile_settings, SystemClock(), publish=True)
    for line in emf_lines(outcome.days):
        print(line)
    summary = {
        "enabled": outcome.enabled,
        "message": outcome.message,
        "days": len(outcome.days),
        "statuses": {f"{d.day}/{d.provider}": d.status.value for d in outcome.days},
        "alerts": [f"{a.type} {a.scope} {a.window.key}" for a in outcome.alerts],
        "errors": outcome.errors,
    }
    logger.info("reconciled", extra=summary)
    if outcome.errors:
        # After alerting what could be compared: the failure still raises the function's errors alarm.
        raise RuntimeError(f"admin API errors: {outcome.errors}")
    return summary
