"""Issue 8 as an adversary tries it: ordinary requests through the official SDKs, an upstream that bills what the
reference tokenizers count (o200k_base for OpenAI, Claude's published tokenizer for Anthropic), tight budgets.

Every test ends with the same invariants: no user counter above its limit, nothing left reserved, and no call
settled above what was reserved for it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.local.mock_provider import MockProvider
from costbrake.operations.features import default_feature
from costbrake.pricing import PriceTable, cost_of
from costbrake.records import Limits, SwitchState
from costbrake.usage import Usage
from helpers import calls_of, open_reservations_of, user_windows
from reference_tokenizers import claude_tokens, openai_o200k_tokens

# The limits: $0.05 an hour and a day, $1 a month.
TIGHT = Limits(hour_usd=Decimal("0.05"), day_usd=Decimal("0.05"), month_usd=Decimal("1"), rpm=10_000)
ROOMY = Limits(hour_usd=Decimal("50"), day_usd=Decimal("50"), month_usd=Decimal("500"), rpm=10_000)


def reference_count(dialect: str, text: str) -> int:
    return openai_o200k_tokens(text) if dialect == "openai" else claude_tokens(text)


@pytest.fixture
def billing(mock: MockProvider) -> Iterator[MockProvider]:
    """The mock bills as the real providers count."""
    mock.count_tokens_with(reference_count)
    yield mock
    mock.count_tokens_with(None)


@pytest.fixture
def adversary(stack, make_key, user_id, billing) -> Iterator[Callable[..., str]]:
    """A key for the test's user with the given limits; afterwards, the invariants every test must keep."""

    def make(limits: Limits = TIGHT, feature: str | None = None) -> str:
        return make_key(user_id, limits=limits, feature=feature)

    yield make
    for window in user_windows(stack, user_id):
        assert Decimal(window["spent_usd"]) <= Decimal(window["limit_usd"]), window
        assert Decimal(window["reserved_usd"]) == 0, window
    assert not open_reservations_of(stack, user_id)
    for record in calls_of(stack, user_id):
        assert record.cost_usd <= record.reserved_usd, record


def status_of(call: Callable[[], object]) -> int:
    try:
        call()
        return 200
    except (openai.APIStatusError, anthropic.APIStatusError) as error:
        return error.status_code


# ---- rows 1 and 2: text the calibration never saw is counted per byte --------------------------------------

ADVERSARIAL_TEXT = {
    "ascii controls": "".join(chr(c) for c in [*range(0, 9), *range(0x0E, 0x1C), 0x7F]) * 40,
    "vertical whitespace": "\v\f\x1c\x1d\x1e\x1f" * 150,
    "carriage returns": "\r" * 900,
    "repeated punctuation": "|\\$" * 300,
    "cjk extension a": "".join(chr(0x3400 + (i * 37) % 6000) for i in range(500)),
    "random cyrillic": "".join(chr(0x0400 + (i * 53) % 256) for i in range(700)),
    "yi vai cherokee": "".join(chr(base + (i * 7) % 80) for i in range(200) for base in (0xA000, 0xA500, 0x13A0)),
}


@pytest.mark.parametrize("text", ADVERSARIAL_TEXT.values(), ids=ADVERSARIAL_TEXT)
def test_given_text_the_calibration_never_saw_when_billed_by_reference_tokenizers_then_no_call_passes_its_reservation(
    stack, adversary, openai_client, anthropic_client, user_id, text
):
    key = adversary(ROOMY)
    gpt = openai_client(key, max_retries=0)
    claude = anthropic_client(key, max_retries=0)

    gpt.chat.completions.create(model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": text}])
    claude.messages.create(model="claude-opus-4-1", max_tokens=16, messages=[{"role": "user", "content": text}])

    records = calls_of(stack, user_id)
    assert len(records) == 2 and all(r.status == "ok" and not r.usage_estimated for r in records)
    # The fixture checks cost <= reserved for both; the reference counts really were large.
    assert all(r.input_tokens > 100 for r in records)


def test_given_150k_control_characters_when_sent_to_opus_then_refused_as_too_large_before_anything_is_spent(
    stack, adversary, anthropic_client, mock
):
    client = anthropic_client(adversary(), max_retries=0)
    before = len(mock.billed)

    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(
            model="claude-opus-4-1", max_tokens=16, messages=[{"role": "user", "content": "\x01" * 150_000}]
        )

    assert refused.value.status_code == 413
    assert len(mock.billed) == before


def test_given_20_parallel_control_character_calls_against_a_5_cent_budget_then_spend_stays_within_it(
    stack, adversary, openai_client, user_id
):
    client = openai_client(adversary(), max_retries=0)
    start = threading.Barrier(20)
    prompt = [{"role": "user", "content": "\x02\x03\x04" * 1500}]

    def call(_: int) -> int:
        start.wait()
        return status_of(lambda: client.chat.completions.create(model="gpt-4o", max_tokens=50, messages=prompt))

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(call, range(20)))

    assert set(statuses) <= {200, 429} and 200 in statuses
    assert sum(r.cost_usd for r in calls_of(stack, user_id)) <= TIGHT.hour_usd


