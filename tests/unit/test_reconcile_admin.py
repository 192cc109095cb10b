"""The admin API clients against the mock admin API (and canned answers in the providers' documented shapes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from costbrake.clock import ManualClock
from costbrake.local.mock_admin import ANTHROPIC_ADMIN_KEY, OPENAI_ADMIN_KEY, MockAdmin, cost_components
from costbrake.local.mock_provider import MockProvider
from costbrake.pricing import PriceTable, cost_of, usage_from_anthropic, usage_from_openai
from costbrake.reconcile.admin_api import AdminApiError, AnthropicAdmin, OpenAIAdmin, line_item_model
from costbrake.reconcile.figures import Tokens

NOW = datetime(2026, 11, 24, 15, tzinfo=UTC)
START = datetime(2026, 11, 18, tzinfo=UTC)
END = datetime(2026, 11, 25, tzinfo=UTC)
PROMPT = [{"role": "user", "content": "How much did this cost, exactly?"}]


@pytest.fixture
def stack() -> Iterator[tuple[MockProvider, MockAdmin, ManualClock]]:
    clock = ManualClock(NOW)
    with MockProvider(clock=clock) as provider, MockAdmin(provider, clock=clock, watch_seconds=None) as admin:
        yield provider, admin, clock


def _openai(provider: MockProvider, model: str = "gpt-4o-mini") -> None:
    body = {"model": model, "messages": PROMPT, "max_tokens": 60}
    httpx.post(f"{provider.base_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})


def _anthropic(provider: MockProvider, model: str = "claude-haiku-4-5") -> None:
    body = {"model": model, "messages": PROMPT, "max_tokens": 60}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    httpx.post(f"{provider.base_url}/v1/messages", json=body, headers=headers)


def test_given_billed_generations_when_both_reports_are_read_then_tokens_and_dollars_equal_what_was_billed(stack):
    provider, admin, _ = stack
    for _ in range(3):
        _openai(provider)
        _anthropic(provider)
    admin.sync()
    prices = PriceTable.default()
    billed_usd = {
        b.dialect: cost_of(prices.get(b.model), usage_from_anthropic(b.usage))
        if b.dialect == "anthropic"
        else cost_of(prices.get(b.model), usage_from_openai(b.usage))
        for b in provider.billed
    }

    openai = OpenAIAdmin(OPENAI_ADMIN_KEY, admin.base_url).report(START, END)
    anthropic = AnthropicAdmin(ANTHROPIC_ADMIN_KEY, admin.base_url).report(START, END)

    (usage,) = openai.usage
    assert usage.day == date(2026, 11, 24) and usage.model == "gpt-4o-mini" and usage.requests == 3
    expected = sum((b.usage["completion_tokens"] for b in provider.billed if b.dialect == "openai"), 0)
    assert usage.tokens.output == expected
    assert sum(c.usd for c in openai.costs) == 3 * billed_usd["openai"]
    assert {c.item for c in openai.costs} == {"gpt-4o-mini, input", "gpt-4o-mini, output"}
    assert sum(c.usd for c in anthropic.costs) == 3 * billed_usd["anthropic"]  # cents, divided back exactly
    assert {c.model for c in anthropic.costs} == {"claude-haiku-4-5"}
    assert anthropic.excluded_tiers == {"priority"}


def test_given_outside_usage_and_a_price_change_when_read_then_both_show_in_the_reports(stack):
    _, admin, _ = stack
    admin.add_outside_usage(
        "anthropic", "claude-sonnet-4-5", at=NOW - timedelta(days=2), input_tokens=10**6, output_tokens=0, requests=10
    )
    admin.scale_price("claude-sonnet-4-5", Decimal(2))

    report = AnthropicAdmin(ANTHROPIC_ADMIN_KEY, admin.base_url).report(START, END)

    (usage,) = report.usage
    assert usage.day == date(2026, 11, 22) and usage.tokens == Tokens(input=10**6)
    assert usage.api_key_id == admin.gateway_key_ids["anthropic"]
    assert sum(c.usd for c in report.costs) == Decimal(6)  # $3 / M, doubled


def test_given_many_hourly_buckets_when_paged_then_every_bucket_arrives_once(stack):
    _, admin, _ = stack
    for hour in range(30):
        admin.add_outside_usage("openai", "gpt-4.1", at=START + timedelta(hours=hour), input_tokens=1, output_tokens=0)
    seen, page = 0, None
    pages = 0
    while True:
        params = {"start_time": int(START.timestamp()), "end_time": int((START + timedelta(hours=30)).timestamp())}
        params |= {"bucket_width": "1h", **({"page": page} if page else {})}
        body = httpx.get(
            f"{admin.base_url}/v1/organization/usage/completions",
            params=params,
            headers={"Authorization": f"Bearer {OPENAI_ADMIN_KEY}"},
        ).json()
        seen += sum(r["input_tokens"] for bucket in body["data"] for r in bucket["results"])
        pages += 1
        if not body["has_more"]:
            break
        page = body["next_page"]

    assert (seen, pages) == (30, 2)  # 24 hourly buckets per page by default


def test_given_a_wrong_admin_key_when_read_then_refused_and_the_key_is_not_in_the_message(stack):
    _, admin, _ = stack

    with pytest.raises(AdminApiError) as refused:
        AnthropicAdmin("sk-ant-api03-not-an-admin-key-xyz", admin.base_url).report(START, END)

    assert "401" in refused.value.message and "not-an-admin-key" not in refused.value.message


def test_given_documented_answers_when_parsed_then_cents_strings_and_dollar_numbers_are_exact():
    anthropic_cost = {
        "data": [
            {
                "starting_at": "2025-08-01T00:00:00Z",
                "ending_at": "2025-08-02T00:00:00Z",
                "results": [
                    {"amount": "123.78912", "currency": "USD", "cost_type": "tokens", "model": "claude-sonnet-4"},
                    {"amount": "50", "currency": "USD", "cost_type": "web_search", "model": None},
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    openai_cost = (
        '{"object": "page", "data": [{"object": "bucket", "start_time": 1730419200, "end_time": 1730505600, '
        '"results": [{"object": "organization.costs.result", "amount": {"value": 0.13080438, "currency": "usd"}, '
        '"line_item": "gpt-4o-2024-08-06, input", "project_id": null}]}], "has_more": false, "next_page": null}'
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if "cost_report" in request.url.path:
            return httpx.Response(200, json=anthropic_cost)
        if request.url.path.endswith("/costs"):
            return httpx.Response(200, text=openai_cost)
        return httpx.Response(200, json={"data": [], "has_more": False, "next_page": None})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    anthropic = AnthropicAdmin("sk-ant-admin-x", "https://a", http=client).report(START, END)
    openai = OpenAIAdmin("sk-admin-x", "https://o", http=client).report(START, END)

    assert [(c.usd, c.model, c.item) for c in anthropic.costs] == [
        (Decimal("1.2378912"), "claude-sonnet-4", "tokens"),
        (Decimal("0.5"), None, "web_search"),
    ]
    assert [(c.usd, c.model, c.day) for c in openai.costs] == [
        (Decimal("0.13080438"), "gpt-4o-2024-08-06", date(2024, 11, 1))
    ]


def test_given_requests_when_sent_then_each_provider_gets_its_admin_headers_and_array_style():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [], "has_more": False, "next_page": None})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    AnthropicAdmin("sk-ant-admin-abc", "https://a", http=client).report(START, END)
    OpenAIAdmin("sk-admin-abc", "https://o", http=client).report(START, END)

    anthropic, openai = seen[0], seen[-1]
    assert anthropic.headers["x-api-key"] == "sk-ant-admin-abc" and anthropic.headers["anthropic-version"]
    assert anthropic.url.params.get_list("group_by[]") == ["model", "api_key_id", "service_tier"]
    assert anthropic.url.params["starting_at"] == "2026-11-18T00:00:00Z"
    assert openai.headers["authorization"] == "Bearer sk-admin-abc"
    assert openai.url.params["start_time"] == str(int(START.timestamp()))
    assert json.loads(json.dumps(openai.url.params.get_list("group_by"))) == ["line_item"]


def test_given_line_items_then_models_are_read_from_them_and_other_items_are_not_models():
    assert line_item_model("gpt-4o-2024-08-06, input", set()) == "gpt-4o-2024-08-06"
    assert line_item_model("gpt-4o, cached input", {"gpt-4o"}) == "gpt-4o"
    assert line_item_model("web search tool calls", set()) is None


def test_given_a_usage_when_split_by_token_type_then_the_parts_sum_to_the_price_of_the_call():
    prices = PriceTable.default()
    usage = usage_from_anthropic(
        {
            "input_tokens": 1234,
            "cache_read_input_tokens": 77,
            "cache_creation": {"ephemeral_5m_input_tokens": 11, "ephemeral_1h_input_tokens": 5},
            "cache_creation_input_tokens": 16,
            "output_tokens": 99,
            "server_tool_use": {"web_search_requests": 2},
        }
    )

    parts = cost_components(prices.get("claude-sonnet-4-5"), usage)

    assert sum(parts.values()) == cost_of(prices.get("claude-sonnet-4-5"), usage)
    assert "web_search" in parts
