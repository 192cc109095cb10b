"""The anomaly consumer: reads rollups and budgets, runs the rules, alerts and acts (switch flips, user blocks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.budget_view import monthly_budgets
from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal.admin import AdminStore
from costbrake.dal.alert_log import AlertLog
from costbrake.dal.rollups import RollupStore
from costbrake.operations.features import switch_feature
from costbrake.operations.users import block_user
from costbrake.pipeline.actions import ActionPolicy, Controls, Response, SwitchFlip, UserBlock, respond
from costbrake.pipeline.alerts import Publisher
from costbrake.pipeline.anomaly import AnomalyConfig, AnomalyType, SpendView, detect
from costbrake.records import SettingsSnapshot, UserProfile
from costbrake.scopes import FEATURE_PREFIX, GLOBAL, USER_PREFIX, Scope
from costbrake.windows import Window, span

# How many of the current hour's biggest spenders the user-spike rule looks at.
USERS_PER_HOUR = 50
# Stream records arrive within seconds to minutes; an hour this far back is complete.
FINAL_AFTER = timedelta(hours=2)


class LedgerDeduplicator:
    """Alert dedup by a conditional put in the ledger (one alert per type/scope/window across containers)."""

    def __init__(self, alerts: AlertLog, clock: Clock) -> None:
        self._alerts = alerts
        self._clock = clock

    def first_time(self, key: str, expires_at: int) -> bool:
        return self._alerts.first_time(key, expires_at, self._clock.now())

    def forget(self, key: str) -> None:
        self._alerts.forget(key)


@dataclass(frozen=True)
class LedgerActuator:
    """Carries out switch flips (audited by the ledger) and user blocks."""

    admin: AdminStore
    clock: Clock
    settings: Settings

    def flip_switch(self, flip: SwitchFlip, actor: str) -> None:
        switch_feature(self.admin, self.clock, self.settings, flip.feature, flip.state, flip.reason, actor, create=True)

    def block_user(self, block: UserBlock, actor: str) -> None:
        # The operator's rule; its alert is not sent: the pipeline announces its own actions.
        block_user(self.admin, self.clock, block.user_id, block.until, block.reason, actor, create=True)


class Monitor:
    def __init__(
        self,
        admin: AdminStore,
        alerts: AlertLog,
        rollups: RollupStore,
        settings: Settings,
        clock: Clock,
        publisher: Publisher,
        config: AnomalyConfig | None = None,
        policy: ActionPolicy | None = None,
    ) -> None:
        self._admin = admin
        self._alerts = alerts
        self._rollups = rollups
        self._settings = settings
        self._clock = clock
        self._publisher = publisher
        self._config = config or anomaly_config(settings)
        self._policy = policy or action_policy(settings)
        self._final: dict[str, dict[datetime, Decimal]] = {}  # scope -> costs of hours that no longer change
        self._final_through: dict[str, datetime] = {}  # scope -> hours before this are in ``_final`` (or zero)

    def _hourly_costs(self, scope: str, current_hour: datetime) -> dict[datetime, Decimal]:
        """The scope's cost per hour over the baseline, reading only hours this container has not read for good.

        Hours older than ``FINAL_AFTER`` no longer change, so a warm container keeps them: an evaluation then
        reads a handful of rollups instead of the 14-day baseline.
        """
        first = current_hour - timedelta(hours=self._config.baseline_hours)
        final_before = current_hour - FINAL_AFTER
        known = self._final.setdefault(scope, {})
        read_through = self._final_through.get(scope, first)
        wanted = []
        at = max(first, read_through)
        while at <= current_hour:
            wanted.append(at)
            at += timedelta(hours=1)
        keys = _hour_keys(wanted)
        fresh = {keys[key]: total.cost_usd for key, total in self._rollups.rollups_for(scope, keys).items()}
        known.update({start: cost for start, cost in fresh.items() if start < final_before})
        self._final_through[scope] = max(read_through, final_before)
        for start in [start for start in known if start < first]:
            del known[start]
        return {**known, **{start: cost for start, cost in fresh.items() if start >= final_before}}

    def evaluate(self) -> Response:
        now = self._clock.now()
        snapshot = self._admin.load_settings()
        view = self.spend_view(now, snapshot)
        anomalies = detect(view, self._config)
        spiking = {Scope.parse(a.scope).name for a in anomalies if a.type is AnomalyType.USER_SPIKE}
        controls = Controls(
            switches={name: feature.state for name, feature in snapshot.features.items()},
            blocked_until={user: _blocked_until(self._admin.get_user(user)) for user in spiking},
        )
        return respond(
            anomalies,
            now=now,
            policy=self._policy,
            controls=controls,
            dedup=LedgerDeduplicator(self._alerts, self._clock),
            publisher=self._publisher,
            actuator=LedgerActuator(self._admin, self._clock, self._settings),
        )

    def spend_view(self, now: datetime, snapshot: SettingsSnapshot) -> SpendView:
        hour = span(Window.HOUR, now)
        active = [name for name, _ in self._rollups.top_in_window(hour.key, FEATURE_PREFIX, limit=20)]
        scopes = [GLOBAL.counter_key, *(Scope.feature(name).counter_key for name in [*snapshot.features, *active])]
        hourly_cost = {scope: self._hourly_costs(scope, hour.start) for scope in dict.fromkeys(scopes)}
        budgets = monthly_budgets(self._admin, self._settings, now, snapshot)
        return SpendView(
            now=now,
            hourly_cost=hourly_cost,
            user_hour_cost=dict(self._rollups.top_in_window(hour.key, USER_PREFIX, limit=USERS_PER_HOUR)),
            month_to_date={b.scope: b.spent_usd for b in budgets},
            monthly_budgets={b.scope: b.month_usd for b in budgets},
        )


def anomaly_config(settings: Settings) -> AnomalyConfig:
    """The deployment's tunable thresholds over DESIGN's defaults."""
    return replace(
        AnomalyConfig(),
        zscore_threshold=settings.anomaly_zscore,
        user_share_of_daily_budget=settings.anomaly_user_share_of_daily_budget,
        growth_alert_pct=settings.anomaly_growth_alert_pct,
    )


def action_policy(settings: Settings) -> ActionPolicy:
    return ActionPolicy(
        downgrade_at_pct=settings.downgrade_at_pct,
        off_at_pct=dict(settings.switch_off_at_pct),
        block_on_user_spike=settings.block_on_user_spike,
        block_minutes=settings.block_minutes,
    )


def _hour_keys(starts: list[datetime]) -> dict[str, datetime]:
    return {span(Window.HOUR, start).key: start for start in starts}


def _blocked_until(profile: UserProfile | None) -> datetime | None:
    if profile is None or profile.blocked_until is None:
        return None
    return profile.blocked_until.astimezone(UTC)


def on_stream_batch(
    monitor: Monitor, alerts: AlertLog, clock: Clock
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The anomaly Lambda's handler: a stream batch means spend moved; evaluate at most once a minute.

    The records themselves are not needed (the rules read the rollups); the minute marker keeps concurrent
    shards and containers from evaluating the same minute twice.
    """

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        now = clock.now()
        minute = span(Window.MINUTE, now)
        key = f"evaluation#{minute.key}"
        if alerts.first_time(key, minute.expires_at, now):
            try:
                monitor.evaluate()
            except Exception:
                alerts.forget(key)  # let the retried batch evaluate this minute again
                raise
        return {"batchItemFailures": []}

    return handle
