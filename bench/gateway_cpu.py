"""The gateway's own CPU per call: the real app (``build_app``) over an in-memory ledger double and a fake upstream.

No DynamoDB, no socket: requests are handed to the ASGI app directly (scope, receive, send) inside one event
loop, so the CPU counted (``time.process_time()``: every thread of this process, the worker threads that run
admit and settle included) is the app's own — routing, authentication, bounds, reservation, the upstream call
through httpx, settlement, logs and metrics — plus the fake upstream's, which is measured and subtracted.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import anyio
import httpx
from costbrake.clock import SystemClock
from costbrake.config import Settings
from costbrake.dal.retry import TransactionStats
from costbrake.dal.spend import ReservationInfo
from costbrake.gateway.asgi import build_app
from costbrake.gateway.provider_keys import ProviderKeys
from costbrake.gateway.service import Gateway
from costbrake.operations.budgets import seed_defaults
from costbrake.operations.keys import create_key
from costbrake.operations.users import set_user_limits
from costbrake.pricing import ModelPrice, PriceTable
from costbrake.records import (
    ApiKey,
    AuditEntry,
    CallRecord,
    Charge,
    CounterRef,
    CounterState,
    Feature,
    GlobalBudget,
    Limits,
    RateCharge,
    SettingsSnapshot,
    Tier,
    UserProfile,
)

from bench.fake_upstream import ANSWER

PROMPT = [{"role": "user", "content": "Summarise this quarter's cloud bill in three bullet points."}]
BODY = {"model": "gpt-4o-mini", "messages": PROMPT, "max_tokens": 200}


@dataclass
class InMemoryLedger:
    """The store methods the gateway (and seeding a key) calls, on dictionaries: no I/O, no conditions
    beyond the limits a reservation checks."""

    keys: dict[str, ApiKey] = field(default_factory=dict)
    users: dict[str, UserProfile] = field(default_factory=dict)
    tiers: dict[str, Tier] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    global_budget: GlobalBudget | None = None
    counters: dict[CounterRef, CounterState] = field(default_factory=dict)
    reservations: dict[str, Sequence[Charge]] = field(default_factory=dict)
    calls: dict[str, CallRecord] = field(default_factory=dict)
    stats: TransactionStats = field(default_factory=TransactionStats)

    # seeding
    def put_tier(self, tier: Tier, actor: str, now: datetime) -> None:
        self.tiers[tier.name] = tier

    def put_feature(self, feature: Feature, actor: str, now: datetime) -> None:
        self.features[feature.name] = feature

    def put_global(self, budget: GlobalBudget, actor: str, now: datetime) -> None:
        self.global_budget = budget

    def put_key(self, key_hash: str, key: ApiKey, created_at: datetime) -> None:
        self.keys[key_hash] = key

    def get_user(self, user_id: str) -> UserProfile | None:
        return self.users.get(user_id)

    def put_user(self, user: UserProfile, audit: AuditEntry | None = None) -> None:
        self.users[user.user_id] = user

    # the hot path
    def get_key(self, key_hash: str) -> ApiKey | None:
        return self.keys.get(key_hash)

    def load_settings(self) -> SettingsSnapshot:
        prices: dict[str, ModelPrice] = {}
        return SettingsSnapshot(dict(self.tiers), dict(self.features), self.global_budget, prices)

    def get_user_and_counters(
        self, user_id: str, refs: Iterable[CounterRef]
    ) -> tuple[UserProfile | None, dict[CounterRef, CounterState]]:
        return self.users.get(user_id), self.get_counters(refs)

    def get_counters(self, refs: Iterable[CounterRef]) -> dict[CounterRef, CounterState]:
        return {ref: self.counters.get(ref, CounterState(Decimal(0), Decimal(0), 0)) for ref in refs}

    def reserve(self, info: ReservationInfo, charges: Sequence[Charge], rate: RateCharge | None, attempt: int) -> None:
        self.stats.transactions += 1
        for charge in charges:
            state = self.counters.get(charge.counter, CounterState(Decimal(0), Decimal(0), 0))
            self.counters[charge.counter] = replace(state, committed=state.committed + charge.amount)
        self.reservations[info.request_id] = charges

    def settle(self, request_id: str, charges: Sequence[Charge], actual: Decimal, record: CallRecord) -> None:
        self.stats.transactions += 1
        self.reservations.pop(request_id, None)
        for charge in charges:
            state = self.counters[charge.counter]
            self.counters[charge.counter] = CounterState(
                state.committed + actual - charge.amount, state.spent + actual, state.calls + 1
            )
        self.calls[request_id] = record

    def get_call(self, request_id: str) -> CallRecord | None:
        return self.calls.get(request_id)


class _Answer(httpx.AsyncByteStream):
    """The canned answer as a stream (a Response built from bytes counts as read, and the relay streams)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield ANSWER


