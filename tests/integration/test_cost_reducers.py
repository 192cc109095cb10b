"""The cost reducers on the request path (issue 12), through the official SDKs: the exact and the semantic response
cache, history truncation, and what the report makes of them.

The session stack's gateway has no cache table; these tests serve a second gateway on the same ledger with the
stack's ``ResponseCacheTable`` (like ``patient_gateway`` in test_streaming.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import anthropic
import openai
import pytest
from costbrake.gateway.service import Gateway
from costbrake.records import Limits
from helpers import calls_of, open_reservations_of, user_windows

QUESTION = "How do I reset my password?"
NEAR_DUPLICATE = "How can I reset my password?"  # cosine ~0.85 with QUESTION in the mock's embeddings
UNRELATED = "How do I change my email address?"  # ~0.37


@pytest.fixture(scope="module")
def cached(stack, serve_gateway) -> Iterator[tuple[str, Gateway]]:
    """(base URL, gateway) of a gateway with the response cache, on the session stack's ledger and provider."""
    with serve_gateway(cache_table=stack.table_names["ResponseCacheTable"]) as served:
        assert served[1].response_cache is not None
        yield served


@pytest.fixture
def feature(cli, cached) -> Callable[..., str]:
    """A new feature with the given ``costbrake features set`` options, live on the cached gateway."""

    def make(*options: str) -> str:
        name = f"reducers-{uuid.uuid4().hex[:8]}"
        cli("features", "set", name, "--create", *options, "--reason", "test")
        cached[1].forget_cached()
        return name

    return make


@pytest.fixture
def gpt(cached, make_key, user_id) -> Callable[[str], openai.OpenAI]:
    return lambda feature: openai.OpenAI(
        base_url=f"{cached[0]}/v1", api_key=make_key(user_id, feature=feature), max_retries=0
    )


@pytest.fixture
def claude(cached, make_key, user_id) -> Callable[[str], anthropic.Anthropic]:
    return lambda feature: anthropic.Anthropic(
        base_url=cached[0], api_key=make_key(user_id, feature=feature), max_retries=0
    )


def provider_calls(mock, path: str = "/v1/chat/completions") -> int:
    return sum(1 for request in mock.requests if request.path == path)


def assert_books_balance(stack, user_id: str) -> None:
    """Nothing left reserved, and the user's spend is the sum of their call records."""
    assert not open_reservations_of(stack, user_id)
    spent = sum((c.cost_usd for c in calls_of(stack, user_id)), Decimal(0))
    for window in user_windows(stack, user_id):
        assert Decimal(window["reserved_usd"]) == 0, window
        assert Decimal(window["spent_usd"]) == spent, window


# ---- exact ---------------------------------------------------------------------------------------------------


def test_given_an_exact_feature_when_the_same_call_is_made_twice_then_the_second_is_a_free_hit(
    stack, mock, feature, gpt, user_id
):
    client = gpt(feature("--cache", "exact"))
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}], "temperature": 0}
    before = provider_calls(mock)

    first = client.chat.completions.with_raw_response.create(**ask, max_tokens=50)
    second = client.chat.completions.with_raw_response.create(**ask, max_tokens=50)

    assert provider_calls(mock) == before + 1
    assert first.headers["x-costbrake-cache"] == "miss"
    assert second.headers["x-costbrake-cache"] == "hit"
    assert second.headers["x-costbrake-cost-usd"] == "0"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    paid, hit = sorted(calls_of(stack, user_id), key=lambda c: c.cache_hit)
    assert (paid.cache_status, paid.cache_hit, hit.cache_status, hit.cache_hit) == ("miss", False, "hit", True)
    assert hit.cost_usd == 0 and hit.reserved_usd == 0 and paid.cost_usd > 0
    assert hit.saved_usd == paid.cost_usd == Decimal(second.headers["x-costbrake-saved-usd"])
    assert_books_balance(stack, user_id)


