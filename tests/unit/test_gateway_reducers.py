"""The cost reducers' decisions on the request path (costbrake.gateway.reducers) and in reports (reports.reducers)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from costbrake.config import Settings
from costbrake.errors import InputTooLarge, InvalidRequest
from costbrake.gateway.reducers import bound_or_truncate, cache_lookup
from costbrake.local.mock_responses import text_vector
from costbrake.pricing import PriceTable
from costbrake.providers.base import CHAT_COMPLETIONS
from costbrake.records import AnswerForm, CacheMode, Feature
from costbrake.reports.reducers import cache_advice, reducers_of, unhelpful_caches

SETTINGS = Settings(ledger_table="l-t", calls_table="c-t", cache_table="cache-t", dynamodb_endpoint_url=None)
TIERS = {"openai": "default", "anthropic": "standard_only"}
ASK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def test_given_cache_modes_when_looked_up_then_the_key_has_the_form_and_semantic_steps_only_on_semantic():
    exact = cache_lookup(SETTINGS, Feature("f", cache=CacheMode.EXACT), CHAT_COMPLETIONS, ASK, {}, False)
    streamed = cache_lookup(SETTINGS, Feature("f", cache=CacheMode.EXACT), CHAT_COMPLETIONS, ASK, {}, True)
    semantic = cache_lookup(SETTINGS, Feature("f", cache=CacheMode.SEMANTIC), CHAT_COMPLETIONS, ASK, {}, False)

    assert exact is not None and exact.eligible and exact.form is AnswerForm.JSON and exact.semantic_text is None
    assert streamed is not None and streamed.form is AnswerForm.SSE and streamed.answer_key != exact.answer_key
    assert semantic is not None and semantic.semantic_text == "hi" and semantic.semantic_scope
    assert cache_lookup(SETTINGS, Feature("f"), CHAT_COMPLETIONS, ASK, {}, False) is None
    no_table = SETTINGS.model_copy(update={"cache_table": None})
    assert cache_lookup(no_table, Feature("f", cache=CacheMode.EXACT), CHAT_COMPLETIONS, ASK, {}, False) is None


def test_given_bypass_or_a_bad_cache_header_then_not_eligible_or_refused():
    feature = Feature("f", cache=CacheMode.EXACT)
    bypass = cache_lookup(SETTINGS, feature, CHAT_COMPLETIONS, ASK, {"x-costbrake-cache": "bypass"}, False)

    assert bypass is not None and not bypass.eligible and bypass.answer_key is None
    with pytest.raises(InvalidRequest):
        cache_lookup(SETTINGS, Feature("f"), CHAT_COMPLETIONS, ASK, {"x-costbrake-cache": "maybe"}, False)


def _history(turns: int) -> dict:
    messages = [{"role": "system", "content": "Be brief."}]
    for turn in range(turns):
        messages += [
            {"role": "user", "content": f"question {turn} " + "word " * 80},
            {"role": "assistant", "content": f"answer {turn} " + "word " * 80},
        ]
    return {"model": "gpt-4o-mini", "messages": [*messages, {"role": "user", "content": "last"}], "max_tokens": 10}


def test_given_truncation_on_when_above_the_cap_then_the_oldest_turns_go_and_the_bound_fits():
    price = PriceTable.default().get("gpt-4o-mini")
    feature = Feature("f", max_input_tokens=400, truncate=True)

    body, bounds, dropped = bound_or_truncate(CHAT_COMPLETIONS, _history(10), price, feature, auto_tiers=TIERS)

    assert dropped > 0 and len(body["messages"]) == 22 - dropped
    assert body["messages"][0]["role"] == "system" and body["messages"][-1]["content"] == "last"
    assert bounds.input_tokens <= 400


def test_given_truncation_off_when_above_the_cap_then_413():
    price = PriceTable.default().get("gpt-4o-mini")
    with pytest.raises(InputTooLarge):
        bound_or_truncate(CHAT_COMPLETIONS, _history(10), price, Feature("f", max_input_tokens=400), auto_tiers=TIERS)


def test_given_calls_when_reported_then_hit_rate_savings_embeddings_and_advice_per_feature(call_record):
    hit = dict(cache_hit=True, cache_status="hit", saved_usd=Decimal("0.01"), cost_usd=Decimal(0))
    calls = [call_record(request_id=f"m{i}", feature="faq", cache_status="miss") for i in range(95)]
    calls += [call_record(request_id=f"h{i}", feature="faq", **hit) for i in range(5)]
    calls += [call_record(request_id="s", feature="faq", **hit, cache_similarity=Decimal("0.97"))]
    calls += [call_record(request_id="e", feature="faq", cache_status="embedding", cost_usd=Decimal("0.001"))]
    calls += [call_record(request_id="t", feature="chat", truncated_messages=6)]

    reducers = reducers_of(calls)

    faq, chat = sorted(reducers.features, key=lambda f: f.name)[::-1]
    assert (faq.lookups, faq.hits, faq.semantic_hits, faq.exact_hits) == (101, 6, 1, 5)
    assert faq.saved_usd == Decimal("0.06") and faq.net_saved_usd == Decimal("0.059")
    assert (chat.truncated_calls, chat.truncated_messages, chat.lookups, chat.hit_rate) == (1, 6, 0, None)
    assert unhelpful_caches(reducers) == (faq,)
    assert "--cache off" in cache_advice(faq) and "5.9%" in cache_advice(faq)


def test_given_near_duplicate_texts_when_the_mock_embeds_them_then_they_are_close_and_others_are_not():
    def cosine(a: str, b: str) -> float:
        left, right = text_vector("m", a, 512), text_vector("m", b, 512)
        assert left is not None and right is not None
        return sum(x * y for x, y in zip(left, right, strict=True))

    assert cosine("How do I reset my password?", "how do i reset my password") == pytest.approx(1.0)
    assert 0.8 < cosine("How do I reset my password?", "How can I reset my password?") < 0.95
    assert cosine("How do I reset my password?", "What is the refund policy?") < 0.3