class _Upstream:
    """The fake provider behind httpx.MockTransport, timing its own CPU (subtracted from the gateway's)."""

    def __init__(self) -> None:
        self.cpu_seconds = 0.0
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        started = time.process_time()
        request.read()
        headers = {"content-type": "application/json", "content-length": str(len(ANSWER))}
        response = httpx.Response(200, headers=headers, stream=_Answer())
        self.cpu_seconds += time.process_time() - started
        self.calls += 1
        return response


async def _call(app: Any, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One HTTP request handed to the ASGI app as a server would (uvicorn builds the same scope)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    finished = anyio.Event()
    delivered = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                finished.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _gateway(settings: Settings) -> tuple[Gateway, str]:
    ledger = InMemoryLedger()
    clock = SystemClock()
    seed_defaults(ledger, clock, settings)
    key = create_key(ledger, clock, user_id="bench-cpu", tier="enterprise", service=False, feature="chat")
    set_user_limits(ledger, clock, "bench-cpu", Limits(rpm=10_000_000), "bench")
    gateway = Gateway(settings, ledger, ledger, PriceTable.default(), clock, ProviderKeys(settings))
    return gateway, key.secret


def measure(calls: int = 1000, warmup: int = 100, profile: bool = False) -> dict[str, Any]:
    settings = Settings(
        ledger_table="bench-ledger",
        calls_table="bench-calls",
        openai_api_key="sk-bench",
        anthropic_api_key="sk-ant-bench",
        global_month_usd=Decimal(10_000_000),
    )
    gateway, secret = _gateway(settings)
    upstream = _Upstream()
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    app = build_app(gateway, client)
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
    body = json.dumps(BODY).encode()
    result: dict[str, Any] = {}

    async def run() -> None:
        for _ in range(warmup):
            status, answer = await _call(app, "/v1/chat/completions", headers, body)
            assert status == 200, answer
        upstream.cpu_seconds, upstream.calls = 0.0, 0
        profiler = cProfile.Profile() if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for _ in range(calls):
            status, answer = await _call(app, "/v1/chat/completions", headers, body)
            if status != 200:
                raise AssertionError(f"the gateway answered {status}: {answer[:300]!r}")
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        result.update(
            calls=calls,
            cpu_ms_per_call=cpu / calls * 1000,
            upstream_cpu_ms_per_call=upstream.cpu_seconds / calls * 1000,
            own_cpu_ms_per_call=(cpu - upstream.cpu_seconds) / calls * 1000,
            wall_ms_per_call=wall / calls * 1000,
        )
        if profiler:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(45)
            result["profile"] = text.getvalue()

    # The gateway's log lines and EMF metrics are formatted and written as in Lambda, to /dev/null here.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        anyio.run(run)
    return result


if __name__ == "__main__":
    import sys

    figures = measure(profile="--profile" in sys.argv)
    print(figures.pop("profile", ""))
    print(figures)
