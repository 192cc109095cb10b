"""The response cache table: answers by exact key, bounded semantic sets (moto, tables from template.yaml)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from costbrake.config import Settings
from costbrake.dal.cache import (
    MAX_ITEM_BYTES,
    AnswerForm,
    CacheUnavailable,
    ResponseCache,
)
from costbrake.dal.tables import Tables
from costbrake.local.template import create_tables, load_template
from costbrake.usage import Usage
from moto import mock_aws

NOW = 1_790_000_000
KEY = "a" * 64


@pytest.fixture
def cache_settings() -> Settings:
    return Settings(
        ledger_table="unit-LedgerTable",
        calls_table="unit-CallsTable",
        cache_table="unit-ResponseCacheTable",
        cache_semantic_entries=5,
        dynamodb_endpoint_url=None,
    )


@pytest.fixture
def cache(cache_settings: Settings) -> Iterator[ResponseCache]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), load_template(), "unit")
        yield ResponseCache(Tables.connect(cache_settings), cache_settings.cache_semantic_entries)


@pytest.fixture
def requests(cache: ResponseCache) -> list[str]:
    """The DynamoDB operations the cache's client sends."""
    seen: list[str] = []

    def record(model: Any, params: Any, **_: Any) -> None:
        seen.append(model.name)

    cache.client.meta.events.register("before-call.dynamodb", record)
    return seen


def _put(cache: ResponseCache, key: str = KEY, body: bytes = b'{"id":"chatcmpl-1"}', **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "api": "openai.chat",
        "model": "gpt-4o-mini-2024-07-18",
        "form": AnswerForm.JSON,
        "content_type": "application/json",
        "body": body,
        "usage": Usage(input_tokens=12, output_tokens=30),
        "cost_usd": Decimal("0.000123"),
        "now": NOW,
        "ttl_seconds": 600,
    }
    return cache.put("faq", key, **(fields | overrides))


def _unit(angle: float, dimensions: int = 8) -> list[float]:
    return [math.cos(angle), math.sin(angle)] + [0.0] * (dimensions - 2)


def test_given_a_stored_answer_when_looked_up_then_one_get_returns_it_whole(cache, requests):
    outcome = _put(cache)

    found = cache.get("faq", KEY, NOW + 1)

    assert outcome.stored and outcome.size_bytes < 2_000
    assert found is not None
    assert found.body == b'{"id":"chatcmpl-1"}' and found.form is AnswerForm.JSON
    assert found.model == "gpt-4o-mini-2024-07-18" and found.api == "openai.chat"
    assert found.usage == Usage(input_tokens=12, output_tokens=30)
    assert found.cost_usd == Decimal("0.000123") and found.expires_at == NOW + 600
    assert requests == ["PutItem", "GetItem"]


def test_given_a_miss_when_looked_up_then_it_costs_one_get(cache, requests):
    assert cache.get("faq", KEY, NOW) is None
    assert requests == ["GetItem"]
    assert cache.stats.gets == 1


def test_given_another_feature_when_looked_up_then_it_does_not_see_the_answer(cache):
    _put(cache)

    assert cache.get("support", KEY, NOW) is None


def test_given_an_expired_answer_not_yet_deleted_when_looked_up_then_it_is_a_miss(cache):
    _put(cache, ttl_seconds=60)

    assert cache.get("faq", KEY, NOW + 59) is not None
    assert cache.get("faq", KEY, NOW + 60) is None


def test_given_a_streamed_answer_when_stored_then_its_sse_body_is_replayable(cache):
    sse = b"".join(b'data: {"choices":[{"delta":{"content":"w%d"}}]}\n\n' % i for i in range(2_000))
    sse += b"data: [DONE]\n\n"

    outcome = _put(cache, body=sse, form=AnswerForm.SSE, content_type="text/event-stream")

    found = cache.get("faq", KEY, NOW)
    assert outcome.stored and outcome.size_bytes < len(sse) / 5  # compressed
    assert found is not None and found.form is AnswerForm.SSE and found.body == sse


def test_given_an_answer_above_the_item_limit_when_stored_then_it_is_not_cached_and_says_so(cache, requests):
    incompressible = os.urandom(MAX_ITEM_BYTES)

    outcome = _put(cache, body=incompressible)

    assert not outcome.stored and outcome.size_bytes > MAX_ITEM_BYTES
    assert "409,600" in outcome.reason
    assert requests == []  # nothing was sent
    assert cache.get("faq", KEY, NOW) is None


def test_given_a_ttl_below_one_second_when_stored_then_it_is_refused(cache):
    with pytest.raises(ValueError, match="TTL"):
        _put(cache, ttl_seconds=0)


# ---- semantic ---------------------------------------------------------------------------------------------


