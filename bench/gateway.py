"""Gateway benchmark: DynamoDB round trips, conflicts under injected contention, cold import, handler overhead.

Runs the real local stack (moto's HTTP server, the handler, the mock provider over HTTP). Ratios and counts are
stable; absolute times depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

from costbrake.gateway import api, service
from costbrake.local.faults import ConflictInjector, RequestCounter
from costbrake.local.lambda_gateway import LambdaContext, proxy_event
from costbrake.local.stack import LocalStack
from costbrake.operations import create_key

PROMPT = [{"role": "user", "content": "Summarise this quarter's cloud bill in three bullet points."}]
WARM_REQUESTS = 60
HOLD_MS = 10  # how long a real transaction keeps its items busy (DynamoDB: tens of milliseconds)


def _event(key: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return proxy_event("POST", "/v1/chat/completions", headers, json.dumps(body).encode(), "api")


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    return api.lambda_handler(event, LambdaContext("costbrake-gateway", "bench", 40, time.monotonic()))


class _UpstreamTimer:
    """Wraps the provider adapters so the benchmark can subtract time spent waiting on the provider."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._original = service.adapter_for

    def __enter__(self) -> _UpstreamTimer:
        timer = self

        def timed_adapter(provider: str) -> Any:
            adapter = timer._original(provider)

            class Timed:
                def call(self, *args: Any, **kwargs: Any) -> Any:
                    started = time.perf_counter()
                    try:
                        return adapter.call(*args, **kwargs)
                    finally:
                        timer.seconds.append(time.perf_counter() - started)

            return Timed()

        service.adapter_for = timed_adapter
        return self

    def __exit__(self, *_: object) -> None:
        service.adapter_for = self._original


def round_trips_and_overhead(stack: LocalStack) -> dict[str, Any]:
    assert stack.ledger is not None
    key = create_key(stack.ledger, stack.clock, user_id="bench-warm", tier="enterprise", service=False, feature="chat")
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "max_tokens": 200}
    # The pipeline shares the ledger's client: without it, every request counted is the gateway's.
    stack.pause_pipeline()
    counter = RequestCounter().install(stack.ledger.client)
    cold = _invoke(_event(key.secret, body))
    assert cold["statusCode"] == 200, cold["body"]
    cold_calls = counter.total
    counter.reset()
    handler_seconds: list[float] = []
    with _UpstreamTimer() as upstream:
        for _ in range(WARM_REQUESTS):
            started = time.perf_counter()
            response = _invoke(_event(key.secret, body))
            handler_seconds.append(time.perf_counter() - started)
            assert response["statusCode"] == 200, response["body"]
    overhead = [total - provider for total, provider in zip(handler_seconds, upstream.seconds, strict=True)]
    return {
        "dynamodb_requests_first_request": cold_calls,
        "dynamodb_requests_per_warm_request": counter.total / WARM_REQUESTS,
        "warm_request_calls": dict(counter.calls),
        "median_handler_overhead_ms": statistics.median(overhead) * 1000,
        "median_upstream_ms": statistics.median(upstream.seconds) * 1000,
    }


def contention(stack: LocalStack, concurrency: int, calls: int) -> dict[str, float]:
    """``calls`` requests from ``concurrency`` threads, many users, one feature, with conflicts injected."""
    assert stack.ledger is not None
    key = create_key(stack.ledger, stack.clock, user_id=None, tier=None, service=True, feature="chat")
    events = [
        _event(key.secret, {"model": "gpt-4o-mini", "messages": PROMPT, "max_tokens": 100, "user": f"u{i % 200}"})
        for i in range(calls)
    ]
    stats = stack.ledger.stats
    before = (stats.transactions, stats.conflicts, stats.retries)
    injector = ConflictInjector(hold_seconds=HOLD_MS / 1000).install(stack.ledger.client)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(event: dict[str, Any]) -> None:
        status = _invoke(event)["statusCode"]
        with lock:
            statuses.append(status)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(run, events))
    finally:
        injector.uninstall()
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "calls": calls,
        "ok": statuses.count(200),
        "ledger_unavailable_503": statuses.count(503),
        "injected_conflicts_per_call": injector.conflicts / calls,
        "conflicts_seen_per_call": (stats.conflicts - before[1]) / calls,
        "retries_per_call": (stats.retries - before[2]) / calls,
        "transactions_per_call": (stats.transactions - before[0]) / calls,
        "calls_per_second_here": calls / elapsed,
    }


