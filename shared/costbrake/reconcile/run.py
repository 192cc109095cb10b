"""One reconciliation run, as the CLI and the daily Lambda do it: read both sides, compare, keep, alert."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from costbrake.clock import Clock
from costbrake.pipeline.alerts import Alert, Publisher
from costbrake.pricing import PriceTable
from costbrake.providers.base import ANTHROPIC, OPENAI
from costbrake.reconcile.admin_api import AdminApiError, AdminClient, AnthropicAdmin, OpenAIAdmin
from costbrake.reconcile.alerts import Claims, alerts_for, publish_new
from costbrake.reconcile.compare import day_bounds, days_back, ledger_usage, reconcile
from costbrake.reconcile.figures import DayReconciliation
from costbrake.reconcile.settings import ReconcileSettings
from costbrake.records import CallRecord

OFF_MESSAGE = (
    "Reconciliation is off: no provider admin key is configured (deploy with AdminKeySecretName, or set "
    "COSTBRAKE_OPENAI_ADMIN_KEY / COSTBRAKE_ANTHROPIC_ADMIN_KEY; see docs/reconciliation.md)."
)
PROVIDER_ORDER = (ANTHROPIC, OPENAI)


@dataclass
class ReconcileResult:
    enabled: bool
    message: str = ""
    checked_at: datetime | None = None
    days: list[DayReconciliation] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # providers without an admin key
    errors: dict[str, str] = field(default_factory=dict)  # provider -> why its admin API gave nothing
    alerts: list[Alert] = field(default_factory=list)  # alerts published by this run (new ones only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "message": self.message,
            "checked_at": self.checked_at,
            "unchecked_providers": self.unchecked,
            "errors": self.errors,
            "days": [day.as_dict() for day in self.days],
            "alerts": [alert.to_message() for alert in self.alerts],
        }


def admin_clients(settings: ReconcileSettings, keys: dict[str, str]) -> list[AdminClient]:
    clients: list[AdminClient] = []
    if keys.get(ANTHROPIC):
        clients.append(
            AnthropicAdmin(
                keys[ANTHROPIC],
                settings.anthropic_admin_base_url,
                workspace_ids=settings.anthropic_workspace_ids,
                timeout=settings.admin_timeout_seconds,
            )
        )
    if keys.get(OPENAI):
        clients.append(
            OpenAIAdmin(
                keys[OPENAI],
                settings.openai_admin_base_url,
                project_ids=settings.openai_project_ids,
                timeout=settings.admin_timeout_seconds,
            )
        )
    return clients


def run_reconciliation(
    calls_between: Callable[[datetime, datetime], Iterable[CallRecord]],
    settings: ReconcileSettings,
    clients: Sequence[AdminClient],
    clock: Clock,
    prices: PriceTable,
    *,
    days: int | None = None,
    keep: Callable[[Sequence[DayReconciliation]], None] | None = None,
    publisher: Publisher | None = None,
    claims: Claims | None = None,
) -> ReconcileResult:
    """Reconcile the last ``days`` UTC days (today included) for every provider with a client.

    ``keep`` stores the days (for reports); ``publisher`` with ``claims`` sends the alerts not sent before. A
    provider whose admin API fails is reported in ``errors``; the others are still reconciled.
    """
    if not clients:
        return ReconcileResult(enabled=False, message=OFF_MESSAGE)
    now = clock.now()
    look_back = days or settings.reconcile_days
    wanted = days_back(now, look_back)
    start, end = day_bounds(wanted[0])[0], day_bounds(wanted[-1])[1]
    ledger = ledger_usage(calls_between(start, now))
    policy = settings.policy()
    result = ReconcileResult(enabled=True, checked_at=now)
    checked = {client.provider for client in clients}
    result.unchecked = [p for p in PROVIDER_ORDER if p not in checked]
    for client in sorted(clients, key=lambda c: PROVIDER_ORDER.index(c.provider)):
        try:
            report = client.report(start, end)
        except AdminApiError as error:
            result.errors[client.provider] = error.message
            continue
        gateway_keys = settings.gateway_key_ids(client.provider)
        result.days += reconcile(report, ledger, wanted, now, policy, prices, gateway_keys)
    result.days.sort(key=lambda d: (d.day, d.provider))
    if keep is not None and result.days:
        keep(result.days)
    if publisher is not None and claims is not None:
        result.alerts = publish_new(alerts_for(result.days, now, look_back), claims, publisher, now)
    return result
