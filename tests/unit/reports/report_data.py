"""Hand-built report data on a fixed ``now``: budgets, alerts and a busy week of calls."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.budget_view import ScopeBudget
from costbrake.records import CallRecord

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # the month has 6 days 13.5 hours left

# feature -> (model, cost of one unit); a call costs 1..9 units
FEATURES = {
    "chat": ("gpt-4o-mini", "0.0004"),
    "code-generation": ("gpt-4o", "0.012"),
    "deep-analysis": ("gpt-4o", "0.35"),
}


def budget(scope: str, month: str, spent: str) -> ScopeBudget:
    return ScopeBudget(scope, Decimal(month), Decimal(spent), Decimal(spent))


def busy_week_calls(
    make_call: Callable[..., CallRecord], features: dict[str, tuple[str, str]] = FEATURES
) -> list[CallRecord]:
    """A week of traffic with a daily rhythm: 40 users on the cheap features, one power user on an expensive one
    whose use grows through the week (the first feature listed is the busiest, the third grows)."""
    rng = random.Random(7)
    calls = []
    for hour in range(7 * 24):
        stamp = NOW - timedelta(days=7) + timedelta(hours=hour, minutes=5)
        busy = 3 if 8 <= stamp.hour < 18 else 1
        for n, (feature, (model, unit)) in enumerate(features.items()):
            per_hour = busy * (6 if n == 0 else 2 if n == 1 else hour // 40)
            for _ in range(per_hour):
                truncated = rng.random() < 0.03
                calls.append(
                    make_call(
                        timestamp=stamp,
                        feature=feature,
                        model=model,
                        user_id=f"u{rng.randint(1, 40):02d}" if n < 2 else "power-user",
                        cost_usd=Decimal(unit) * rng.randint(1, 9),
                        input_tokens=rng.randint(200, 4000),
                        output_tokens=rng.randint(50, 1200),
                        cache_read_tokens=rng.choice([0, 0, 0, 512]),
                        truncated=truncated,
                        finish_reason="length" if truncated else "stop",
                    )
                )
    return calls


def zscore_alert(scope: str = "feature#deep-analysis") -> dict[str, Any]:
    return {
        "type": "zscore",
        "severity": "critical",
        "scope": scope,
        "window": "h#2026-11-24T08",
        "generated_at": "2026-11-24T08:30:00+00:00",
        "current_usd": "40.25",
        "limit_usd": "12.5",
        "summary": f"{scope} cost $40.25 in h#2026-11-24T08: 9.1 sigma above its 336-hour mean",
    }


HOSTILE_FEATURE = "<script>alert('feature')</script>"
HOSTILE_USER = '"><img src=x onerror=alert(1)>\x1b[31m'  # markup for the HTML, an ANSI escape for the terminal