def _shard_feature(stack: LocalStack, name: str, shards: int) -> None:
    assert stack.ledger is not None
    feature = stack.ledger.load_settings().features[name]
    stack.ledger.put_feature(replace(feature, shards=shards), "bench", stack.clock.now())


def _import_seconds(statement: str, runs: int = 3) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(runs)]
    return min(samples)


def cold_imports() -> dict[str, float]:
    return {
        "gateway_module_import_s": _import_seconds("import costbrake.gateway.api"),
        "openai_plus_anthropic_import_s": _import_seconds("import openai, anthropic"),
        "provider_sdks_loaded_by_gateway": float(
            subprocess.check_output(
                [
                    sys.executable,
                    "-c",
                    "import sys, costbrake.gateway.api; "
                    "print(int('openai' in sys.modules or 'anthropic' in sys.modules))",
                ],
                text=True,
            )
        ),
    }


def run(report: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {"imports": cold_imports()}
    settings = {"global_month_usd": Decimal("1000000")}
    with LocalStack(settings_overrides=settings, mock_only=True) as stack:
        results["round_trips"] = round_trips_and_overhead(stack)
    # A fresh stack per run: moto deep-copies a whole table on every transaction, so a long-lived local
    # table slows the emulator (not the gateway) down as it grows.
    results["contention"] = []
    for concurrency, calls, global_shards, feature_shards in (
        (16, 240, 8, 1),
        (64, 320, 8, 1),
        (64, 320, 8, 8),
        (64, 320, 64, 64),
    ):
        with LocalStack(settings_overrides=settings | {"global_shards": global_shards}, mock_only=True) as stack:
            _shard_feature(stack, "chat", feature_shards)
            row = contention(stack, concurrency, calls)
            results["contention"].append(row | {"global_shards": global_shards, "feature_shards": feature_shards})
    imports, trips = results["imports"], results["round_trips"]
    report("== gateway ==")
    report(f"cold import costbrake.gateway.api : {imports['gateway_module_import_s']:.3f} s (target <= 0.5 s)")
    report(
        f"cold import openai + anthropic    : {imports['openai_plus_anthropic_import_s']:.3f} s (kept off that path:"
        f" provider SDKs loaded by the gateway = {int(imports['provider_sdks_loaded_by_gateway'])})"
    )
    report(f"DynamoDB requests, first request  : {trips['dynamodb_requests_first_request']}")
    report(
        f"DynamoDB requests per warm request: {trips['dynamodb_requests_per_warm_request']:.2f} (target <= 2)"
        f"  {trips['warm_request_calls']}"
    )
    report(
        f"median handler overhead           : {trips['median_handler_overhead_ms']:.1f} ms per request, "
        f"excluding the provider (median upstream {trips['median_upstream_ms']:.1f} ms)"
    )
    report(
        f"conflicts injected (a transaction touching an item another holds is cancelled; holds of {HOLD_MS} ms);"
        " calls spread over 200 users, one feature:"
    )
    for row in results["contention"]:
        report(
            f"  concurrency {row['concurrency']:>3}, shards global {row['global_shards']:>2} / feature "
            f"{row['feature_shards']:>2}: "
            f"{row['calls']} calls, {row['ok']} ok, "
            f"{row['ledger_unavailable_503']} x 503, conflicts/call {row['conflicts_seen_per_call']:.2f}, "
            f"retries/call {row['retries_per_call']:.2f}, transactions/call {row['transactions_per_call']:.2f}"
        )
    return results
