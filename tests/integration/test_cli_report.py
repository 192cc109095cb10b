"""`costbrake report` against the local stack, after known traffic through the official SDKs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.budget_view import monthly_budgets
from costbrake.formatting import usd
from costbrake.operations.keys import create_key
from costbrake.windows import Window, span

PROMPT = [{"role": "user", "content": "Summarise the quarterly numbers in two sentences, please."}]
EIGHT_DP = Decimal("0.00000001")


@pytest.fixture(scope="module")
def traffic(stack):
    """Five calls of a new feature by two new users; returns (feature, users, {request id: (user, cost)})."""
    feature = f"report-{uuid.uuid4().hex[:6]}"
    users = [f"rep-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    calls: dict[str, tuple[str, Decimal]] = {}
    for user, count in zip(users, (4, 1), strict=True):
        key = create_key(
            stack.stores.admin, stack.clock, user_id=user, tier="pro", service=False, feature=feature
        ).secret
        gpt = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0)
        claude = anthropic.Anthropic(base_url=stack.url, api_key=key, max_retries=0)
        for n in range(count):
            if n % 2:
                raw = claude.messages.with_raw_response.create(
                    model="claude-haiku-4-5", max_tokens=60 + 40 * n, messages=PROMPT
                )
            else:
                raw = gpt.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=PROMPT, max_tokens=50 + 30 * n
                )
            calls[raw.headers["x-costbrake-request-id"]] = (user, Decimal(raw.headers["x-costbrake-cost-usd"]))
    return feature, users, calls


def _report(cli, *args: str) -> dict:
    return json.loads(cli("report", "--days", "1", "--json", *args))


def test_given_known_traffic_when_reporting_then_totals_equal_the_sum_of_the_call_records(cli, stack, traffic):
    report = _report(cli)

    start, end = datetime.fromisoformat(report["start"]), datetime.fromisoformat(report["end"])
    in_period = [c for c in stack.stores.calls.scan_calls() if start <= c.timestamp < end]
    assert len(in_period) >= len(traffic[2])
    assert Decimal(report["totals"]["cost_usd"]) == sum(c.cost_usd for c in in_period)
    assert report["totals"]["calls"] == len(in_period)
    assert report["totals"]["input_tokens"] == sum(c.input_tokens for c in in_period)
    assert report["totals"]["output_tokens"] == sum(c.output_tokens for c in in_period)


def test_given_known_traffic_when_reporting_then_the_feature_and_its_users_are_exact(cli, stack, traffic):
    feature, users, calls = traffic

    report = _report(cli, "--top", "10000")  # every user of the session's day: other tests spend more

    (row,) = [f for f in report["features"] if f["name"] == feature]
    costs = sorted(cost for _, cost in calls.values())
    assert row["calls"] == 5 and row["errors"] == 0
    assert Decimal(row["cost_usd"]) == sum(costs)
    assert Decimal(row["mean_cost_usd"]) == (sum(costs) / 5).quantize(EIGHT_DP)
    assert Decimal(row["p95_cost_usd"]) == costs[-1]  # nearest rank: ceil(0.95 x 5) = 5th of 5
    records = [stack.stores.calls.get_call(request_id) for request_id in calls]
    assert Decimal(row["tokens"]["mean_input_tokens"]) == Decimal(sum(r.input_tokens for r in records)) / 5
    by_user = {u["user_id"]: u for u in report["top_users"]}
    for user in users:
        spent = sum(cost for owner, cost in calls.values() if owner == user)
        assert Decimal(by_user[user]["cost_usd"]) == spent


def test_given_known_traffic_when_reporting_then_the_month_projection_follows_from_the_data(cli, stack, traffic):
    report = _report(cli)

    end = datetime.fromisoformat(report["end"])
    (budget,) = [b for b in monthly_budgets(stack.stores.admin, stack.settings, end) if b.scope == "global"]
    line = report["global_budget"]
    rate = Decimal(report["totals"]["cost_usd"]) / 1  # the period is one day
    days_left = Decimal(int((span(Window.MONTH, end).end - end).total_seconds())) / 86_400
    assert Decimal(line["spent_usd"]) == budget.spent_usd
    assert Decimal(line["month_usd"]) == budget.month_usd == stack.settings.global_month_usd
    assert Decimal(line["rate_usd_per_day"]) == rate.quantize(EIGHT_DP)
    assert abs(Decimal(line["projected_usd"]) - (budget.spent_usd + rate * days_left)) <= EIGHT_DP


def test_given_known_traffic_when_reporting_html_then_a_self_contained_page_with_charts(cli, traffic, tmp_path):
    feature = traffic[0]
    out = tmp_path / "report.html"

    cli("report", "--days", "2", "--format", "html", "--out", str(out))

    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") >= 3 and feature in page
    assert "http://" not in page and "https://" not in page


def test_given_known_traffic_when_reporting_text_then_the_feature_and_total_are_there(cli, traffic):
    feature = traffic[0]
    report = _report(cli)

    text = cli("report", "--days", "1")

    assert feature in text
    total = Decimal(report["totals"]["cost_usd"])
    assert f"{usd(total)} over {report['totals']['calls']:,} calls" in text


def test_given_days_out_of_range_when_reporting_then_usage_error(cli):
    result = cli.fails("report", "--days", "0")

    assert result.exit_code == 2 and "--days" in result.output
