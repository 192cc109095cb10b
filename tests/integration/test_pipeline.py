"""The event pipeline on the local stack: call records flow through the stream into the rollups."""

from __future__ import annotations

from decimal import Decimal

from costbrake.dal.rollups import RollupStore
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
    store = RollupStore.connect(stack.settings)
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
