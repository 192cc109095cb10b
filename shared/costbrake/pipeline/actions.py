"""What the anomaly pipeline does about anomalies: alert once per type/scope/window, flip switches, block users.

``decide`` is pure. ``respond`` claims each anomaly's dedup key, publishes its alert, carries out its actions
through an ``Actuator`` (the lead wires it to the ledger) and announces every action as an alert of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from costbrake.names import InvalidName, canonical_feature
from costbrake.pipeline.alerts import (
    SWITCH_FLIP,
    USER_BLOCK,
    Alert,
    AlertDeduplicator,
    Publisher,
    alert_for,
    alert_id,
    dedup_expiry,
)
from costbrake.pipeline.anomaly import Anomaly, AnomalyType, Severity
from costbrake.records import SwitchState
from costbrake.scopes import Scope, ScopeKind

ACTOR = "costbrake-anomaly"
_RESTRICTIVENESS = {SwitchState.ON: 0, SwitchState.DOWNGRADE: 1, SwitchState.OFF: 2}


@dataclass(frozen=True)
class ActionPolicy:
    downgrade_at_pct: int = 95  # a budget threshold at or above this switches its feature(s) to downgrade
    off_at_pct: Mapping[str, int] = field(default_factory=dict)  # feature -> threshold that switches it off
    downgrade_all_on_global: bool = True  # the global budget's threshold downgrades every feature
    block_on_user_spike: bool = True
    block_minutes: int = 60
    actor: str = ACTOR


@dataclass(frozen=True)
class Controls:
    """The current switches and blocks, read by the caller, so actions never loosen or repeat a restriction."""

    switches: Mapping[str, SwitchState]  # every known feature -> its switch
    blocked_until: Mapping[str, datetime | None] = field(default_factory=dict)  # user id -> block end, if any


@dataclass(frozen=True)
class SwitchFlip:
    feature: str
    state: SwitchState
    previous: SwitchState
    reason: str


@dataclass(frozen=True)
class UserBlock:
    user_id: str
    until: datetime
    reason: str


Action = SwitchFlip | UserBlock


class Actuator(Protocol):
    """Carries out actions and audits them (who = ``actor``, why = the action's reason, when = now)."""

    def flip_switch(self, flip: SwitchFlip, actor: str) -> None: ...

    def block_user(self, block: UserBlock, actor: str) -> None: ...


@dataclass(frozen=True)
class Response:
    alerts: tuple[Alert, ...]  # published, anomaly alerts and action announcements in order
    actions: tuple[Action, ...]
    suppressed: tuple[Anomaly, ...]  # already alerted in their window


def decide(anomaly: Anomaly, policy: ActionPolicy, controls: Controls, now: datetime) -> list[Action]:
    if anomaly.type is AnomalyType.BUDGET_THRESHOLD and anomaly.threshold_pct is not None:
        return _flips(anomaly, anomaly.threshold_pct, policy, controls)
    if anomaly.type is AnomalyType.USER_SPIKE and policy.block_on_user_spike:
        user = Scope.parse(anomaly.scope).name
        until = now + timedelta(minutes=policy.block_minutes)
        blocked_until = controls.blocked_until.get(user)
        if blocked_until is not None and blocked_until >= until:
            return []  # already blocked at least as long (perhaps by an operator): never shorten a block
        return [UserBlock(user, until, f"automatic {policy.block_minutes}-minute block: {anomaly.summary}")]
    return []


def _flips(anomaly: Anomaly, threshold: int, policy: ActionPolicy, controls: Controls) -> list[Action]:
    scope = Scope.parse(anomaly.scope)
    if scope.kind is ScopeKind.GLOBAL:
        named = sorted(controls.switches) if policy.downgrade_all_on_global else []
    elif scope.kind is ScopeKind.FEATURE:
        named = [scope.name]
    else:
        return []
    # A flip applies to the canonical name: the one the gateway charges whatever spelling a caller sends. A scope
    # with no canonical name (recorded before names were checked) is flipped only if it is configured as it is.
    features = list(dict.fromkeys(_canonical(name, controls) for name in named))
    flips: list[Action] = []
    for feature in features:
        if feature is None:
            continue
        off_at = policy.off_at_pct.get(feature) if scope.kind is not ScopeKind.GLOBAL else None
        if off_at is not None and threshold >= off_at:
            target = SwitchState.OFF
        elif threshold >= policy.downgrade_at_pct:
            target = SwitchState.DOWNGRADE
        else:
            continue
        current = controls.switches.get(feature, SwitchState.ON)
        if _RESTRICTIVENESS[target] > _RESTRICTIVENESS[current]:
            flips.append(SwitchFlip(feature, target, current, f"automatic {target.value}: {anomaly.summary}"))
    return flips


def _canonical(name: str, controls: Controls) -> str | None:
    try:
        return canonical_feature(name)
    except InvalidName:
        return name if name in controls.switches else None


def respond(
    anomalies: Iterable[Anomaly],
    *,
    now: datetime,
    policy: ActionPolicy,
    controls: Controls,
    dedup: AlertDeduplicator,
    publisher: Publisher,
    actuator: Actuator,
) -> Response:
    alerts: list[Alert] = []
    actions: list[Action] = []
    suppressed: list[Anomaly] = []
    switches = dict(controls.switches)  # flips earlier in this batch count for later anomalies
    for anomaly in anomalies:
        key = anomaly.dedup_key
        if not dedup.first_time(key, dedup_expiry(anomaly.window)):
            suppressed.append(anomaly)
            continue
        try:
            alert = alert_for(anomaly, now)
            publisher.publish(alert)
            alerts.append(alert)
            for action in decide(anomaly, policy, Controls(switches, controls.blocked_until), now):
                announcement = _carry_out(action, anomaly, alert, actuator, policy.actor, now)
                if isinstance(action, SwitchFlip):
                    switches[action.feature] = action.state
                publisher.publish(announcement)
                actions.append(action)
                alerts.append(announcement)
        except Exception:
            dedup.forget(key)  # let the retried batch alert and act again rather than lose a switch flip
            raise
    return Response(tuple(alerts), tuple(actions), tuple(suppressed))


def _carry_out(action: Action, anomaly: Anomaly, cause: Alert, actuator: Actuator, actor: str, now: datetime) -> Alert:
    audit = {"actor": actor, "reason": action.reason, "at": now.isoformat(), "cause_alert_id": cause.alert_id}
    if isinstance(action, SwitchFlip):
        actuator.flip_switch(action, actor)
        return Alert(
            alert_id=alert_id(f"{anomaly.dedup_key}#{SWITCH_FLIP}#{action.feature}"),
            type=SWITCH_FLIP,
            severity=Severity.CRITICAL if action.state is SwitchState.OFF else Severity.WARNING,
            scope=Scope.feature(action.feature).counter_key,
            window=anomaly.window,
            generated_at=now,
            current=anomaly.current,
            limit=anomaly.limit,
            utilization=anomaly.utilization,
            summary=f"feature {action.feature} switched {action.previous.value} -> {action.state.value} by {actor}",
            top_users=anomaly.top_users,
            top_features=anomaly.top_features,
            details={**audit, "previous_state": action.previous.value, "state": action.state.value},
        )
    actuator.block_user(action, actor)
    return Alert(
        alert_id=alert_id(f"{anomaly.dedup_key}#{USER_BLOCK}"),
        type=USER_BLOCK,
        severity=Severity.WARNING,
        scope=Scope.user(action.user_id).counter_key,
        window=anomaly.window,
        generated_at=now,
        current=anomaly.current,
        limit=anomaly.limit,
        utilization=anomaly.utilization,
        summary=f"user {action.user_id} blocked until {action.until:%Y-%m-%d %H:%M} UTC by {actor}",
        top_users=anomaly.top_users,
        top_features=anomaly.top_features,
        details={**audit, "blocked_until": action.until.isoformat()},
    )
