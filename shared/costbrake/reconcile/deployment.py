"""A reconciliation against a deployment's ledger: what `costbrake reconcile` and the reconciler Lambda run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal.reconciliations import ReconciliationStore
from costbrake.pipeline.alerts import LoggingPublisher, SnsPublisher
from costbrake.pricing import PriceTable
from costbrake.reconcile.run import OFF_MESSAGE, ReconcileResult, admin_clients, run_reconciliation
from costbrake.reconcile.settings import ReconcileSettings

if TYPE_CHECKING:
    from costbrake.wiring import Stores


class NoAlertTopic(Exception):
    pass


def reconcile_deployment(
    stores: Stores,
    settings: Settings,
    reconcile_settings: ReconcileSettings,
    clock: Clock,
    *,
    publish: bool,
    days: int | None = None,
    sns: Any = None,
) -> ReconcileResult:
    """Reconcile the deployment's last days. ``publish``: keep each day's status in the ledger (for reports) and
    send new alerts on the alert topic, as the daily Lambda does. Off (and says so) without an admin key.

    Raises AdminKeysUnavailable when the admin-key secret cannot be read, NoAlertTopic when ``publish`` has no
    topic to publish on.
    """
    if not reconcile_settings.configured:
        return ReconcileResult(enabled=False, message=OFF_MESSAGE)
    clients = admin_clients(reconcile_settings, reconcile_settings.admin_keys(settings.aws_region))
    if not clients:
        return ReconcileResult(enabled=False, message="The admin-key secret holds no admin key. " + OFF_MESSAGE)
    prices = PriceTable.default().with_overrides(stores.admin.load_settings().prices.values())
    if not publish:
        return run_reconciliation(stores.calls.calls_between, reconcile_settings, clients, clock, prices, days=days)
    if not settings.alert_topic_arn:
        raise NoAlertTopic("COSTBRAKE_ALERT_TOPIC_ARN is not set: there is no topic to publish alerts on.")
    if sns is None:
        import boto3

        sns = boto3.client("sns", region_name=settings.aws_region)
    store = ReconciliationStore(stores.tables)
    return run_reconciliation(
        stores.calls.calls_between,
        reconcile_settings,
        clients,
        clock,
        prices,
        days=days,
        keep=store.save,
        publisher=LoggingPublisher(SnsPublisher(sns, settings.alert_topic_arn), stores.alerts),
        claims=stores.alerts,
    )
