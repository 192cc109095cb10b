"""History truncation: oldest turns dropped to fit, system prompt and last user turn kept, tool pairs whole."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from costbrake.providers.base import CHAT_COMPLETIONS, EMBEDDINGS, MESSAGES, RESPONSES
from costbrake.reducers.truncation import HistoryTooLong, truncate_history
from costbrake.tokens import InputEstimate, estimate_anthropic_input_tokens, estimate_openai_input_tokens
from hypothesis import given, settings
from hypothesis import strategies as st


def by_length(body: Mapping[str, Any]) -> InputEstimate:
    """A simple monotone estimate: one token per character of the history's JSON."""
    history = body.get("messages", body.get("input"))
    return InputEstimate(len(json.dumps(history)) + len(json.dumps(body.get("system", ""))))


def chat_tool_turn(call_id: str) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "result " * 5},
    ]


def anthropic_tool_turn(call_id: str) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "result " * 5}]},
    ]


# ---- examples ---------------------------------------------------------------------------------------------


def test_given_a_body_that_fits_when_truncated_then_it_is_unchanged():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    result = truncate_history(CHAT_COMPLETIONS, body, 10_000)

    assert result.dropped == 0 and result.body == body


def test_given_a_long_chat_when_truncated_then_the_oldest_turns_go_and_system_and_last_question_stay():
    messages = [{"role": "system", "content": "You are terse."}]
    for turn in range(20):
        messages += [{"role": "user", "content": f"question {turn} " * 40}, {"role": "assistant", "content": "x " * 40}]
    messages.append({"role": "user", "content": "last question"})
    body = {"model": "gpt-4o-mini", "messages": messages}

    result = truncate_history(CHAT_COMPLETIONS, body, 800)

    kept = result.body["messages"]
    assert kept[0] == messages[0] and kept[-1] == messages[-1]
    assert kept[1]["role"] == "user"  # the history restarts at a question
    assert result.dropped == len(messages) - len(kept) > 0
    assert result.tokens == estimate_openai_input_tokens(result.body).tokens <= 800
    assert "question 19" in kept[-3]["content"]  # the most recent history stayed
    assert result.body["model"] == "gpt-4o-mini"


def test_given_an_anthropic_history_with_tools_when_truncated_then_tool_use_and_result_go_together():
    messages = [{"role": "user", "content": "start " * 50}, *anthropic_tool_turn("t1")]
    messages += [{"role": "assistant", "content": "middle " * 50}, {"role": "user", "content": "q " * 50}]
    messages += [
        *anthropic_tool_turn("t2"),
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "now?"},
    ]
    body = {"model": "claude-haiku-4-5", "system": "sys", "max_tokens": 10, "messages": messages}
    budget = estimate_anthropic_input_tokens({**body, "messages": messages[-6:]}).tokens

    result = truncate_history(MESSAGES, body, budget)

    kept = result.body["messages"]
    assert kept[-1] == messages[-1] and result.body["system"] == "sys"
    _assert_pairs_whole(MESSAGES, kept)
    assert kept[0]["role"] == "user" and isinstance(kept[0]["content"], str)


def test_given_the_last_user_turn_answers_a_tool_call_when_truncated_then_the_call_stays_with_it():
    messages = [{"role": "user", "content": "old " * 200}, anthropic_tool_turn("t1")[0]]
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}, {"type": "text", "text": "go"}],
        }
    )
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": messages}

    result = truncate_history(MESSAGES, body, 300, by_length)

    assert result.body["messages"] == messages[1:]


def test_given_a_responses_history_when_truncated_then_calls_and_outputs_go_together():
    items = [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": "first " * 50},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "out " * 50},
        {"role": "assistant", "content": "answer " * 50},
        {"role": "user", "content": "second"},
    ]
    body = {"model": "gpt-5", "instructions": "be kind", "input": items}

    result = truncate_history(RESPONSES, body, len(json.dumps([items[0], items[-1]])) + 10, by_length)

    assert result.body["input"] == [items[0], items[-1]]
    assert result.body["instructions"] == "be kind"
    assert result.dropped == 5