@pytest.fixture
def roomy_feature(stack, user_id) -> str:
    """A feature whose input cap admits a whole context window (documents, server-tool results)."""
    feature = replace(default_feature(stack.settings, f"wide-{user_id}"), max_input_tokens=1_000_000)
    stack.stores.admin.put_feature(feature, "test", stack.clock.now())
    stack.gateway.forget_cached()
    return feature.name


# ---- row 3: documents are bounded by the context window, not by their base64 size ---------------------------

PDF = base64.b64encode(b"%PDF-1.7\n" + b"1 0 obj << /Type /Page >> endobj\n" * 40 + b"%%EOF").decode()


def document_message() -> list[dict[str, object]]:
    source = {"type": "base64", "media_type": "application/pdf", "data": PDF}
    return [{"role": "user", "content": [{"type": "document", "source": source}, {"type": "text", "text": "Sum up."}]}]


def test_given_a_40_page_pdf_under_the_default_input_cap_then_413_names_the_context_window(
    adversary, anthropic_client, mock
):
    client = anthropic_client(adversary(), max_retries=0)
    before = len(mock.billed)

    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=document_message())

    assert refused.value.status_code == 413
    assert "context window" in refused.value.message
    assert len(mock.billed) == before


def test_given_a_feature_that_allows_documents_when_a_pdf_is_sent_then_the_reservation_covers_what_it_bills(
    stack, adversary, anthropic_client, user_id, roomy_feature
):
    client = anthropic_client(adversary(ROOMY, feature=roomy_feature), max_retries=0)

    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=document_message()
    )

    (record,) = calls_of(stack, user_id)
    assert record.input_tokens >= 40 * 1500  # billed per page, far above the base64's few thousand tokens
    assert record.estimated_input_tokens >= PriceTable.default().get("claude-sonnet-4-5").max_input_tokens
    assert Decimal(raw.headers["x-costbrake-cost-usd"]) == record.cost_usd


def test_given_a_pdf_and_a_5_cent_budget_then_the_call_is_refused_as_above_the_whole_budget(
    adversary, anthropic_client, mock, roomy_feature
):
    client = anthropic_client(adversary(feature=roomy_feature), max_retries=0)
    before = len(mock.billed)

    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=document_message())

    assert refused.value.response.headers["x-should-retry"] == "false"
    assert len(mock.billed) == before


# ---- rows 4-6: server tools, service tiers and cache writes are reserved and charged ------------------------


def test_given_web_search_without_max_uses_when_called_then_searches_and_results_are_charged_within_the_reservation(
    stack, adversary, anthropic_client, user_id, mock, roomy_feature
):
    client = anthropic_client(adversary(ROOMY, feature=roomy_feature))

    client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "What happened today?"}],
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
    )

    sent = mock.requests[-1].body
    assert sent["tools"][0]["max_uses"] >= 1  # the gateway bounded the searches
    (record,) = calls_of(stack, user_id)
    billed = mock.billed[-1].usage
    searches = billed["server_tool_use"]["web_search_requests"]
    assert searches >= 1
    price = PriceTable.default().get("claude-haiku-4-5")
    tokens_only = cost_of(price, Usage(input_tokens=billed["input_tokens"], output_tokens=billed["output_tokens"]))
    assert record.cost_usd >= tokens_only + searches * price.web_search_price


def test_given_a_5_cent_budget_when_web_search_is_offered_then_refused_before_any_search(
    adversary, anthropic_client, mock, roomy_feature
):
    client = anthropic_client(adversary(feature=roomy_feature), max_retries=0)
    before = len(mock.billed)

    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "search"}],
            tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        )

    assert refused.value.status_code == 429  # above the whole budget: no retry will help
    assert len(mock.billed) == before


@pytest.mark.parametrize(("tier", "dearer"), [("priority", True), ("flex", False)])
def test_given_a_service_tier_when_called_then_settled_at_the_tier_the_response_reports(
    stack, adversary, openai_client, user_id, tier, dearer
):
    client = openai_client(adversary(ROOMY))
    prompt = [{"role": "user", "content": "Tier me."}]

    standard = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini", max_completion_tokens=50, messages=prompt, service_tier="default"
    )
    tiered = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini", max_completion_tokens=50, messages=prompt, service_tier=tier
    )

    assert tiered.parse().service_tier == tier
    standard_cost = Decimal(standard.headers["x-costbrake-cost-usd"])
    tiered_cost = Decimal(tiered.headers["x-costbrake-cost-usd"])
    assert (tiered_cost > standard_cost) if dearer else (tiered_cost < standard_cost)


