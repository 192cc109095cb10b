"""The cost report at scale: what the weekly reporter Lambda (1024 MB, 300 s) holds and spends per call record.

Builds a week of synthetic call records in memory (no DynamoDB: reading them is one Query per day and bucket,
1 MB per page), then times and measures ``build_report`` and the text and HTML renderings.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costbrake.budget_view import ScopeBudget
from costbrake.records import CallRecord
from costbrake.reports.html import render_html
from costbrake.reports.inputs import ReportInputs
from costbrake.reports.model import build_report
from costbrake.reports.text import render_text

from bench.calls import bench_call

NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)
FEATURES = ("chat", "code-generation", "data-analysis", "admin")
MODELS = ("gpt-4o-mini", "claude-haiku-4-5", "claude-sonnet-4-5", "gpt-4.1")
SIZES = (10_000, 100_000)


def _calls(count: int, users: int) -> list[CallRecord]:
    rng = random.Random(count)
    calls = []
    for n in range(count):
        input_tokens, output_tokens = rng.randint(200, 8_000), rng.randint(20, 1_500)
        calls.append(
            bench_call(
                f"req-{n:08d}",
                timestamp=NOW - timedelta(seconds=rng.randint(1, 7 * 86_400)),
                user_id=f"user-{rng.randrange(users):05d}",
                feature=rng.choice(FEATURES),
                model=rng.choice(MODELS),
                cost_usd=Decimal(input_tokens * 3 + output_tokens * 15) / Decimal(1_000_000),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
        )
    return calls


def run() -> None:
    print("== cost report (in memory, a week of call records) ==")
    print("   calls   records MB   build s   text s   html s   peak MB (records + report)")
    budgets = [ScopeBudget("global", Decimal(50_000), Decimal(20_000), Decimal(20_000))]
    for count in SIZES:
        tracemalloc.start()
        calls = _calls(count, users=max(10, count // 50))
        records_mb = tracemalloc.get_traced_memory()[0] / 1e6
        inputs = ReportInputs(now=NOW, days=7, calls=calls, budgets=budgets, alerts=[])
        started = time.perf_counter()
        report = build_report(inputs)
        built = time.perf_counter()
        render_text(report)
        texted = time.perf_counter()
        render_html(report)
        done = time.perf_counter()
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        print(
            f"{count:>8,}   {records_mb:>10.0f}   {built - started:>7.2f}   {texted - built:>6.2f}"
            f"   {done - texted:>6.2f}   {peak_mb:>7.0f}"
        )
    print("(tracemalloc slows the timings; the memory per record is what sizes the reporter Lambda)")


if __name__ == "__main__":
    run()