def test_given_cached_answers_when_the_cache_settings_change_or_are_flushed_then_they_are_not_served_again(
    cli, cached, feature, gpt
):
    name = feature("--cache", "exact", "--cache-ttl", "86400")
    client = gpt(name)

    def ask() -> str:
        return client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "What is a budget?"}],
            max_tokens=20,
            temperature=0,
        ).headers["x-costbrake-cache"]

    before = [ask(), ask()]
    cli("features", "set", name, "--cache-ttl", "60", "--reason", "too long")
    cached[1].forget_cached()
    after_ttl = [ask(), ask()]
    cli("features", "set", name, "--flush-cache", "--reason", "a wrong answer was cached")
    cached[1].forget_cached()
    after_flush = ask()

    assert before == ["miss", "hit"] and after_ttl == ["miss", "hit"] and after_flush == "miss"


def test_given_an_exact_feature_when_a_call_is_not_deterministic_or_bypasses_then_it_is_not_cached(
    stack, mock, feature, gpt, user_id
):
    client = gpt(feature("--cache", "exact"))
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 20}
    before = provider_calls(mock)

    warm = client.chat.completions.with_raw_response.create(**ask, temperature=0.7)
    again = client.chat.completions.with_raw_response.create(**ask, temperature=0.7)
    bypass = client.chat.completions.with_raw_response.create(
        **ask, temperature=0, extra_headers={"X-Costbrake-Cache": "bypass"}
    )
    allowed = [
        client.chat.completions.with_raw_response.create(
            **ask, temperature=0.7, extra_headers={"X-Costbrake-Cache": "allow"}
        )
        for _ in range(2)
    ]

    assert [r.headers["x-costbrake-cache"] for r in (warm, again, bypass)] == ["bypass"] * 3
    assert [r.headers["x-costbrake-cache"] for r in allowed] == ["miss", "hit"]
    assert provider_calls(mock) == before + 4
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**ask, extra_headers={"X-Costbrake-Cache": "sometimes"})
    assert_books_balance(stack, user_id)


def test_given_a_streamed_call_when_repeated_then_the_hit_is_replayed_as_a_stream_the_sdk_parses(
    stack, mock, feature, gpt, claude, user_id
):
    name = feature("--cache", "exact")
    client = gpt(name)
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}], "temperature": 0}
    before = provider_calls(mock)

    def streamed() -> tuple[str, str, list[openai.types.chat.ChatCompletionChunk]]:
        raw = client.chat.completions.with_raw_response.create(**ask, max_tokens=40, stream=True)
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return raw.headers["x-costbrake-cache"], text, chunks

    first, second = streamed(), streamed()
    unstreamed = client.chat.completions.with_raw_response.create(**ask, max_tokens=40)

    assert (first[0], second[0]) == ("miss", "hit")
    assert second[1] == first[1] and second[1]
    assert not any(chunk.usage for chunk in second[2]), "no usage chunk the client did not ask for"
    assert unstreamed.headers["x-costbrake-cache"] == "miss"  # a JSON answer is not replayed from a stream
    assert provider_calls(mock) == before + 2

    messages = claude(name).messages
    texts = []
    for expected in ("miss", "hit"):
        raw = messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=40,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            extra_headers={"X-Costbrake-Cache": "allow"},
        )
        assert raw.headers["x-costbrake-cache"] == expected
        events = list(raw.parse())
        texts.append("".join(e.delta.text for e in events if e.type == "content_block_delta"))
        assert events[-1].type == "message_stop"
    assert texts[0] == texts[1] and texts[0]
    assert provider_calls(mock, "/v1/messages") >= 1
    assert_books_balance(stack, user_id)


# ---- semantic ------------------------------------------------------------------------------------------------


