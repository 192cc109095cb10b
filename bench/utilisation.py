"""Budget utilisation under concurrency: a busy budget is not a spent budget (issue 8).

120 gpt-4o calls with max_tokens 1000 from 40 threads against a $0.05 user budget, through the official OpenAI
SDK, the local gateway and moto's server; the mock provider answers about 40 tokens. Each call's worst case is
about $0.01, so only a handful fit in flight at once: the rest must wait or be clamped, not be told the budget
is spent while it is not.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import openai
from costbrake.budget_view import budget_status
from costbrake.local.stack import LocalStack
from costbrake.operations.keys import create_key
from costbrake.operations.users import set_user_limits
from costbrake.records import Limits

CALLS = 120
THREADS = 40
MAX_TOKENS = 1000
BUDGET = Decimal("0.05")
REPLY_TOKENS = 40
USER = "bench-utilisation"


def run(report: Any = print) -> dict[str, Any]:
    with LocalStack(settings_overrides={"global_month_usd": Decimal("1000")}, mock_only=True) as stack:
        assert stack.stores is not None and stack.settings is not None and stack.mock_provider is not None
        stack.mock_provider.reply_tokens = REPLY_TOKENS
        key = create_key(stack.stores.admin, stack.clock, user_id=USER, tier="free", service=False, feature="chat")
        limits = Limits(hour_usd=BUDGET, day_usd=BUDGET, month_usd=BUDGET, rpm=10_000)
        set_user_limits(stack.stores.admin, stack.clock, USER, limits, "bench")
        client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key.secret)

        def call(index: int) -> str:
            try:
                client.chat.completions.create(
                    model="gpt-4o",
                    max_tokens=MAX_TOKENS,
                    messages=[{"role": "user", "content": f"Question {index}: what does a budget enforcer do?"}],
                )
                return "ok"
            except openai.RateLimitError as error:
                body = error.body if isinstance(error.body, dict) else {}
                return f"429 {body.get('code') or body.get('type') or '?'}"

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            outcomes = Counter(pool.map(call, range(CALLS)))
        status = budget_status(stack.stores.admin, stack.settings, stack.clock.now(), USER, "chat", None)
    hour = next(w for w in status["windows"] if w["scope"] == f"user {USER}" and w["window"] == "hour")
    spent, reserved = Decimal(hour["spent_usd"]), Decimal(hour["reserved_usd"])
    results = {
        "outcomes": dict(outcomes),
        "spent_usd": spent,
        "utilisation": spent / BUDGET,
        "overspend_usd": max(Decimal(0), spent - BUDGET),
        "left_reserved_usd": reserved,
    }
    report("== budget utilisation (busy is not spent) ==")
    report(
        f"{CALLS} gpt-4o calls, max_tokens {MAX_TOKENS}, {THREADS} threads, ${BUDGET} budget, ~{REPLY_TOKENS}-token "
        "answers, official OpenAI SDK (its default retries)"
    )
    report(f"outcomes        : {dict(sorted(outcomes.items()))}")
    report(f"spent           : ${spent} = {results['utilisation']:.1%} of the budget (target >= 90%)")
    report(f"overspend       : ${results['overspend_usd']} (target 0); left reserved: ${reserved}")
    return results
