"""The latency bench's client: POSTs one body ``--requests`` times from ``--concurrency`` threads, prints JSON.

Runs as a process of its own (``python -m bench.load``), so the client's work never competes with the server
under test for an interpreter. Each thread has its own keep-alive connection (httpx), as an SDK client has.
Prints ``{"latencies": [seconds...], "elapsed": seconds, "statuses": {...}}`` for the measured requests
(after ``--warmup`` requests per thread, not counted).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help="JSON body")
    parser.add_argument("--header", action="append", default=[], help="name: value")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5, help="per thread")
    args = parser.parse_args()
    headers = {"content-type": "application/json"}
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    body = args.body.encode()
    per_thread = [args.requests // args.concurrency] * args.concurrency
    for index in range(args.requests % args.concurrency):
        per_thread[index] += 1
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    ready = threading.Barrier(args.concurrency + 1)

    def worker(count: int) -> None:
        with httpx.Client(timeout=30.0) as client:
            for _ in range(args.warmup):
                client.post(args.url, content=body, headers=headers)
            ready.wait()
            mine: list[float] = []
            codes: list[int] = []
            for _ in range(count):
                started = time.perf_counter()
                response = client.post(args.url, content=body, headers=headers)
                mine.append(time.perf_counter() - started)
                codes.append(response.status_code)
        with lock:
            latencies.extend(mine)
            statuses.update(codes)

    threads = [threading.Thread(target=worker, args=(count,)) for count in per_thread]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({"latencies": latencies, "elapsed": elapsed, "statuses": dict(statuses)}))


if __name__ == "__main__":
    main()
