"""The anomaly consumer: reads rollups and budgets, runs the rules, alerts and acts (switch flips, user blocks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.dal.rollups import RollupStore
from costbrake.operations import set_switch
from costbrake.pipeline.actions import ActionPolicy, Controls, Response, SwitchFlip, UserBlock, respond
from costbrake.pipeline.alerts import Publisher
from costbrake.pipeline.anomaly import AnomalyConfig, AnomalyType, SpendView, detect
from costbrake.policy import monthly_budgets
from costbrake.records import UserProfile
from costbrake.windows import Window, span

# How many of the current hour's biggest spenders the user-spike rule looks at.
USERS_PER_HOUR = 50


class LedgerDeduplicator:
    """Alert dedup by a conditional put in the ledger (one alert per type/scope/window across containers)."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    def first_time(self, key: str, expires_at: int) -> bool:
        return self._ledger.first_time(key, expires_at, self._clock.now())

    def forget(self, key: str) -> None:
        self._ledger.forget(key)


@dataclass(frozen=True)
class LedgerActuator:
    """Carries out switch flips (audited by the ledger) and user blocks."""

    ledger: Ledger
    clock: Clock
    settings: Settings

    def flip_switch(self, flip: SwitchFlip, actor: str) -> None:
        set_switch(self.ledger, self.clock, self.settings, flip.feature, flip.state, flip.reason, actor)

    def block_user(self, block: UserBlock, actor: str) -> None:
        profile = self.ledger.get_user(block.user_id) or UserProfile(user_id=block.user_id, tier="free")
        self.ledger.put_user(replace(profile, blocked_until=block.until, blocked_reason=f"{block.reason} ({actor})"))


class Monitor:
    def __init__(
        self,
        ledger: Ledger,
        rollups: RollupStore,
        settings: Settings,
        clock: Clock,
        publisher: Publisher,
        config: AnomalyConfig | None = None,
        policy: ActionPolicy | None = None,
    ) -> None:
        self._ledger = ledger
        self._rollups = rollups
        self._settings = settings
        self._clock = clock
        self._publisher = publisher
        self._config = config or AnomalyConfig()
        self._policy = policy or ActionPolicy()

    def evaluate(self) -> Response:
        now = self._clock.now()
        snapshot = self._ledger.load_settings()
        view = self.spend_view(now, [f"feature#{name}" for name in snapshot.features])
        anomalies = detect(view, self._config)
        spiking = {a.scope.removeprefix("user#") for a in anomalies if a.type is AnomalyType.USER_SPIKE}
        controls = Controls(
            switches={name: feature.state for name, feature in snapshot.features.items()},
            blocked_until={user: _blocked_until(self._ledger.get_user(user)) for user in spiking},
        )
        return respond(
            anomalies,
            now=now,
            policy=self._policy,
            controls=controls,
            dedup=LedgerDeduplicator(self._ledger, self._clock),
            publisher=self._publisher,
            actuator=LedgerActuator(self._ledger, self._clock, self._settings),
        )

    def spend_view(self, now: datetime, feature_scopes: list[str]) -> SpendView:
        hour = span(Window.HOUR, now)
        hours = [hour.start - timedelta(hours=back) for back in range(self._config.baseline_hours, -1, -1)]
        keys = {span(Window.HOUR, start).key: start for start in hours}
        active = [f"feature#{name}" for name, _ in self._rollups.top_in_window(hour.key, "feature#", limit=20)]
        hourly_cost: dict[str, dict[datetime, Decimal]] = {}
        for scope in dict.fromkeys(["global", *feature_scopes, *active]):
            totals = self._rollups.rollups_for(scope, keys)
            hourly_cost[scope] = {keys[key]: total.cost_usd for key, total in totals.items()}
        budgets = monthly_budgets(self._ledger, self._settings, now)
        return SpendView(
            now=now,
            hourly_cost=hourly_cost,
            user_hour_cost=dict(self._rollups.top_in_window(hour.key, "user#", limit=USERS_PER_HOUR)),
            month_to_date={b.scope: b.spent_usd for b in budgets},
            monthly_budgets={b.scope: b.month_usd for b in budgets},
        )


def _blocked_until(profile: UserProfile | None) -> datetime | None:
    if profile is None or profile.blocked_until is None:
        return None
    return profile.blocked_until.astimezone(UTC)


def on_stream_batch(monitor: Monitor, ledger: Ledger, clock: Clock) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The anomaly Lambda's handler: a stream batch means spend moved; evaluate at most once a minute.

    The records themselves are not needed (the rules read the rollups); the minute marker keeps concurrent
    shards and containers from evaluating the same minute twice.
    """

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        now = clock.now()
        minute = span(Window.MINUTE, now)
        key = f"evaluation#{minute.key}"
        if ledger.first_time(key, minute.expires_at, now):
            try:
                monitor.evaluate()
            except Exception:
                ledger.forget(key)  # let the retried batch evaluate this minute again
                raise
        return {"batchItemFailures": []}

    return handle
