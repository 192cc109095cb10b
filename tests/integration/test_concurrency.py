"""Real concurrency: threads → local gateway → moto server, with TransactionConflict injected."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
from costbrake.local.faults import ConflictInjector
from costbrake.pricing import PriceTable, worst_case_cost
from costbrake.records import Limits
from costbrake.tokens import estimate_openai_input_tokens
from helpers import calls_of, open_reservations_of, user_windows

CALLS = 50
MAX_TOKENS = 400
PROMPT = [{"role": "user", "content": "Explain DynamoDB transactions to a new engineer."}]


@pytest.fixture
def conflicts(stack):
    injector = ConflictInjector(hold_seconds=0.01).install(stack.stores.tables.client)
    yield injector
    injector.uninstall()


def test_given_budget_for_three_worst_cases_when_fifty_threads_call_then_spend_stays_within_limit(
    stack, make_key, openai_client, user_id, conflicts
):
    body = {"model": "gpt-4o", "messages": PROMPT, "max_tokens": MAX_TOKENS}
    tokens = estimate_openai_input_tokens(body).tokens
    worst = worst_case_cost(PriceTable.default().get("gpt-4o"), tokens, MAX_TOKENS, service_tier="default")
    # Room for three worst cases in flight, and less than the fifty calls' real cost: the budget runs out.
    limit = (worst * 3).quantize(Decimal("0.000001"))
    client = openai_client(make_key(user_id, limits=Limits(hour_usd=limit, rpm=10_000)), max_retries=0)
    start = threading.Barrier(CALLS)

    def call(_: int) -> int:
        start.wait()
        try:
            client.chat.completions.create(**body)
            return 200
        except openai.APIStatusError as error:
            return error.status_code

    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        statuses = list(pool.map(call, range(CALLS)))

    admitted = statuses.count(200)
    # 429: the budget refused; 503: the ledger stayed busy past the bounded retries (fail closed: nothing reserved).
    assert {200, 429} <= set(statuses) <= {200, 429, 503}, statuses
    assert statuses.count(503) <= CALLS // 5, statuses
    assert 1 <= admitted < CALLS
    records = calls_of(stack, user_id)
    assert len(records) == admitted and all(r.status == "ok" for r in records)
    settled = sum(r.cost_usd for r in records)
    assert settled <= limit
    hour = next(w for w in user_windows(stack, user_id) if w["window"] == "hour")
    assert Decimal(hour["spent_usd"]) == settled
    assert Decimal(hour["reserved_usd"]) == 0
    assert not open_reservations_of(stack, user_id)
    assert conflicts.conflicts > 0, "the conflict-retry path was not exercised"
