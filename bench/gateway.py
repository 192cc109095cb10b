"""Gateway benchmark: the local stack's added latency, the app's own CPU, cold import, DynamoDB requests and write
units per call, conflicts under injected contention.

Targets (issue 9): added latency p50 <= 30 ms at concurrency 1 and >= 100 req/s at 16 through `costbrake local`;
<= 2 ms of the gateway's own CPU per call; <= 0.5 s cold import of the app in a Lambda-like environment;
<= 12 DynamoDB write units per call. Ratios and counts are stable; absolute times depend on the machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

import boto3
from costbrake.gateway.asgi import build_app
from costbrake.local.app_client import AppClient
from costbrake.local.faults import ConflictInjector, RequestCounter
from costbrake.local.stack import LocalStack
from costbrake.operations.keys import create_key

import bench.gateway_cpu as gateway_cpu
import bench.lambda_import as lambda_import
import bench.local_latency as local_latency
from bench.write_units import WriteCapture, tables_from_template, write_units

PROMPT = gateway_cpu.PROMPT
WARM_REQUESTS = 60
HOLD_MS = 10  # how long a real transaction keeps its items busy (DynamoDB: tens of milliseconds)
TARGETS = {"added_p50_ms": 30.0, "per_second_16": 100.0, "cpu_ms": 2.0, "import_s": 0.5, "wcu": 12}


def _post(client: AppClient, key: str, body: dict[str, Any]) -> Any:
    return client.post_json("/v1/chat/completions", body, {"authorization": f"Bearer {key}"})


def round_trips_and_write_units(stack: LocalStack) -> dict[str, Any]:
    """DynamoDB requests of a first and of warm calls, and the write units of the first and of a warm call
    (in-process app)."""
    assert stack.stores is not None and stack.gateway is not None
    key = create_key(
        stack.stores.admin, stack.clock, user_id="bench-warm", tier="enterprise", service=False, feature="chat"
    )
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "max_tokens": 200}
    # Paused, the pipeline's requests (on a client of their own) do not queue in moto before the gateway's.
    stack.pause_pipeline()
    counter = RequestCounter().install(stack.stores.tables.client)
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto.url, region_name=stack.settings.aws_region)
    with AppClient(build_app(stack.gateway)) as client:

        def captured_call() -> WriteCapture:
            capture = WriteCapture(dynamodb).install(stack.stores.tables.client)
            try:
                response = _post(client, key.secret, body)
                assert response.status_code == 200, response.text
            finally:
                capture.uninstall()
            return capture

        first = captured_call()
        cold_calls = counter.total
        counter.reset()
        for _ in range(WARM_REQUESTS):
            response = _post(client, key.secret, body)
            assert response.status_code == 200, response.text
        warm = {"per_request": counter.total / WARM_REQUESTS, "calls": dict(counter.calls)}
        capture = captured_call()
    tables = tables_from_template(stack.table_names)
    return {
        "first_call_write_units": write_units(first, tables, dynamodb),
        "dynamodb_requests_first_request": cold_calls,
        "dynamodb_requests_per_warm_request": warm["per_request"],
        "warm_request_calls": warm["calls"],
        "write_units": write_units(capture, tables, dynamodb),
    }


def contention(stack: LocalStack, concurrency: int, calls: int) -> dict[str, float]:
    """``calls`` requests from ``concurrency`` threads, many users, one feature, with conflicts injected."""
    assert stack.stores is not None and stack.gateway is not None
    key = create_key(stack.stores.admin, stack.clock, user_id=None, tier=None, service=True, feature="chat")
    bodies = [
        {"model": "gpt-4o-mini", "messages": PROMPT, "max_tokens": 100, "user": f"u{i % 200}"} for i in range(calls)
    ]
    stats = stack.stores.spend.stats
    before = (stats.transactions, stats.conflicts, stats.retries)
    injector = ConflictInjector(hold_seconds=HOLD_MS / 1000).install(stack.stores.tables.client)
    statuses: list[int] = []
    lock = threading.Lock()
    started = time.perf_counter()
    try:
        # One event loop runs the app; each thread blocks on its own request, as concurrent clients would.
        with AppClient(build_app(stack.gateway)) as client:

            def run(body: dict[str, Any]) -> None:
                status = _post(client, key.secret, body).status_code
                with lock:
                    statuses.append(status)

            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(run, bodies))
    finally:
        injector.uninstall()
    elapsed = time.perf_counter() - started
    unexpected = {status for status in statuses if status not in (200, 503)}
    if unexpected:
        raise AssertionError(f"contention run answered {sorted(unexpected)}")
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
    assert stack.stores is not None
    feature = stack.stores.admin.load_settings().features[name]
    stack.stores.admin.put_feature(replace(feature, shards=shards), "bench", stack.clock.now())


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def run(report: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results["import"] = lambda_import.measure()
    results["cpu"] = gateway_cpu.measure()
    settings = {"global_month_usd": Decimal("1000000")}
    with LocalStack(settings_overrides=settings, mock_only=True, echo=lambda _line: None) as stack:
        results["round_trips"] = round_trips_and_write_units(stack)
    results["latency"] = local_latency.measure()
    # A fresh stack per run: a long-lived local table slows the emulator (not the gateway) down as it grows.
    results["contention"] = []
    for concurrency, calls, global_shards, feature_shards in (
        (16, 240, 8, 1),
        (64, 320, 8, 1),
        (64, 320, 8, 8),
        (64, 320, 64, 64),
    ):
        overrides = settings | {"global_shards": global_shards}
        with LocalStack(settings_overrides=overrides, mock_only=True, echo=lambda _line: None) as stack:
            stack.pause_pipeline()
            _shard_feature(stack, "chat", feature_shards)
            row = contention(stack, concurrency, calls)
            results["contention"].append(row | {"global_shards": global_shards, "feature_shards": feature_shards})
    _report(results, report)
    return results


def _report(results: dict[str, Any], report: Callable[[str], None]) -> None:
    imports, cpu, trips, rows = results["import"], results["cpu"], results["round_trips"], results["latency"]
    report("== gateway ==")
    report(
        "`costbrake local` added latency (gateway app in its own process under uvicorn, moto's server in another,"
        " pipeline running in the parent; fake upstream in a 4th process; client: httpx from a 5th, one keep-alive"
        " connection per thread; added = through the gateway - direct to the upstream, same client):"
    )
    for row in rows:
        direct, through = row["direct"], row["gateway"]
        target = (
            f"target p50 <= {TARGETS['added_p50_ms']:.0f} ms: {_mark(row['added_p50_ms'] <= TARGETS['added_p50_ms'])}"
            if row["concurrency"] == 1
            else f"target >= {TARGETS['per_second_16']:.0f} req/s: "
            + _mark(through["per_second"] >= TARGETS["per_second_16"])
        )
        report(
            f"  concurrency {row['concurrency']:>2}: added p50 {row['added_p50_ms']:6.1f} ms,"
            f" p95 {row['added_p95_ms']:6.1f} ms, {through['per_second']:6.1f} req/s through the gateway"
            f" ({row['requests']} calls; upstream direct"
            f" p50 {direct['p50_ms']:.2f} ms, {direct['per_second']:.0f} req/s)  [{target}]"
        )
    report(
        f"gateway's own CPU per call        : {cpu['own_cpu_ms_per_call']:.2f} ms"
        f" (target <= {TARGETS['cpu_ms']:.0f} ms: {_mark(cpu['own_cpu_ms_per_call'] <= TARGETS['cpu_ms'])});"
        " the app in-process over an in-memory ledger,"
        f" {cpu['calls']} calls, fake upstream's {cpu['upstream_cpu_ms_per_call']:.3f} ms subtracted"
    )
    sdks = ", ".join(imports["sdks_imported"]) or "none"
    report(
        f"cold import, Lambda-like          : {imports['total_s']:.3f} s (target <= {TARGETS['import_s']} s:"
        f" {_mark(imports['total_s'] <= TARGETS['import_s'])}) = import costbrake.gateway.asgi"
        f" {imports['import_s']:.3f} s + create_app() {imports['create_app_s']:.3f} s; layer + runtime boto3 only,"
        f" python -I -S, best of {imports['runs']}; provider SDKs imported: {sdks}"
    )
    top = ", ".join(f"{name} {seconds:.3f}" for name, seconds in imports["top_packages"])
    report(f"  import time by package (s)      : {top}")
    report(f"DynamoDB requests, first request  : {trips['dynamodb_requests_first_request']}")
    report(
        f"DynamoDB requests per warm request: {trips['dynamodb_requests_per_warm_request']:.2f} (target <= 2)"
        f"  {trips['warm_request_calls']}"
    )
    units = trips["write_units"]
    report(
        f"DynamoDB write units per call     : {units.total} WCU (target <= {TARGETS['wcu']}:"
        f" {_mark(units.total <= TARGETS['wcu'])}); transactional writes 2 per KB, index entries 1 per KB:"
    )
    for line in units.lines:
        report(f"    {line.what:<52} {line.item_bytes:>5} B  {line.wcu} WCU")
    first = trips["first_call_write_units"]
    report(
        f"  a user's first call: {first.total} WCU (its item is new: the reserve that expects it is cancelled once,"
        " and the item enters the reservations-by-expiry index); the shared counters (feature, global) are"
        " settled by the aggregator, 2 WCU per counter per stream batch, shared by the batch's calls"
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
