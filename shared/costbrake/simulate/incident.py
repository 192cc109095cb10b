"""Replay of DESIGN's $38,000 incident on a simulated clock, through the real gateway, pipeline and ledger.

moto plays DynamoDB and SNS in-process, the mock provider answers over HTTP, the gateway handler serves every
call, the stream poller feeds the aggregator, and the monitor (the anomaly consumer) runs every
``evaluate_minutes`` of simulated time, as the anomaly Lambda does on the stream's batches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import httpx
from moto import mock_aws

from costbrake.clock import ManualClock
from costbrake.config import Settings
from costbrake.dal.reconciliations import ReconciliationStore
from costbrake.formatting import usd
from costbrake.gateway.asgi import build_app
from costbrake.local import moto_fixes
from costbrake.local.app_client import AppClient
from costbrake.local.mock_admin import ANTHROPIC_ADMIN_KEY, OPENAI_ADMIN_KEY, MockAdmin
from costbrake.local.mock_provider import MockProvider
from costbrake.local.streams import StreamPoller, StreamSubscription, streams_client
from costbrake.local.template import create_tables, load_template
from costbrake.operations.budgets import seed_defaults
from costbrake.operations.features import default_feature
from costbrake.operations.keys import create_key
from costbrake.pipeline.aggregator import RollupBatchProcessor, stream_handler
from costbrake.pipeline.alerts import Alert, InMemoryPublisher, LoggingPublisher
from costbrake.pipeline.monitor import Monitor
from costbrake.pipeline.sweeper import sweep
from costbrake.pricing import PriceTable
from costbrake.reconcile.admin_api import AnthropicAdmin, OpenAIAdmin
from costbrake.reconcile.run import run_reconciliation
from costbrake.reconcile.settings import ReconcileSettings
from costbrake.records import UserProfile
from costbrake.reports.model import CostReport, build_report
from costbrake.reports.source import collect_inputs
from costbrake.simulate.traffic import (
    INCIDENT_FEATURE,
    Call,
    TrafficShape,
    incident_calls,
    normal_calls,
    outside_calls,
)
from costbrake.wiring import gateway_from_settings, stores_from_settings

START = datetime(2026, 10, 1, tzinfo=UTC)
RECONCILE_AT = (6, 30)  # the reconciler's daily schedule (UTC), as the template's default
WORDS = "the quarterly report shows revenue growth across regions while operating costs rose faster than planned "


@dataclass(frozen=True)
class IncidentConfig:
    shape: TrafficShape = field(default_factory=TrafficShape)
    global_month_usd: Decimal = Decimal("3000")
    evaluate_minutes: int = 15
    report_days: int | None = None  # build the cost report of the replay's last N days at its end


@dataclass
class IncidentReport:
    normal_calls: int = 0
    incident_calls: int = 0
    incident_served: int = 0
    incident_refused: dict[int, int] = field(default_factory=dict)
    incident_spend_usd: Decimal = Decimal(0)
    counterfactual_spend_usd: Decimal = Decimal(0)
    minutes_to_first_alert: float | None = None
    minutes_to_first_action: float | None = None
    outside_calls: int = 0  # on the provider key directly, never through costbrake
    outside_spend_usd: Decimal = Decimal(0)  # as the provider billed them (its cost report)
    minutes_to_first_unguarded_alert: float | None = None  # after the first outside call
    outside_started_at: datetime | None = None
    false_alerts: list[str] = field(default_factory=list)
    incident_alerts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cost_report: CostReport | None = None  # IncidentConfig.report_days

    def as_dict(self) -> dict[str, Any]:
        return {
            "normal_calls": self.normal_calls,
            "false_alerts": self.false_alerts,
            "incident_calls": self.incident_calls,
            "incident_served": self.incident_served,
            "incident_refused": {str(k): v for k, v in self.incident_refused.items()},
            "minutes_to_first_alert": self.minutes_to_first_alert,
            "minutes_to_first_action": self.minutes_to_first_action,
            "incident_spend_usd": str(self.incident_spend_usd),
            "counterfactual_spend_usd": str(self.counterfactual_spend_usd),
            "incident_alerts": self.incident_alerts,
            "outside_calls": self.outside_calls,
            "outside_spend_usd": str(self.outside_spend_usd),
            "minutes_to_first_unguarded_alert": self.minutes_to_first_unguarded_alert,
        }

    def lines(self) -> list[str]:
        refused = ", ".join(f"{count} x {status}" for status, count in sorted(self.incident_refused.items()))
        return [
            f"normal traffic        : {self.normal_calls} calls, false alerts: {len(self.false_alerts)}",
            f"incident traffic      : {self.incident_calls} calls attempted, {self.incident_served} served"
            + (f", refused: {refused}" if refused else ""),
            f"first alert           : {_minutes(self.minutes_to_first_alert)} after the incident started",
            f"first automatic action: {_minutes(self.minutes_to_first_action)} after the incident started",
            f"incident spend        : {usd(self.incident_spend_usd, places=2)} with costbrake, "
            f"{usd(self.counterfactual_spend_usd, places=2)} unbounded (same calls, all served)",
            f"outside the gateway   : {self.outside_calls} calls on the provider key directly "
            f"({usd(self.outside_spend_usd, places=2)}), first unguarded_spend alert "
            f"{_minutes(self.minutes_to_first_unguarded_alert)} after they started",
            f"replay took           : {self.seconds:.0f} s",
        ]


def _minutes(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f} min"


class _Deployment:
    """One costbrake deployment in this process, on a manual clock."""

    def __init__(self, config: IncidentConfig, clock: ManualClock, provider: MockProvider, admin: MockAdmin) -> None:
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = create_tables(client, load_template(), "sim")
        self.settings = Settings(
            ledger_table=names["LedgerTable"],
            calls_table=names["CallsTable"],
            dynamodb_endpoint_url=None,
            openai_base_url=provider.base_url,
            anthropic_base_url=provider.base_url,
            openai_api_key="mock",
            anthropic_api_key="mock",
            global_month_usd=config.global_month_usd,
            settings_cache_seconds=60,
        )
        self.clock = clock
        self.stores = stores = stores_from_settings(self.settings, sleep=lambda _: None)
        seed_defaults(stores.admin, clock, self.settings, actor="simulation")
        # The team ships "deep analysis" for whole documents: a larger input cap, no budget of its own yet.
        deep = replace(default_feature(self.settings, INCIDENT_FEATURE), max_input_tokens=80_000)
        stores.admin.put_feature(deep, "team", clock.now())
        self.key = create_key(
            stores.admin, clock, user_id=None, tier=None, service=True, feature="chat", any_feature=True
        ).secret
        for user in range(config.shape.power_users):
            stores.admin.put_user(UserProfile(user_id=f"power-{user}", tier="pro"))
        self.gateway = gateway_from_settings(self.settings, clock, stores)
        self.app = AppClient(build_app(self.gateway))
        rollups = stores.rollups
        self.publisher = InMemoryPublisher()
        logged = LoggingPublisher(self.publisher, stores.alerts)  # so the cost report lists the anomalies
        self.monitor = Monitor(stores.admin, stores.alerts, rollups, self.settings, clock, logged)
        aggregator = stream_handler(RollupBatchProcessor(rollups, clock))
        subscription = StreamSubscription(names["CallsTable"], aggregator, batch_size=100)
        self.poller = StreamPoller(streams_client(None), client, [subscription], clock=clock)
        # The daily reconciler, against the provider's admin API (the mock's, fed by what it billed).
        self.provider, self.admin = provider, admin
        self.reconcile_settings = ReconcileSettings(
            openai_admin_key=OPENAI_ADMIN_KEY,
            anthropic_admin_key=ANTHROPIC_ADMIN_KEY,
        )
        self.admin_clients = [
            AnthropicAdmin(ANTHROPIC_ADMIN_KEY, admin.base_url),
            OpenAIAdmin(OPENAI_ADMIN_KEY, admin.base_url),
        ]
        self.reconciliations = ReconciliationStore(stores.tables)
        self.logged = logged

    def call(self, call: Call) -> tuple[int, Decimal]:
        self.clock.set(call.at)
        anthropic = call.model.startswith("claude")
        body: dict[str, Any] = {
            "model": call.model,
            "max_tokens": call.max_tokens,
            "messages": [{"role": "user", "content": _text(call.input_tokens)}],
        }
        if anthropic:
            body["metadata"] = {"user_id": call.user_id}
        else:
            body["user"] = call.user_id
        headers = {"Authorization": f"Bearer {self.key}", "X-Costbrake-Feature": call.feature}
        path = "/v1/messages" if anthropic else "/v1/chat/completions"
        response = self.app.request("POST", path, headers, json.dumps(body).encode())
        self.admin.sync()  # the provider's usage report counts it at this (simulated) time
        cost = Decimal(response.headers.get("x-costbrake-cost-usd", "0"))
        return response.status_code, cost

    def call_outside(self, call: Call) -> Decimal:
        """The provider key used directly: the provider answers and bills; costbrake never hears of it."""
        self.clock.set(call.at)
        body = {"model": call.model, "max_tokens": call.max_tokens, "messages": [_message(call.input_tokens)]}
        headers = {"x-api-key": "mock", "anthropic-version": "2023-06-01"}
        httpx.post(f"{self.provider.base_url}/v1/messages", json=body, headers=headers, timeout=30).raise_for_status()
        self.admin.sync()
        entry = self.admin.entries()[-1]
        return sum(self.admin.cost(entry).values(), Decimal(0))

    def reconcile(self, at: datetime) -> list[Alert]:
        """The daily reconciler's run: yesterday and today against the provider's reports."""
        self.clock.set(at)
        before = len(self.publisher.published)
        run_reconciliation(
            self.stores.calls.calls_between,
            self.reconcile_settings,
            self.admin_clients,
            self.clock,
            PriceTable.default(),
            days=2,
            keep=self.reconciliations.save,
            publisher=self.logged,
            claims=self.stores.alerts,
        )
        return self.publisher.published[before:]

    def tick(self, at: datetime) -> list[Alert]:
        """The pipeline catches up to ``at``: the aggregator drains the stream, the monitor evaluates (as the
        anomaly Lambda does on stream records and on its 5-minute backstop schedule, whichever comes)."""
        self.clock.set(at)
        if at.minute == 0:
            sweep(self.stores.reservations, self.clock)
        self.poller.drain(timeout=60)
        before = len(self.publisher.published)
        self.monitor.evaluate()
        return self.publisher.published[before:]


def _message(tokens: int) -> dict[str, str]:
    return {"role": "user", "content": _text(tokens)}


def _text(tokens: int) -> str:
    return (WORDS * (tokens * 4 // len(WORDS) + 1))[: tokens * 4]


def _ticks(start: datetime, end: datetime, minutes: int) -> Iterator[datetime]:
    at = start + timedelta(minutes=minutes)
    while at <= end:
        yield at
        at += timedelta(minutes=minutes)


@contextmanager
def _deployment(config: IncidentConfig, clock: ManualClock) -> Iterator[_Deployment]:
    with (
        mock_aws(),
        moto_fixes.patched(),
        MockProvider(clock=clock) as provider,
        MockAdmin(provider, clock=clock, watch_seconds=None) as admin,
    ):
        deployment = _Deployment(config, clock, provider, admin)
        with deployment.app:
            yield deployment


def run_incident(config: IncidentConfig, progress: Callable[[int, int], None] | None = None) -> IncidentReport:
    shape = config.shape
    incident_start = START + timedelta(days=shape.days)
    traffic = [*normal_calls(shape, START), *incident_calls(shape, incident_start)]
    traffic += outside_calls(shape, incident_start)
    calls = sorted(traffic, key=lambda c: c.at)
    end = incident_start + timedelta(days=shape.incident_days)
    report = IncidentReport()
    incident_costs: list[Decimal] = []
    started = time.monotonic()
    clock = ManualClock(START)
    with _deployment(config, clock) as deployment:
        pending = iter(calls)
        next_call = next(pending, None)
        done = 0
        for tick in _ticks(START, end, config.evaluate_minutes):
            while next_call is not None and next_call.at < tick:
                if next_call.outside:
                    report.outside_calls += 1
                    report.outside_spend_usd += deployment.call_outside(next_call)
                    report.outside_started_at = report.outside_started_at or next_call.at
                    done += 1
                    next_call = next(pending, None)
                    continue
                status, cost = deployment.call(next_call)
                if next_call.incident:
                    report.incident_calls += 1
                    if status == 200:
                        report.incident_served += 1
                        incident_costs.append(cost)
                    else:
                        report.incident_refused[status] = report.incident_refused.get(status, 0) + 1
                else:
                    report.normal_calls += 1
                done += 1
                if progress:
                    progress(done, len(calls))
                next_call = next(pending, None)
            alerts = deployment.tick(tick)
            if (tick.hour, tick.minute) == RECONCILE_AT:
                alerts += deployment.reconcile(tick)
            for alert in alerts:
                _classify(alert, tick, incident_start, report)
        if config.report_days:
            inputs = collect_inputs(deployment.stores, deployment.settings, clock.now(), config.report_days)
            report.cost_report = build_report(inputs)
    report.incident_spend_usd = sum(incident_costs, Decimal(0))
    if incident_costs:
        mean = report.incident_spend_usd / len(incident_costs)
        report.counterfactual_spend_usd = mean * report.incident_calls
    report.seconds = time.monotonic() - started
    return report


def _classify(alert: Alert, tick: datetime, incident_start: datetime, report: IncidentReport) -> None:
    line = f"{tick:%m-%d %H:%M} {alert.severity} {alert.type} {alert.scope}: {alert.summary}"
    if tick <= incident_start:
        report.false_alerts.append(line)
        return
    report.incident_alerts.append(line)
    minutes = (tick - incident_start).total_seconds() / 60
    if report.minutes_to_first_alert is None:
        report.minutes_to_first_alert = minutes
    if alert.type in ("switch_flip", "user_block") and report.minutes_to_first_action is None:
        report.minutes_to_first_action = minutes
    if alert.type == "unguarded_spend" and report.minutes_to_first_unguarded_alert is None:
        started = report.outside_started_at or incident_start
        report.minutes_to_first_unguarded_alert = (tick - started).total_seconds() / 60