def test_given_a_one_hour_cache_write_when_called_then_it_is_charged_at_twice_input_within_the_reservation(
    stack, adversary, anthropic_client, user_id
):
    client = anthropic_client(adversary(ROOMY))
    context = "The ledger reserves the worst case before every call. " * 200
    block = {"type": "text", "text": context, "cache_control": {"type": "ephemeral", "ttl": "1h"}}

    client.messages.create(
        model="claude-sonnet-4-5", max_tokens=20, system=[block], messages=[{"role": "user", "content": "Why?"}]
    )

    (record,) = calls_of(stack, user_id)
    assert record.cache_write_tokens > 1000
    price = PriceTable.default().get("claude-sonnet-4-5")
    assert record.cost_usd >= record.cache_write_tokens * price.rates.input * 2


# ---- row 7: a failure after the request was sent is charged, and not retried --------------------------------


def test_given_a_provider_timeout_after_the_request_was_sent_then_504_charged_the_worst_case_and_not_retried(
    stack, adversary, anthropic_client, user_id, mock, request_log
):
    client = anthropic_client(adversary())  # the SDK's default retries
    mock.delay_next(stack.settings.provider_timeout_seconds + 1.5)
    before = len(mock.billed)

    with pytest.raises(anthropic.APIStatusError) as failed:
        client.messages.create(model="claude-opus-4-1", max_tokens=200, messages=[{"role": "user", "content": "Go"}])

    assert failed.value.status_code == 504
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert len(request_log.requests) == 1  # one billed generation, not three
    (record,) = calls_of(stack, user_id)
    assert record.status == "error" and record.usage_estimated
    assert record.cost_usd == record.reserved_usd > 0
    price = PriceTable.default().get("claude-opus-4-1")
    (generated,) = mock.billed[before:]
    billed = cost_of(price, Usage(generated.usage["input_tokens"], generated.usage["output_tokens"]))
    assert record.cost_usd >= billed  # what the provider billed is inside what costbrake charged


def test_given_a_connection_dropped_after_the_request_was_sent_then_502_charged_and_not_retried(
    stack, adversary, openai_client, user_id, mock, request_log
):
    client = openai_client(adversary())
    mock.drop_connection_next(after_bytes=10)

    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": "Go"}])

    assert failed.value.status_code == 502
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert len(request_log.requests) == 1
    (record,) = calls_of(stack, user_id)
    assert record.cost_usd == record.reserved_usd > 0 and record.usage_estimated


def test_given_a_provider_500_then_it_is_refunded_because_the_provider_does_not_bill_it(
    stack, adversary, openai_client, user_id, mock
):
    client = openai_client(adversary(), max_retries=0)
    mock.fail_next(500)

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": "Go"}])

    (record,) = calls_of(stack, user_id)
    assert record.cost_usd == 0 and record.status == "error"


# ---- row 11: dated snapshots are downgraded like their base ------------------------------------------------


def test_given_a_downgraded_feature_when_a_dated_snapshot_is_asked_for_then_the_cheaper_model_serves(
    stack, adversary, openai_client, user_id
):
    name = f"down-{user_id}"
    feature = replace(default_feature(stack.settings, name), state=SwitchState.DOWNGRADE, reason="test")
    stack.stores.admin.put_feature(feature, "test", stack.clock.now())
    stack.gateway.forget_cached()
    client = openai_client(adversary(ROOMY, feature=name))

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-2024-05-13", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )

    assert raw.headers["x-costbrake-downgraded-from"] == "gpt-4o-2024-05-13"
    assert raw.headers["x-costbrake-model"] == stack.settings.downgrade_map["gpt-4o"]


# ---- row 12: a busy budget is not a spent budget ------------------------------------------------------------


def test_given_40_threads_against_a_5_cent_budget_then_it_is_spent_to_90_percent_and_never_past_it(
    stack, adversary, openai_client, user_id, mock
):
    client = openai_client(adversary())
    mock.reply_tokens = 40
    start = threading.Barrier(40)

    def call(index: int) -> int:
        start.wait()
        prompt = [{"role": "user", "content": f"Question {index}: what does a budget enforcer do?"}]
        return status_of(lambda: client.chat.completions.create(model="gpt-4o", max_tokens=1000, messages=prompt))

    try:
        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(call, range(120)))
    finally:
        mock.reply_tokens = None

    spent = sum(r.cost_usd for r in calls_of(stack, user_id))
    assert spent <= TIGHT.hour_usd
    assert spent >= TIGHT.hour_usd * Decimal("0.9"), (spent, statuses.count(200))
    assert set(statuses) <= {200, 429}


def test_given_a_history_with_many_tool_calls_when_billed_by_the_reference_tokenizer_then_within_its_reservation(
    stack, adversary, openai_client, user_id
):
    call = lambda i: {"id": f"call_{i:04d}", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}  # noqa: E731
    messages = [
        {"role": "user", "content": "Look these up."},
        {"role": "assistant", "content": None, "tool_calls": [call(i) for i in range(20)]},
        *({"role": "tool", "tool_call_id": f"call_{i:04d}", "content": "found"} for i in range(20)),
    ]

    openai_client(adversary(ROOMY)).chat.completions.create(model="gpt-4o-mini", max_tokens=10, messages=messages)

    (record,) = calls_of(stack, user_id)  # the fixture checks cost <= reserved
    assert record.input_tokens > 100
