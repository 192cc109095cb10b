"""Response cache benchmark (issue 12): what a cache lookup adds to a call on a miss and on a hit, and the semantic
search at the per-feature bound.

Through the app in-process (``AppClient``) on the local stack (moto, mock provider), the same calls on a feature
without cache, on an exact-cache feature that misses every time (unique prompts) and on one that hits every time:
DynamoDB requests per call (counted on the shared botocore client) and the wall and process CPU time per call.
A miss should add one GetItem and one PutItem; a hit replaces the reservation and settlement transactions with one
GetItem and one small transaction (the rate-limit count and the call record). Then the semantic search: one Query
of ``cache_semantic_entries`` (200) vectors of ``cache_embedding_dimensions`` (512) and the comparison alone.
Absolute times depend on the machine (moto is far slower than DynamoDB); request counts are exact.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from costbrake.dal.cache import ResponseCache
from costbrake.gateway.asgi import build_app
from costbrake.local.app_client import AppClient
from costbrake.local.faults import RequestCounter
from costbrake.local.stack import LocalStack
from costbrake.operations.keys import create_key
from costbrake.records import CacheMode, Feature
from costbrake.reducers.semantic import SemanticEntry, best_match, decode_vector, encode_vector
from costbrake.wiring import gateway_from_settings

CALLS = 40
SEARCHES = 30


def _timed_calls(client: AppClient, key: str, prompts: list[str], counter: RequestCounter) -> dict[str, Any]:
    wall, cpu = [], []
    counter.reset()
    for prompt in prompts:
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 50,
            "temperature": 0,
        }
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.post_json("/v1/chat/completions", body, {"authorization": f"Bearer {key}"})
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, response.text
    return {
        "p50_ms": statistics.median(wall),
        "cpu_ms": statistics.median(cpu),
        "dynamodb_requests": counter.total / len(prompts),
        "by_operation": {name: count / len(prompts) for name, count in sorted(counter.calls.items())},
        "cache": response.headers.get("x-costbrake-cache", "-"),
    }


def lookups(stack: LocalStack) -> dict[str, Any]:
    """Calls without cache, exact misses and exact hits through the in-process app."""
    assert stack.stores is not None and stack.settings is not None
    settings = stack.settings.model_copy(update={"cache_table": stack.table_names["ResponseCacheTable"]})
    gateway = gateway_from_settings(settings, stack.clock, stack.stores)
    now = stack.clock.now()
    for name, mode in (("bench-nocache", CacheMode.OFF), ("bench-exact", CacheMode.EXACT)):
        stack.stores.admin.put_feature(Feature(name=name, cache=mode), "bench", now)
    keys = {
        name: create_key(
            stack.stores.admin, stack.clock, user_id=f"{name}-user", tier="enterprise", service=False, feature=name
        )
        for name in ("bench-nocache", "bench-exact")
    }
    stack.pause_pipeline()  # the pipeline shares the client: count the gateway's requests only
    counter = RequestCounter().install(stack.stores.tables.client)
    results: dict[str, Any] = {}
    with AppClient(build_app(gateway)) as client:
        warmup = [f"warm-up {i}" for i in range(5)]
        _timed_calls(client, keys["bench-nocache"].secret, warmup, counter)
        _timed_calls(client, keys["bench-exact"].secret, warmup, counter)
        unique = [f"question number {i} about budgets" for i in range(CALLS)]
        results["no_cache"] = _timed_calls(client, keys["bench-nocache"].secret, unique, counter)
        results["miss"] = _timed_calls(client, keys["bench-exact"].secret, [f"miss {p}" for p in unique], counter)
        results["hit"] = _timed_calls(client, keys["bench-exact"].secret, ["the same question"] * CALLS, counter)
    return results


def semantic_search(stack: LocalStack) -> dict[str, Any]:
    """One scope filled to the bound, searched through DynamoDB (Query + decode + compare) and in memory alone."""
    assert stack.stores is not None and stack.settings is not None
    settings = stack.settings.model_copy(update={"cache_table": stack.table_names["ResponseCacheTable"]})
    cache = ResponseCache(stack.stores.tables, settings.cache_semantic_entries)
    bound, dimensions = settings.cache_semantic_entries, settings.cache_embedding_dimensions
    rng = random.Random(12)
    now = int(stack.clock.now().timestamp())

    def vector() -> list[float]:
        return [rng.gauss(0, 1) for _ in range(dimensions)]

    for slot in range(bound):
        cache.add_semantic(
            "bench", "scope", vector=vector(), answer_key=f"k{slot}", slot=slot, now=now, ttl_seconds=3600
        )
    entries = [SemanticEntry(decode_vector(encode_vector(vector())), f"k{i}", now, i) for i in range(bound)]
    threshold = Decimal("0.95")
    in_memory, through_table = [], []
    for _ in range(SEARCHES):
        query = vector()
        started = time.perf_counter()
        best_match(query, entries, threshold)
        in_memory.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        found = cache.semantic_search("bench", "scope", query, threshold, now)
        through_table.append((time.perf_counter() - started) * 1000)
    assert found.compared == bound, found
    return {
        "entries": bound,
        "dimensions": dimensions,
        "compare_p50_ms": statistics.median(in_memory),
        "query_and_compare_p50_ms": statistics.median(through_table),
        "item_bytes": len(encode_vector(vector())),
    }


def run(report: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    overrides = {"global_month_usd": Decimal("1000000")}
    with LocalStack(settings_overrides=overrides, mock_only=True, echo=lambda _line: None) as stack:
        results["lookups"] = lookups(stack)
        results["semantic"] = semantic_search(stack)
    _report(results, report)
    return results


def _report(results: dict[str, Any], report: Callable[[str], None]) -> None:
    report(f"Response cache (in-process app, moto; per call, median of {CALLS} calls)")
    base = results["lookups"]["no_cache"]
    for name in ("no_cache", "miss", "hit"):
        row = results["lookups"][name]
        ops = ", ".join(f"{op} {count:g}" for op, count in row["by_operation"].items())
        report(
            f"  {name:<9} wall {row['p50_ms']:7.2f} ms ({row['p50_ms'] - base['p50_ms']:+.2f})  "
            f"cpu {row['cpu_ms']:6.2f} ms ({row['cpu_ms'] - base['cpu_ms']:+.2f})  "
            f"DynamoDB {row['dynamodb_requests']:g} ({row['dynamodb_requests'] - base['dynamodb_requests']:+g}): {ops}"
        )
    semantic = results["semantic"]
    report(
        f"Semantic search at the bound ({semantic['entries']} entries x {semantic['dimensions']} dims, "
        f"{semantic['item_bytes']} B a vector): compare {semantic['compare_p50_ms']:.2f} ms, "
        f"Query + decode + compare {semantic['query_and_compare_p50_ms']:.2f} ms (p50 of {SEARCHES})"
    )


if __name__ == "__main__":
    run()
