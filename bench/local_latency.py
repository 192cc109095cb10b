"""Added latency of `costbrake local`: the stack as `make dev` runs it, in front of a fake upstream.

Processes: the fake upstream (bench.fake_upstream, answers in well under 1 ms), the gateway app (uvicorn
--factory costbrake.gateway.asgi:create_app, its own process, as `costbrake local` runs it), moto's server (its
own process), the pipeline (stream poller, schedules) in this process, and the client (bench.load, a process of
its own: httpx, one keep-alive connection per thread). The same client measures the upstream directly, then
through the gateway; the added latency is the difference of the two at the same percentile and concurrency.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from decimal import Decimal
from typing import Any

from costbrake.local.stack import LocalStack
from costbrake.operations.keys import create_key
from costbrake.operations.users import set_user_limits
from costbrake.records import Limits

from bench.gateway_cpu import BODY

RUNS = ((1, 300), (16, 800))  # (concurrency, measured requests)


class FakeUpstream:
    def __enter__(self) -> FakeUpstream:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_upstream"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"the fake upstream did not start: {self.url!r}")
        return self

    def __exit__(self, *_: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def load(url: str, concurrency: int, requests: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.load", url, "--body", json.dumps(BODY)]
    command += ["--concurrency", str(concurrency), "--requests", str(requests), "--warmup", "5"]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"the load client failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout)
    if set(measured["statuses"]) != {"200"}:
        raise RuntimeError(f"{url} answered {measured['statuses']} (all must be 200)")
    latencies = sorted(measured["latencies"])
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "per_second": len(latencies) / measured["elapsed"],
    }


def measure(runs: tuple[tuple[int, int], ...] = RUNS) -> list[dict[str, Any]]:
    settings = {
        "global_month_usd": Decimal(10_000_000),
        "block_on_user_spike": False,  # one user sends everything: the anomaly rules must not block the bench
    }
    rows = []
    with FakeUpstream() as upstream:
        overrides = settings | {"openai_base_url": upstream.url}
        alerts: list[str] = []
        with LocalStack(
            settings_overrides=overrides,
            mock_only=True,
            gateway_process=True,
            gateway_output=subprocess.DEVNULL,
            echo=alerts.append,
        ) as stack:
            assert stack.stores is not None
            key = create_key(
                stack.stores.admin,
                stack.clock,
                user_id="bench-latency",
                tier="enterprise",
                service=False,
                feature="chat",
            )
            set_user_limits(stack.stores.admin, stack.clock, "bench-latency", Limits(rpm=10_000_000), "bench")
            auth = {"authorization": f"Bearer {key.secret}"}
            for concurrency, requests in runs:
                direct = load(f"{upstream.url}/v1/chat/completions", concurrency, requests)
                through = load(f"{stack.url}/v1/chat/completions", concurrency, requests, auth)
                rows.append(
                    {
                        "concurrency": concurrency,
                        "requests": requests,
                        "direct": direct,
                        "gateway": through,
                        "added_p50_ms": through["p50_ms"] - direct["p50_ms"],
                        "added_p95_ms": through["p95_ms"] - direct["p95_ms"],
                    }
                )
    return rows


if __name__ == "__main__":
    for row in measure():
        print(row)