def test_given_similar_and_different_questions_when_searched_then_only_the_similar_one_hits(cache, requests):
    found = cache.semantic_search("faq", "scope", _unit(0.0), Decimal("0.95"), NOW)
    cache.add_semantic("faq", "scope", vector=_unit(0.0), answer_key=KEY, slot=found.free_slot, now=NOW, ttl_seconds=60)
    del requests[:]

    near = cache.semantic_search("faq", "scope", _unit(math.acos(0.97)), Decimal("0.95"), NOW + 1)
    far = cache.semantic_search("faq", "scope", _unit(math.acos(0.90)), Decimal("0.95"), NOW + 1)

    assert near.match is not None and near.match.entry.answer_key == KEY
    assert near.match.similarity == pytest.approx(0.97, abs=2e-3)
    assert far.match is None and far.compared == 1
    assert requests == ["Query", "Query"]  # one request per search


def test_given_another_scope_or_feature_when_searched_then_its_entries_are_not_seen(cache):
    cache.add_semantic("faq", "scope", vector=_unit(0.0), answer_key=KEY, slot=0, now=NOW, ttl_seconds=60)

    assert cache.semantic_search("faq", "other", _unit(0.0), Decimal("0.5"), NOW).compared == 0
    assert cache.semantic_search("support", "scope", _unit(0.0), Decimal("0.5"), NOW).compared == 0


def test_given_more_questions_than_the_bound_when_added_then_the_oldest_are_replaced_and_reads_stay_bounded(cache):
    for index in range(12):
        found = cache.semantic_entries("faq", "scope", NOW + index)
        assert len(found.entries) == min(index, 5)
        vector = _unit(index * 0.3)
        cache.add_semantic(
            "faq",
            "scope",
            vector=vector,
            answer_key=f"k{index}",
            slot=found.free_slot,
            now=NOW + index,
            ttl_seconds=600,
        )

    final = cache.semantic_entries("faq", "scope", NOW + 12)
    assert {entry.answer_key for entry in final.entries} == {f"k{i}" for i in range(7, 12)}
    assert {entry.slot for entry in final.entries} == set(range(5))
    raw = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="unit-ResponseCacheTable")
    assert raw["Count"] == 5  # the partition never grows past the bound


def test_given_expired_entries_when_read_then_they_are_ignored_and_their_slots_reused(cache):
    cache.add_semantic("faq", "scope", vector=_unit(0.0), answer_key="old", slot=0, now=NOW, ttl_seconds=60)
    cache.add_semantic("faq", "scope", vector=_unit(1.0), answer_key="new", slot=1, now=NOW + 30, ttl_seconds=600)

    found = cache.semantic_entries("faq", "scope", NOW + 61)

    assert [entry.answer_key for entry in found.entries] == ["new"]
    assert found.free_slot == 2  # unused slots first, then expired ones
    for slot in (2, 3, 4):
        cache.add_semantic(
            "faq", "scope", vector=_unit(2.0), answer_key=f"n{slot}", slot=slot, now=NOW, ttl_seconds=600
        )
    assert cache.semantic_entries("faq", "scope", NOW + 61).free_slot == 0


def test_given_a_slot_outside_the_bound_when_added_then_it_is_refused(cache):
    with pytest.raises(ValueError, match="slot"):
        cache.add_semantic("faq", "scope", vector=_unit(0.0), answer_key=KEY, slot=5, now=NOW, ttl_seconds=60)


def test_given_the_table_unreachable_when_used_then_cache_unavailable_is_raised(cache):
    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

    cache.client.meta.events.register("before-call.dynamodb", refuse)

    with pytest.raises(CacheUnavailable):
        cache.get("faq", KEY, NOW)
    with pytest.raises(CacheUnavailable):
        cache.semantic_entries("faq", "scope", NOW)
    with pytest.raises(CacheUnavailable):
        _put(cache)


def test_given_no_cache_table_when_bound_then_it_is_refused():
    with pytest.raises(ValueError, match="COSTBRAKE_CACHE_TABLE"):
        ResponseCache(Tables.connect(Settings(ledger_table="unit-L", calls_table="unit-C")), 5)


def test_given_a_ledger_when_the_cache_shares_its_connection_then_one_client_serves_both(cache_settings):
    from costbrake.wiring import stores_from_settings

    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), load_template(), "unit")
        stores = stores_from_settings(cache_settings)
        shared = ResponseCache(stores.tables, cache_settings.cache_semantic_entries)

        _put(shared)

        assert shared.client is stores.tables.client
        assert shared.get("faq", KEY, NOW) is not None
        assert stores.admin.load_settings().features == {}  # the ledger's reads still go to the ledger table