def test_given_a_semantic_feature_when_a_near_duplicate_is_asked_then_it_hits_above_the_threshold_only(
    stack, mock, feature, gpt, user_id
):
    client = gpt(feature("--cache", "semantic", "--semantic-threshold", "0.8"))
    system = {"role": "system", "content": "You are the help desk of Example Inc."}

    def ask(question: str):
        return client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[system, {"role": "user", "content": question}], max_tokens=30
        )

    before, embeddings_before = provider_calls(mock), provider_calls(mock, "/v1/embeddings")
    first, near, unrelated = ask(QUESTION), ask(NEAR_DUPLICATE), ask(UNRELATED)

    assert [r.headers["x-costbrake-cache"] for r in (first, near, unrelated)] == ["miss", "hit", "miss"]
    assert 0.8 <= float(near.headers["x-costbrake-cache-similarity"]) < 0.95
    assert near.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert provider_calls(mock) == before + 2
    assert provider_calls(mock, "/v1/embeddings") == embeddings_before + 3
    records = calls_of(stack, user_id)
    embeddings = [c for c in records if c.cache_status == "embedding"]
    assert len(embeddings) == 3 and all(c.cost_usd > 0 and c.model.startswith("text-embedding") for c in embeddings)
    (hit,) = [c for c in records if c.cache_hit]
    assert hit.cache_similarity is not None and hit.cache_similarity >= Decimal("0.8")
    assert_books_balance(stack, user_id)


def test_given_a_semantic_feature_when_the_rate_limit_refuses_then_no_embedding_is_made(
    stack, mock, feature, cached, make_key, user_id
):
    name = feature("--cache", "semantic", "--semantic-threshold", "0.8")
    key = make_key(user_id, feature=name, limits=Limits(rpm=2, day_usd=Decimal("5")))
    client = openai.OpenAI(base_url=f"{cached[0]}/v1", api_key=key, max_retries=0)
    embeddings_before = provider_calls(mock, "/v1/embeddings")
    statuses = []

    for index in range(6):
        try:
            client.chat.completions.create(
                model="gpt-4o-mini",
                max_tokens=10,
                messages=[{"role": "user", "content": f"Question {index} on billing?"}],
            )
            statuses.append(200)
        except openai.RateLimitError:
            statuses.append(429)

    assert statuses.count(200) == 2 and statuses.count(429) == 4
    assert provider_calls(mock, "/v1/embeddings") == embeddings_before + 2  # a refused request reached nothing
    assert_books_balance(stack, user_id)


def test_given_a_strict_threshold_when_a_near_duplicate_is_asked_then_it_misses(stack, mock, feature, gpt, user_id):
    client = gpt(feature("--cache", "semantic", "--semantic-threshold", "0.95"))
    answers = [
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}], max_tokens=30
        )
        for question in (QUESTION, NEAR_DUPLICATE, QUESTION.lower().rstrip("?"))
    ]

    # The same words in another case and without punctuation embed identically: a semantic hit.
    assert [a.headers["x-costbrake-cache"] for a in answers] == ["miss", "miss", "hit"]
    assert_books_balance(stack, user_id)


# ---- truncation ----------------------------------------------------------------------------------------------


