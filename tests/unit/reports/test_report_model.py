"""The report's figures follow from its inputs: totals, per-feature statistics, projections, advice, series."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from costbrake.reports.model import build_report
from costbrake.reports.stats import percentile
from costbrake.reports.text import render_text
from report_data import NOW, budget

SECONDS_LEFT_IN_MONTH = Decimal((6 * 24 + 13.5) * 3600)  # NOW is 2026-11-24 10:30; December starts in 6 d 13.5 h


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        (list(range(1, 21)), 95, 19),  # rank ceil(0.95 x 20) = 19
        (list(range(1, 11)), 95, 10),  # rank ceil(9.5) = 10: the largest
        ([7], 95, 7),
        ([4, 1, 3, 2], 50, 2),  # unsorted input; rank ceil(2) = 2
        (list(range(1, 101)), 95, 95),
        (list(range(1, 102)), 95, 96),  # rank ceil(95.95) = 96
        (list(range(1, 21)), 100, 20),
    ],
)
def test_given_values_when_taking_a_percentile_then_the_nearest_rank_value(values, pct, expected):
    assert percentile(values, pct) == expected


def test_given_no_values_when_taking_a_percentile_then_none():
    assert percentile([], 95) is None


def test_given_calls_when_built_then_totals_are_the_sums_of_the_calls(busy_week):
    report = build_report(busy_week)

    calls = busy_week.calls
    assert report.totals.cost_usd == sum((c.cost_usd for c in calls), Decimal(0))
    assert report.totals.calls == len(calls) > 1000
    assert report.totals.input_tokens == sum(c.input_tokens for c in calls)
    assert report.totals.output_tokens == sum(c.output_tokens for c in calls)
    assert sum(f.cost_usd for f in report.features) == report.totals.cost_usd
    assert sum(report.daily.totals) == report.totals.cost_usd
    assert [f.name for f in report.features] == ["deep-analysis", "code-generation", "chat"]  # most expensive first


def test_given_one_feature_with_twenty_calls_when_built_then_its_mean_and_p95_cost_per_call_are_exact(
    make_call, make_inputs
):
    costs = [Decimal(n) / 100 for n in range(1, 21)]  # $0.01 .. $0.20
    calls = [make_call(feature="search", cost_usd=c, input_tokens=100 * n, output_tokens=10) for n, c in
             enumerate(costs, start=1)]  # fmt: skip
    calls.append(make_call(feature="search", status="error", http_status=502, cost_usd=Decimal(0), input_tokens=0))

    (search,) = build_report(make_inputs(calls)).features

    assert search.calls == 21 and search.errors == 1
    assert search.cost_usd == Decimal("2.10")
    assert search.mean_cost_usd == Decimal("0.1")  # $2.10 / 21 calls (the failed one included)
    assert search.p95_cost_usd == Decimal("0.19")  # rank ceil(0.95 x 21) = 20 of 21 costs: $0, .01, ... -> $0.19
    assert search.tokens.completed_calls == 20  # token statistics leave the failed call out
    assert search.tokens.mean_input_tokens == Decimal("1050")  # 100 .. 2000
    assert search.tokens.p95_input_tokens == 1900
    assert search.tokens.output_input_ratio == Decimal("0.009524")  # 200 / 21,000 to six places


def test_given_budgets_when_built_then_the_projection_is_month_to_date_plus_the_period_rate_to_month_end(
    make_call, make_inputs
):
    week_ago = NOW - timedelta(days=7)  # a call at the period's start: the rate is over the whole period
    calls = [
        make_call(feature="chat", cost_usd=Decimal("30"), timestamp=week_ago),
        make_call(feature="search", cost_usd=Decimal("40")),
    ]
    budgets = [budget("global", "500", "450"), budget("feature#search", "1000", "100")]

    report = build_report(make_inputs(calls, days=7, budgets=budgets))

    g = report.global_budget
    assert g is not None
    rate = Decimal(70) / 7  # the period's cost over its 7 days
    assert g.rate_usd_per_day == rate == report.run_rate_usd_per_day
    assert g.projected_usd == Decimal(450) + rate * SECONDS_LEFT_IN_MONTH / 86_400 == Decimal("515.625")
    assert g.utilization == Decimal("0.9")
    assert g.projected_utilization == Decimal("1.03125")
    assert g.exhausted_at == NOW + timedelta(days=5)  # $50 left at $10/day
    (search,) = report.feature_budgets
    search_rate = Decimal(40) / 7  # the feature's own cost in the period
    assert search.rate_usd_per_day == search_rate.quantize(Decimal("0.00000001"))
    assert abs(search.projected_usd - (Decimal(100) + search_rate * SECONDS_LEFT_IN_MONTH / 86_400)) < Decimal("1e-7")
    assert search.exhausted_at is None
    assert report.daily_budget_usd == Decimal("16.66666667")  # $500 / 30 days, to the 8 places of derived money
    assert [a.code for a in report.advice] == ["budget_runout"]
    assert "runs out on 2026-11-29 10:30" in report.advice[0].message


def test_given_a_deployment_whose_first_call_is_inside_the_period_when_built_then_the_rate_runs_from_that_call(
    make_call, make_inputs
):
    first = NOW - timedelta(days=2)
    calls = [make_call(cost_usd=Decimal("20"), timestamp=first), make_call(cost_usd=Decimal("10"))]

    report = build_report(make_inputs(calls, days=7, budgets=[budget("global", "1000", "30")]))

    assert report.rate_since == first
    assert report.run_rate_usd_per_day == Decimal(15)  # $30 over the 2 days since the first call, not over 7
    assert "$15.00/day (since the first call, 2026-11-22 10:30)" in render_text(report)


def test_given_a_spent_budget_when_built_then_it_is_reported_as_spent(make_call, make_inputs):
    report = build_report(make_inputs([make_call()], budgets=[budget("global", "100", "120")]))

    assert report.global_budget is not None and report.global_budget.exhausted_at == NOW
    assert report.advice[0].message == "The global budget of $100.00 is spent ($120.00 this month)."


@pytest.mark.parametrize(("truncated", "advised"), [(6, True), (4, False), (5, False)])
def test_given_a_truncation_rate_when_built_then_advice_only_above_five_percent(
    make_call, make_inputs, truncated, advised
):
    calls = [make_call(feature="summaries", truncated=n < truncated, finish_reason="length") for n in range(100)]

    report = build_report(make_inputs(calls))

    assert report.tokens.truncation_rate == Decimal(truncated) / 100
    advice = [a for a in report.advice if a.code == "truncation"]
    assert bool(advice) is advised
    if advised:
        assert "6.0% of answers were cut off at max_tokens" in advice[0].message
        assert "raise max_tokens or ask for shorter answers" in advice[0].message
        assert "summaries 6.0%" in advice[0].message


@pytest.mark.parametrize(
    ("calls", "hits", "writes", "advised"),
    # Below 20% once there are 100 calls to judge by, and only where a prompt cache is in use at all.
    [(100, 19, 0, True), (100, 20, 0, False), (99, 0, 5, False), (100, 0, 5, True), (100, 0, 0, False)],
)
def test_given_a_cache_hit_rate_when_built_then_caching_is_not_helping_below_twenty_percent_after_100_calls(
    make_call, make_inputs, calls, hits, writes, advised
):
    records = [
        make_call(cache_read_tokens=512 if n < hits else 0, cache_write_tokens=1024 if n >= calls - writes else 0)
        for n in range(calls)
    ]

    report = build_report(make_inputs(records))

    assert (report.tokens.cache_hits, report.tokens.cache_writes) == (hits, writes)
    cache = [a.message for a in report.advice if a.code == "cache"]
    assert cache == ([f"Caching is not helping: {hits}.0% cache hits over 100 calls (below 20.0%) while {writes} "
                      "calls paid to write the cache; keep the cached prefix identical across calls or stop caching "
                      "it."] if advised else [])  # fmt: skip


def test_given_users_when_built_then_top_users_and_cost_per_user(make_call, make_inputs):
    spend = {"ann": "6", "bob": "3", "cy": "1"}
    calls = [make_call(user_id=user, cost_usd=Decimal(cost)) for user, cost in spend.items()]
    calls.append(make_call(user_id="ann", cost_usd=Decimal("2")))

    report = build_report(make_inputs(calls), top_users=2)

    assert [(u.user_id, u.cost_usd, u.calls, u.share) for u in report.top_users] == [
        ("ann", Decimal(8), 2, Decimal("0.666667")),
        ("bob", Decimal(3), 1, Decimal("0.25")),
    ]
    assert report.per_user.active_users == 3
    assert report.per_user.mean_usd == Decimal(4)
    assert (report.per_user.median_usd, report.per_user.p95_usd, report.per_user.max_usd) == (3, 8, 8)


def test_given_two_models_when_built_then_efficiency_per_model(make_call, make_inputs):
    calls = [
        make_call(model="gpt-4o", cost_usd=Decimal("0.03"), input_tokens=1000, output_tokens=500),
        make_call(model="gpt-4o", cost_usd=Decimal("0.01"), input_tokens=3000, output_tokens=500, truncated=True),
        make_call(model="gpt-4o-mini", cost_usd=Decimal("0.001"), input_tokens=900, output_tokens=100),
    ]

    big, mini = build_report(make_inputs(calls)).models

    assert (big.name, big.calls, big.cost_usd, big.mean_cost_usd) == ("gpt-4o", 2, Decimal("0.04"), Decimal("0.02"))
    assert big.usd_per_1k_tokens == Decimal("0.008")  # $0.04 / 5000 tokens x 1000
    assert big.tokens.output_input_ratio == Decimal("0.25")
    assert big.tokens.truncation_rate == Decimal("0.5")
    assert (mini.name, mini.tokens.mean_input_tokens, mini.tokens.p95_output_tokens) == ("gpt-4o-mini", 900, 100)


def test_given_a_week_when_built_then_daily_buckets_span_the_period_and_no_hourly_series(busy_week):
    report = build_report(busy_week)

    assert report.hourly is None
    assert report.daily.granularity == "day"
    assert report.daily.starts[0].isoformat() == "2026-11-17T00:00:00+00:00"
    assert report.daily.starts[-1].isoformat() == "2026-11-24T00:00:00+00:00"
    assert len(report.daily.starts) == 8  # partial first and last days
    for n in range(len(report.daily.starts)):
        assert sum(f.costs[n] for f in report.daily.by_feature) == report.daily.totals[n]


def test_given_two_days_when_built_then_an_hourly_series_too(make_call, make_inputs):
    calls = [make_call(timestamp=NOW - timedelta(minutes=20), cost_usd=Decimal("2")),
             make_call(timestamp=NOW - timedelta(hours=47), cost_usd=Decimal("3"))]  # fmt: skip

    report = build_report(make_inputs(calls, days=2))

    assert report.hourly is not None
    assert len(report.hourly.starts) == 49  # 08:00 two days ago .. 10:00 today
    assert report.hourly.totals[0] == 0 and report.hourly.totals[1] == 3 and report.hourly.totals[-1] == 2


def test_given_alerts_when_built_then_anomalies_of_the_last_fourteen_days_newest_first(make_call, make_inputs):
    alerts = [
        {"type": "user_spike", "severity": "critical", "scope": "user#ann", "window": "h#2026-11-24T09",
         "generated_at": "2026-11-24T09:10:00+00:00", "current_usd": "12.5", "summary": "ann spent $12.50"},
        {"type": "zscore", "severity": "warning", "scope": "global", "window": "h#2026-11-01T09",
         "generated_at": "2026-11-01T09:10:00+00:00", "current_usd": "99", "summary": "too old"},
    ]  # fmt: skip

    report = build_report(make_inputs([make_call()], alerts=alerts))

    assert [(a.type, a.scope, a.current_usd) for a in report.anomalies] == [("user_spike", "user#ann", Decimal("12.5"))]


def test_given_no_calls_when_built_then_zeros_and_no_advice(make_inputs):
    report = build_report(make_inputs([], budgets=[budget("global", "1000", "0")]))

    assert report.totals.cost_usd == 0 and report.totals.calls == 0
    assert report.features == () and report.top_users == () and report.models == ()
    assert report.tokens.truncation_rate is None and report.per_user.mean_usd is None
    assert report.global_budget is not None and report.global_budget.projected_usd == 0
    assert report.advice == ()
    assert len(report.daily.totals) == 8 and not any(report.daily.totals)


def test_given_a_report_when_as_dict_then_it_round_trips_through_json_with_exact_money(busy_week):
    report = build_report(busy_week)

    data = report.as_dict()
    again = json.loads(json.dumps(data))

    assert again == data
    assert again["schema_version"] == "1"
    assert Decimal(again["totals"]["cost_usd"]) == report.totals.cost_usd
    assert again["start"] == "2026-11-17T10:30:00+00:00" and again["end"] == "2026-11-24T10:30:00+00:00"
    assert Decimal(again["global_budget"]["projected_usd"]) == report.global_budget.projected_usd
    assert again["features"][0]["name"] == "deep-analysis"
    assert [Decimal(c) for c in again["daily"]["totals"]] == list(report.daily.totals)
    assert again["anomalies"][0]["generated_at"] == "2026-11-24T08:30:00+00:00"
    assert all("E" not in value for value in _strings(again))  # plain decimals, never an exponent


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str) and value[:1].isdigit():
        yield value
