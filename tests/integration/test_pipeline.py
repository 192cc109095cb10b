"""The event pipeline on the local stack: call records flow through the stream into the rollups."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

from costbrake.dal.rollups import RollupStore
from costbrake.dal.tables import Tables
from costbrake.operations.features import default_feature
from costbrake.records import Limits, SwitchState
from costbrake.windows import Window, span
from helpers import calls_of

PROMPT = [{"role": "user", "content": "What does a rollup do?"}]


def test_given_sdk_calls_when_the_stream_is_drained_then_user_rollups_equal_the_call_records(
    stack, make_key, openai_client, anthropic_client, user_id
):
    key = make_key(user_id)
    for _ in range(3):
        openai_client(key).chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=30)
    anthropic_client(key).messages.create(model="claude-haiku-4-5", max_tokens=30, messages=PROMPT)

    stack.stream_poller.drain()

    records = calls_of(stack, user_id)
    store = RollupStore.of(Tables.connect(stack.settings), stack.settings)
    windows = {span(Window.HOUR, r.timestamp).key for r in records} | {
        span(Window.DAY, r.timestamp).key for r in records
    }
    totals = store.rollups_for(f"user#{user_id}", windows)
    day = next(t for w, t in totals.items() if w.startswith("d#"))
    assert day.calls == len(records) == 4
    assert day.cost_usd == sum((r.cost_usd for r in records), Decimal(0))
    assert day.output_tokens == sum(r.output_tokens for r in records)
    assert sum(t.calls for w, t in totals.items() if w.startswith("h#")) == 4
    assert not stack.dead_letters


def test_given_feature_at_95_percent_of_budget_when_monitor_runs_then_it_downgrades_and_the_gateway_follows(
    stack, make_key, anthropic_client, user_id
):
    feature = f"report-{uuid.uuid4().hex[:6]}"
    client = anthropic_client(make_key(user_id, feature=feature, limits=Limits(hour_usd=Decimal(5), rpm=100)))
    budgeted = replace(default_feature(stack.settings, feature), month_usd=Decimal(1), shards=1)
    stack.stores.admin.put_feature(budgeted, "pytest", stack.clock.now())
    stack.gateway.forget_cached()  # the gateway reads the change now, not after its cache time
    for _ in range(8):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=PROMPT)
    spent = sum((r.cost_usd for r in calls_of(stack, user_id)), Decimal(0))
    # The budget turns out to be smaller than what was spent so far would need: 96 % used.
    budget = (spent / Decimal("0.96")).quantize(Decimal("0.000001"))
    stack.stores.admin.put_feature(replace(budgeted, month_usd=budget), "pytest", stack.clock.now())
    stack.stream_poller.drain()

    response = stack.monitor.evaluate()
    stack.gateway.forget_cached()
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=20, messages=PROMPT)

    flips = [a for a in response.actions if getattr(a, "feature", None) == feature]
    assert [(f.previous, f.state) for f in flips] == [(SwitchState.ON, SwitchState.DOWNGRADE)]
    alerts = {(a.type, a.scope) for a in stack.alerts.published}
    assert ("budget_threshold", f"feature#{feature}") in alerts and ("switch_flip", f"feature#{feature}") in alerts
    assert raw.headers["x-costbrake-model"] == "claude-haiku-4-5"
    assert raw.headers["x-costbrake-downgraded-from"] == "claude-sonnet-4-5"
    history = stack.stores.admin.switch_history(feature)
    assert history[-1]["to"] == "downgrade" and history[-1]["actor"] == "costbrake-anomaly"
