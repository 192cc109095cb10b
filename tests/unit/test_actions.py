"""Anomalies turn into one alert per type/scope/window, switch flips and user blocks, each audited and announced."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from costbrake.operations.features import switch_feature
from costbrake.pipeline.actions import (
    ACTOR,
    ActionPolicy,
    Controls,
    SwitchFlip,
    UserBlock,
    decide,
    respond,
)
from costbrake.pipeline.alerts import InMemoryDeduplicator, InMemoryPublisher
from costbrake.pipeline.anomaly import Anomaly, AnomalyType, Severity
from costbrake.records import SwitchState
from costbrake.windows import Window, span

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
ON, DOWNGRADE, OFF = SwitchState.ON, SwitchState.DOWNGRADE, SwitchState.OFF
ALL_ON = Controls(switches={"chat": ON, "code-generation": ON, "data-analysis": ON})
POLICY = ActionPolicy()


def threshold(scope: str, pct: int) -> Anomaly:
    return Anomaly(
        type=AnomalyType.BUDGET_THRESHOLD,
        severity=Severity.CRITICAL if pct >= 95 else Severity.WARNING,
        scope=scope,
        window=span(Window.MONTH, NOW),
        current=Decimal(pct * 40),
        limit=Decimal(4000),
        utilization=Decimal(pct) / 100,
        summary=f"{scope} spent {pct}% of its budget",
        threshold_pct=pct,
    )


def user_spike(user: str = "mallory", when: datetime = NOW) -> Anomaly:
    return Anomaly(
        type=AnomalyType.USER_SPIKE,
        severity=Severity.CRITICAL,
        scope=f"user#{user}",
        window=span(Window.HOUR, when),
        current=Decimal(23),
        limit=Decimal("3.33"),
        utilization=Decimal(23) / Decimal("3.33"),
        summary=f"user {user} spent $23.00 in {span(Window.HOUR, when).key}",
    )


class RecordingActuator:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Any, str]] = []
        self.fail = fail

    def flip_switch(self, flip: SwitchFlip, actor: str) -> None:
        if self.fail:
            raise RuntimeError("ledger unavailable")
        self.calls.append((flip, actor))

    def block_user(self, block: UserBlock, actor: str) -> None:
        if self.fail:
            raise RuntimeError("ledger unavailable")
        self.calls.append((block, actor))


def run(anomalies: list[Anomaly], dedup: InMemoryDeduplicator, actuator: Any, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "now": NOW,
        "policy": POLICY,
        "controls": ALL_ON,
        "dedup": dedup,
        "publisher": InMemoryPublisher(),
        "actuator": actuator,
    }
    arguments |= overrides
    return respond(anomalies, **arguments)


@pytest.mark.parametrize(("pct", "state"), [(80, None), (90, None), (95, DOWNGRADE), (100, DOWNGRADE)])
def test_given_feature_budget_threshold_when_decided_then_downgrade_from_95_percent(pct, state):
    actions = decide(threshold("feature#chat", pct), POLICY, ALL_ON, NOW)

    assert [(a.feature, a.state, a.previous) for a in actions] == ([] if state is None else [("chat", state, ON)])


@pytest.mark.parametrize(("pct", "state"), [(95, DOWNGRADE), (100, OFF)])
def test_given_feature_configured_to_go_off_when_its_budget_is_exhausted_then_switched_off(pct, state):
    policy = replace(POLICY, off_at_pct={"data-analysis": 100})

    [flip] = decide(threshold("feature#data-analysis", pct), policy, ALL_ON, NOW)

    reason = f"automatic {state.value}: feature#data-analysis spent {pct}% of its budget"
    assert flip == SwitchFlip("data-analysis", state, ON, reason)


@pytest.mark.parametrize("current", [DOWNGRADE, OFF])
def test_given_feature_already_as_restricted_when_threshold_decided_then_never_flipped_back_or_repeated(current):
    controls = Controls(switches={"chat": current})

    assert decide(threshold("feature#chat", 95), POLICY, controls, NOW) == []


def test_given_global_budget_at_95_percent_when_decided_then_every_feature_still_on_is_downgraded():
    controls = Controls(switches={"chat": ON, "admin": OFF, "data-analysis": DOWNGRADE, "code-generation": ON})

    actions = decide(threshold("global", 96), POLICY, controls, NOW)

    assert [(a.feature, a.state) for a in actions] == [("chat", DOWNGRADE), ("code-generation", DOWNGRADE)]
    assert decide(threshold("global", 96), replace(POLICY, downgrade_all_on_global=False), controls, NOW) == []


def test_given_user_spike_when_decided_then_blocked_for_the_configured_minutes():
    [block] = decide(user_spike(), replace(POLICY, block_minutes=30), ALL_ON, NOW)

    assert (block.user_id, block.until) == ("mallory", NOW + timedelta(minutes=30))
    assert "mallory spent $23.00" in block.reason
    assert decide(user_spike(), replace(POLICY, block_on_user_spike=False), ALL_ON, NOW) == []


@pytest.mark.parametrize(("blocked_for", "blocks"), [(timedelta(days=7), False), (timedelta(minutes=5), True)])
def test_given_user_already_blocked_when_spike_decided_then_block_only_lengthens(blocked_for, blocks):
    controls = replace(ALL_ON, blocked_until={"mallory": NOW + blocked_for})

    assert bool(decide(user_spike(), POLICY, controls, NOW)) is blocks


def test_given_feature_at_95_percent_when_responded_then_alert_then_audited_flip_announced():
    actuator = RecordingActuator()
    publisher = InMemoryPublisher()

    response = run([threshold("feature#chat", 95)], InMemoryDeduplicator(), actuator, publisher=publisher)

    flip = SwitchFlip("chat", DOWNGRADE, ON, "automatic downgrade: feature#chat spent 95% of its budget")
    assert actuator.calls == [(flip, "costbrake-anomaly")]
    assert [a.type for a in publisher.published] == ["budget_threshold", "switch_flip"]
    cause, announcement = publisher.published
    assert announcement.scope == "feature#chat" and announcement.feature == "chat"
    assert announcement.details["actor"] == ACTOR
    assert announcement.details["at"] == NOW.isoformat()
    assert announcement.details["reason"].startswith("automatic downgrade: ")
    assert (announcement.details["previous_state"], announcement.details["state"]) == ("on", "downgrade")
    assert announcement.details["cause_alert_id"] == cause.alert_id
    assert response.actions == (actuator.calls[0][0],)


def test_given_same_anomaly_again_in_its_window_when_responded_then_suppressed_and_next_window_alerts():
    dedup = InMemoryDeduplicator()
    actuator = RecordingActuator()
    first = run([user_spike()], dedup, actuator)

    again = run([user_spike(when=NOW + timedelta(minutes=20))], dedup, actuator)
    next_hour = run([user_spike(when=NOW + timedelta(hours=1))], dedup, actuator)

    assert [a.type for a in first.alerts] == ["user_spike", "user_block"]
    assert (again.alerts, again.actions, len(again.suppressed)) == ((), (), 1)
    assert [a.window.key for a in next_hour.alerts] == ["h#2026-11-24T11", "h#2026-11-24T11"]
    assert len(actuator.calls) == 2  # one block per spike window


def test_given_global_and_feature_thresholds_in_one_batch_when_responded_then_each_feature_flipped_once():
    actuator = RecordingActuator()

    response = run([threshold("global", 95), threshold("feature#chat", 95)], InMemoryDeduplicator(), actuator)

    flipped = [action.feature for action in response.actions if isinstance(action, SwitchFlip)]
    assert sorted(flipped) == ["chat", "code-generation", "data-analysis"]
    assert [a.type for a in response.alerts].count("budget_threshold") == 2


def test_given_actuator_failing_when_responded_then_claim_released_so_the_retry_alerts_and_acts():
    dedup = InMemoryDeduplicator()

    with pytest.raises(RuntimeError):
        run([threshold("feature#chat", 95)], dedup, RecordingActuator(fail=True))
    retried = run([threshold("feature#chat", 95)], dedup, RecordingActuator())

    assert [a.type for a in retried.alerts] == ["budget_threshold", "switch_flip"]


def test_given_ledger_backed_actuator_when_flip_carried_out_then_switch_history_records_who_why_when(
    stores, clock, settings
):
    class LedgerActuator:  # how the anomaly Lambda wires actions to the operator operations
        def flip_switch(self, flip: SwitchFlip, actor: str) -> None:
            switch_feature(stores.admin, clock, settings, flip.feature, flip.state, flip.reason, actor, create=True)

        def block_user(self, block: UserBlock, actor: str) -> None:
            raise AssertionError("no user block expected")

    run([threshold("feature#chat", 95)], InMemoryDeduplicator(), LedgerActuator(), now=clock.now())

    assert stores.admin.load_settings().features["chat"].state is DOWNGRADE
    [entry] = stores.admin.switch_history("chat")
    assert (entry["actor"], entry["from"], entry["to"]) == (ACTOR, "on", "downgrade")
    assert entry["reason"] == "automatic downgrade: feature#chat spent 95% of its budget"
    assert entry["at"] == clock.now().isoformat()
