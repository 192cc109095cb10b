"""Semantic cache logic: vectors, the best match, what is embedded and the scope it is compared in."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import pytest
from costbrake.providers.base import CHAT_COMPLETIONS, MESSAGES, RESPONSES
from costbrake.reducers.semantic import (
    MAX_DIMENSIONS,
    InvalidVector,
    SemanticEntry,
    best_match,
    decode_vector,
    encode_vector,
    semantic_scope,
    semantic_text,
    system_prompt_sha256,
)
from hypothesis import given
from hypothesis import strategies as st

vectors = st.lists(st.floats(min_value=-1, max_value=1, allow_nan=False), min_size=2, max_size=64).filter(
    lambda v: math.sqrt(sum(x * x for x in v)) > 1e-3
)


def _entry(vector, key="k", created_at=0, slot=0):
    return SemanticEntry(decode_vector(encode_vector(vector)), key, created_at, slot)


@given(vector=vectors)
def test_given_a_vector_when_encoded_and_decoded_then_it_is_unit_length_and_its_own_best_match(vector):
    stored = decode_vector(encode_vector(vector))

    assert len(encode_vector(vector)) == 2 * len(vector)
    assert math.isclose(math.fsum(x * x for x in stored), 1.0, abs_tol=5e-3)
    match = best_match(vector, [SemanticEntry(stored, "self", 0)], Decimal("0.99"))
    assert match is not None and match.similarity == pytest.approx(1.0, abs=5e-3)


def test_given_entries_when_searched_then_the_most_similar_above_the_threshold_wins():
    query = [1.0, 0.0, 0.0]
    near = _entry([0.98, 0.2, 0.0], "near")  # cos ~ 0.98
    nearer = _entry([0.995, 0.1, 0.0], "nearer")  # cos ~ 0.995
    far = _entry([0.0, 1.0, 0.0], "far")

    match = best_match(query, [near, far, nearer], Decimal("0.95"))

    assert match is not None and match.entry.answer_key == "nearer"
    assert best_match(query, [near, far], Decimal("0.99")) is None


def test_given_threshold_when_similarity_is_just_above_or_below_then_it_hits_or_misses():
    angle = math.acos(0.96)
    entry = _entry([math.cos(angle), math.sin(angle)])

    assert best_match([1.0, 0.0], [entry], Decimal("0.95")) is not None
    assert best_match([1.0, 0.0], [entry], Decimal("0.97")) is None


def test_given_entries_of_another_dimension_when_searched_then_they_are_skipped():
    assert best_match([1.0, 0.0], [_entry([1.0, 0.0, 0.0])], 0.5) is None


@pytest.mark.parametrize("bad", [[], [0.0, 0.0], [math.inf, 1.0], [1.0] * (MAX_DIMENSIONS + 1)])
def test_given_a_vector_that_cannot_be_compared_when_encoded_then_it_is_refused(bad):
    with pytest.raises(InvalidVector):
        encode_vector(bad)


def test_given_the_default_bound_when_searched_then_the_cpu_time_stays_small():
    entries = [_entry([math.sin(i * j + 1) for j in range(512)], str(i), i, i) for i in range(200)]
    query = [math.cos(j) for j in range(512)]

    started = time.perf_counter()
    best_match(query, entries, Decimal("0.95"))
    elapsed = time.perf_counter() - started

    assert elapsed < 0.5  # ~10 ms on a laptop: 200 x 512 multiply-adds


# ---- what is embedded ------------------------------------------------------------------------------------


def test_given_single_turn_chat_when_read_then_the_user_text_is_embedded():
    body = {"messages": [{"role": "system", "content": "FAQ bot"}, {"role": "user", "content": "Opening hours?"}]}

    assert semantic_text(CHAT_COMPLETIONS, body) == "Opening hours?"


def test_given_text_parts_when_read_then_they_are_joined():
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}

    assert semantic_text(MESSAGES, body) == "a\nb"


@pytest.mark.parametrize(
    ("api", "body"),
    [
        (
            CHAT_COMPLETIONS,
            {
                "messages": [
                    {"role": "user", "content": "q1"},
                    {"role": "assistant", "content": "a1"},
                    {"role": "user", "content": "and in French?"},
                ]
            },
        ),
        (
            CHAT_COMPLETIONS,
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        ),
        (MESSAGES, {"messages": [{"role": "assistant", "content": "hello"}]}),
        (RESPONSES, {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}),
    ],
)
def test_given_a_history_or_non_text_turn_when_read_then_nothing_is_embedded(api, body):
    assert semantic_text(api, body) is None


def test_given_responses_input_when_read_then_string_and_single_message_are_embedded():
    assert semantic_text(RESPONSES, {"input": "hi"}) == "hi"
    items = [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
    ]
    assert semantic_text(RESPONSES, {"input": items}) == "q"


# ---- scope ------------------------------------------------------------------------------------------------


def _chat(question: str, **extra):
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "FAQ bot"}, {"role": "user", "content": question}],
        **extra,
    }


def test_given_two_questions_with_the_same_setup_when_scoped_then_they_share_a_scope():
    first = semantic_scope(CHAT_COMPLETIONS, _chat("Opening hours?", user="a"), "text-embedding-3-small", 512)
    second = semantic_scope(CHAT_COMPLETIONS, _chat("When are you open?", user="b"), "text-embedding-3-small", 512)

    assert first == second


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"temperature": 0.2},
        {"messages": [{"role": "system", "content": "Pirate bot"}, {"role": "user", "content": "Opening hours?"}]},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
    ],
)
def test_given_another_model_system_prompt_or_parameter_when_scoped_then_the_scope_differs(change):
    base = semantic_scope(CHAT_COMPLETIONS, _chat("Opening hours?"), "text-embedding-3-small", 512)

    assert (
        semantic_scope(CHAT_COMPLETIONS, {**_chat("Opening hours?"), **change}, "text-embedding-3-small", 512) != base
    )


def test_given_another_embedding_model_or_dimension_when_scoped_then_the_scope_differs():
    body = _chat("q")

    base = semantic_scope(CHAT_COMPLETIONS, body, "text-embedding-3-small", 512)

    assert semantic_scope(CHAT_COMPLETIONS, body, "text-embedding-3-large", 512) != base
    assert semantic_scope(CHAT_COMPLETIONS, body, "text-embedding-3-small", 256) != base


def test_given_anthropic_system_when_scoped_then_it_counts_and_the_question_does_not():
    def body(system, question):
        return {"model": "claude-haiku-4-5", "system": system, "messages": [{"role": "user", "content": question}]}

    scope = semantic_scope(MESSAGES, body("FAQ", "q1"), "m", 8)

    assert scope == semantic_scope(MESSAGES, body("FAQ", "q2"), "m", 8)
    assert scope != semantic_scope(MESSAGES, body("Other", "q1"), "m", 8)


def test_given_system_prompts_when_hashed_then_equal_prompts_hash_equal_and_none_is_none():
    assert system_prompt_sha256(CHAT_COMPLETIONS, _chat("a")) == system_prompt_sha256(CHAT_COMPLETIONS, _chat("b"))
    assert system_prompt_sha256(MESSAGES, {"messages": []}) is None
    assert system_prompt_sha256(RESPONSES, {"input": "x"}) is None
    assert system_prompt_sha256(RESPONSES, {"input": "x", "instructions": "be nice"}) is not None
