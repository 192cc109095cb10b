"""A complete call record for benchmarks; each benchmark overrides the fields it varies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costbrake.records import CallRecord

DEFAULTS: dict[str, Any] = {
    "timestamp": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
    "user_id": "user0",
    "feature": "feature0",
    "key_id": "k",
    "provider": "openai",
    "model_requested": "gpt-4o",
    "model": "gpt-4o",
    "status": "ok",
    "http_status": 200,
    "cost_usd": Decimal("0.0125"),
    "reserved_usd": Decimal("0.4"),
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "estimated_input_tokens": 1300,
    "max_output_tokens": 1024,
    "usage_estimated": False,
    "finish_reason": "stop",
    "truncated": False,
    "stream": False,
    "downgraded_from": None,
    "system_prompt_sha256": None,
    "latency_ms": 900,
}


def bench_call(request_id: str, **overrides: Any) -> CallRecord:
    return CallRecord(request_id=request_id, **(DEFAULTS | overrides))