def _history(turns: int) -> list[dict]:
    filler = "budgets and forecasts and invoices " * 12
    messages: list[dict] = [{"role": "system", "content": "Be brief."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: {filler}"})
        if turn % 3 == 1:
            call_id = f"call_{turn}"
            function = {"name": "lookup", "arguments": '{"q": "x"}'}
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": call_id, "type": "function", "function": function}],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call_id, "content": f"Result {turn}: {filler}"})
        messages.append({"role": "assistant", "content": f"Answer {turn}: {filler}"})
    messages.append({"role": "user", "content": "And the last question?"})
    return messages


TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def test_given_truncation_on_when_a_history_is_above_the_cap_then_the_oldest_turns_go_and_tool_pairs_stay(
    stack, mock, feature, gpt, user_id
):
    client = gpt(feature("--truncate", "on", "--max-input-tokens", "800"))
    history = _history(12)

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=history, tools=TOOLS, max_tokens=20
    )

    dropped = int(raw.headers["x-costbrake-truncated-messages"])
    sent = [r for r in mock.requests if r.path == "/v1/chat/completions"][-1].body["messages"]
    assert dropped > 0 and len(sent) == len(history) - dropped
    assert sent[0] == history[0] and sent[-1] == history[-1]
    assert sent[1]["role"] == "user"  # the kept history starts at a question
    for index, message in enumerate(sent):
        if message["role"] == "tool":
            opener = sent[index - 1]
            assert [c["id"] for c in opener["tool_calls"]] == [message["tool_call_id"]]
        if message.get("tool_calls"):
            assert sent[index + 1]["role"] == "tool"
    (record,) = calls_of(stack, user_id)
    assert record.truncated_messages == dropped and record.estimated_input_tokens <= 800
    assert_books_balance(stack, user_id)


def test_given_truncation_off_or_a_last_turn_above_the_cap_then_the_history_is_refused(feature, gpt, claude):
    strict = gpt(feature("--max-input-tokens", "800"))
    with pytest.raises(openai.APIStatusError) as refused:
        strict.chat.completions.create(model="gpt-4o-mini", messages=_history(12), tools=TOOLS, max_tokens=20)
    assert refused.value.status_code == 413

    truncating = claude(feature("--truncate", "on", "--max-input-tokens", "200"))
    huge = "budgets " * 600
    with pytest.raises(anthropic.APIStatusError) as too_long:
        truncating.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            messages=[
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": huge},
            ],
        )
    assert too_long.value.status_code == 413 and "Truncation cannot help" in str(too_long.value)


def test_given_an_anthropic_history_with_tool_use_when_truncated_then_tool_results_stay_with_their_calls(
    stack, mock, feature, claude, user_id
):
    client = claude(feature("--truncate", "on", "--max-input-tokens", "600"))
    filler = "ledgers and reservations " * 15
    messages: list[dict] = []
    for turn in range(8):
        messages.append({"role": "user", "content": f"Q{turn} {filler}"})
        tool_id = f"toolu_{turn:02d}"
        messages.append(
            {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "lookup", "input": {}}]}
        )
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": filler}]}
        )
        messages.append({"role": "assistant", "content": f"A{turn} {filler}"})
    messages.append({"role": "user", "content": "Summarise."})
    tools = [{"name": "lookup", "description": "look up", "input_schema": {"type": "object"}}]

    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=20, system="Be brief.", messages=messages, tools=tools
    )

    dropped = int(raw.headers["x-costbrake-truncated-messages"])
    body = [r for r in mock.requests if r.path == "/v1/messages"][-1].body
    sent = body["messages"]
    assert body["system"] == "Be brief." and sent[-1] == messages[-1] and len(sent) == len(messages) - dropped
    assert sent[0]["role"] == "user" and isinstance(sent[0]["content"], str)
    for index, message in enumerate(sent):
        if isinstance(message["content"], list) and message["content"][0]["type"] == "tool_result":
            assert sent[index - 1]["content"][0]["id"] == message["content"][0]["tool_use_id"]
    assert_books_balance(stack, user_id)


# ---- the report ----------------------------------------------------------------------------------------------


def test_given_cache_traffic_when_reporting_then_the_feature_shows_its_hit_rate_and_savings(
    stack, cli, feature, gpt, user_id
):
    name = feature("--cache", "exact")
    client = gpt(name)
    for question in (QUESTION, QUESTION, QUESTION, UNRELATED):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}], temperature=0, max_tokens=20
        )
    records = calls_of(stack, user_id)
    saved = sum((c.saved_usd for c in records), Decimal(0))

    report = cli.json("report", "--days", "1")

    (row,) = [f for f in report["reducers"]["features"] if f["name"] == name]
    assert (row["lookups"], row["hits"], row["semantic_hits"]) == (4, 2, 0)
    assert Decimal(row["hit_rate"]) == Decimal("0.5")
    assert Decimal(row["saved_usd"]) == saved > 0
    assert Decimal(report["reducers"]["saved_usd"]) >= saved
    text = cli("report", "--days", "1")
    assert "Response cache and truncation by feature" in text and name in text