def test_given_system_and_last_turn_alone_too_long_when_truncated_then_it_is_refused():
    body = {"model": "m", "messages": [{"role": "system", "content": "s " * 500}, {"role": "user", "content": "q"}]}

    with pytest.raises(HistoryTooLong) as refused:
        truncate_history(CHAT_COMPLETIONS, body, 100)

    assert refused.value.budget == 100 and refused.value.tokens > 100


def test_given_an_api_without_history_when_truncated_then_it_is_refused():
    with pytest.raises(ValueError, match="no history"):
        truncate_history(EMBEDDINGS, {"input": "x"}, 1)


def test_given_a_long_history_when_truncated_then_few_estimates_are_made():
    calls = []

    def counting(body: Mapping[str, Any]) -> InputEstimate:
        calls.append(1)
        return by_length(body)

    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "m" * 50} for i in range(401)]

    truncate_history(CHAT_COMPLETIONS, {"messages": messages}, 2_000, counting)

    assert len(calls) <= 12  # a binary search over 400 units, not one estimate per message


# ---- properties -------------------------------------------------------------------------------------------


@st.composite
def conversations(draw: st.DrawFn, api: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if api == CHAT_COMPLETIONS and draw(st.booleans()):
        items.append({"role": "system", "content": "system " * draw(st.integers(0, 5))})
    for turn in range(draw(st.integers(0, 8))):
        items.append({"role": "user", "content": "u" * draw(st.integers(1, 60))})
        for call in range(draw(st.integers(0, 2))):
            pair = chat_tool_turn if api == CHAT_COMPLETIONS else anthropic_tool_turn
            items += pair(f"c{turn}-{call}")
        if api == CHAT_COMPLETIONS and draw(st.integers(0, 5)) == 0:
            items.append({"role": "developer", "content": "mid-conversation instruction"})
        items.append({"role": "assistant", "content": "a" * draw(st.integers(1, 60))})
    items.append({"role": "user", "content": "last " * draw(st.integers(1, 5))})
    return items


def _assert_pairs_whole(api: str, kept: list[dict[str, Any]]) -> None:
    calls, results = set(), set()
    for item in kept:
        if api == CHAT_COMPLETIONS:
            calls |= {call["id"] for call in item.get("tool_calls") or []}
            if item["role"] == "tool":
                results.add(item["tool_call_id"])
        elif isinstance(item["content"], list):
            calls |= {b["id"] for b in item["content"] if b["type"] == "tool_use"}
            results |= {b["tool_use_id"] for b in item["content"] if b["type"] == "tool_result"}
    assert calls == results


@pytest.mark.parametrize("api", [CHAT_COMPLETIONS, MESSAGES])
@settings(max_examples=150, deadline=None)
@given(data=st.data(), budget=st.integers(20, 3_000))
def test_given_any_history_and_budget_when_truncated_then_invariants_hold(api, data, budget):
    messages = data.draw(conversations(api))
    body = {"model": "m", "messages": messages}
    pinned = [m for m in messages if m["role"] in ("system", "developer")] if api == CHAT_COMPLETIONS else []

    try:
        result = truncate_history(api, body, budget, by_length)
    except HistoryTooLong:
        floor = [*pinned, messages[-1]]
        assert by_length({"messages": floor}).tokens > budget
        return

    kept = result.body["messages"]
    assert by_length(result.body).tokens <= budget
    assert kept[-1] == messages[-1]  # the last user turn
    assert [m for m in kept if m in pinned] == pinned  # every system/developer message, in order
    _assert_pairs_whole(api, kept)
    conversation = [m for m in messages if m not in pinned]
    kept_conversation = [m for m in kept if m not in pinned]
    assert conversation[len(conversation) - len(kept_conversation) :] == kept_conversation  # the oldest went
    assert result.dropped == len(messages) - len(kept)
    if result.dropped:
        assert kept_conversation[0]["role"] == "user"
