"""What the gateway tries for a request: exact lookup, semantic search, or nothing."""

from __future__ import annotations

import pytest
from costbrake.providers.base import CHAT_COMPLETIONS, EMBEDDINGS, RESPONSES
from costbrake.records import CacheMode
from costbrake.reducers.plan import plan_cache
from costbrake.reducers.request_key import CacheRequest


def _chat(*questions: str, temperature: float = 0.7) -> dict:
    messages = [{"role": "system", "content": "FAQ"}]
    for question in questions[:-1]:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": "..."}]
    messages.append({"role": "user", "content": questions[-1]})
    return {"model": "gpt-4o-mini", "messages": messages, "temperature": temperature}


@pytest.mark.parametrize("request_", list(CacheRequest))
def test_given_a_feature_without_cache_when_planned_then_nothing_is_tried(request_):
    plan = plan_cache(CacheMode.OFF, CHAT_COMPLETIONS, _chat("q", temperature=0), request_)

    assert not plan.exact and plan.semantic_text is None


def test_given_an_exact_feature_when_planned_then_only_deterministic_or_allowed_requests_are_looked_up():
    assert plan_cache(CacheMode.EXACT, CHAT_COMPLETIONS, _chat("q", temperature=0), CacheRequest.DEFAULT).exact
    assert not plan_cache(CacheMode.EXACT, CHAT_COMPLETIONS, _chat("q"), CacheRequest.DEFAULT).exact
    assert plan_cache(CacheMode.EXACT, CHAT_COMPLETIONS, _chat("q"), CacheRequest.ALLOW).exact
    assert plan_cache(CacheMode.EXACT, CHAT_COMPLETIONS, _chat("q"), CacheRequest.ALLOW).semantic_text is None


def test_given_a_semantic_feature_and_a_single_turn_when_planned_then_exact_then_semantic_whatever_the_temperature():
    plan = plan_cache(CacheMode.SEMANTIC, CHAT_COMPLETIONS, _chat("Opening hours?"), CacheRequest.DEFAULT)

    assert plan.exact and plan.semantic_text == "Opening hours?"


def test_given_a_semantic_feature_and_a_history_when_planned_then_it_is_treated_as_an_exact_feature_would():
    sampled = plan_cache(CacheMode.SEMANTIC, CHAT_COMPLETIONS, _chat("q1", "q2"), CacheRequest.DEFAULT)
    deterministic = plan_cache(
        CacheMode.SEMANTIC, CHAT_COMPLETIONS, _chat("q1", "q2", temperature=0), CacheRequest.DEFAULT
    )

    assert not sampled.exact and sampled.semantic_text is None and "single-turn" in sampled.reason
    assert deterministic.exact and deterministic.semantic_text is None


@pytest.mark.parametrize(
    ("api", "body", "request_"),
    [
        (CHAT_COMPLETIONS, _chat("q"), CacheRequest.BYPASS),
        (RESPONSES, {"model": "gpt-5", "input": "q", "conversation": "conv_1"}, CacheRequest.ALLOW),
    ],
)
def test_given_bypass_or_state_when_planned_for_a_semantic_feature_then_nothing_is_tried(api, body, request_):
    plan = plan_cache(CacheMode.SEMANTIC, api, body, request_)

    assert not plan.exact and plan.semantic_text is None


def test_given_embeddings_in_a_semantic_feature_when_planned_then_only_the_exact_key_is_used():
    plan = plan_cache(
        CacheMode.SEMANTIC, EMBEDDINGS, {"model": "text-embedding-3-small", "input": "x"}, CacheRequest.DEFAULT
    )

    assert plan.exact and plan.semantic_text is None
