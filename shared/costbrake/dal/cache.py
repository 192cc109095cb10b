"""The response cache (issue 12): answers by exact request key, and a bounded set of recent questions' vectors
per semantic scope. One DynamoDB table (``ResponseCacheTable``: pk/sk, TTL ``expires_at``).

Items:

- Answer: pk ``answer#<feature>#<request key>``, sk ``answer``. The provider's answer as the client got it
  (``form`` json: the JSON body; ``form`` sse: the complete SSE body of a streamed answer), zlib-compressed,
  with the serving model, usage and the cost it saved. A lookup is one GetItem (eventually consistent: half a
  read unit per 4 KB). An answer whose item would pass DynamoDB's 400 KB limit is not stored (``StoreOutcome``
  says so).
- Semantic entry: pk ``semantic#<feature>#<scope>``, sk ``slot#0000`` ... ``slot#<N-1>`` (N =
  ``cache_semantic_entries``): a normalised float16 vector and the request key of its answer. A partition holds
  at most N slots by construction: a new entry takes a free (or expired) slot, else the oldest entry's, with a
  PutItem (no delete needed). A search is one Query bounded to those N sort keys: its reads and CPU are
  bounded by N x dimensions whatever the traffic. Two concurrent adds may take the same slot: one entry is
  lost, which costs a hit, never a wrong answer.

Both expire with the feature's ``cache_ttl_seconds`` (TTL deletion lags: expired items are ignored when read).
Failures raise ``CacheUnavailable``: the gateway treats it as a miss (and does not store), never as an error.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from costbrake.dal.models import DecimalAttribute
from costbrake.dal.tables import Tables, key, unavailable
from costbrake.records import AnswerForm, CachedAnswer
from costbrake.reducers.semantic import InvalidVector, Match, SemanticEntry, best_match, decode_vector, encode_vector
from costbrake.usage import Usage

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit (names and values)
ITEM_OVERHEAD_BYTES = 1024  # allowance for the item's keys, attribute names and small values
MIN_TTL_SECONDS = 1


class CacheUnavailable(Exception):
    """The cache table could not be read or written: a miss for the gateway, logged, never a failed call."""


class _CacheMeta:
    table_name = "response-cache"  # schema only: requests go to the ``Tables`` a cache is built with


class _CacheModel(Model):
    TEMPLATE_TABLE = "ResponseCacheTable"

    class Meta(_CacheMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class AnswerItem(_CacheModel):
    class Meta(_CacheMeta):
        pass

    api = UnicodeAttribute()
    model = UnicodeAttribute()
    form = UnicodeAttribute()
    content_type = UnicodeAttribute()
    payload = BinaryAttribute(legacy_encoding=False)  # zlib of the body
    usage = UnicodeAttribute()  # JSON of costbrake.usage.Usage
    cost_usd = DecimalAttribute()  # what the call cost: what each hit saves
    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # TTL


class SemanticItem(_CacheModel):
    class Meta(_CacheMeta):
        pass

    vector = BinaryAttribute(legacy_encoding=False)  # normalised, little-endian float16
    answer_key = UnicodeAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # TTL


CACHE_MODELS: tuple[type[Model], ...] = (AnswerItem, SemanticItem)


def answer_pk(feature: str, request_key: str) -> str:
    return f"answer#{feature}#{request_key}"


def semantic_pk(feature: str, scope: str) -> str:
    return f"semantic#{feature}#{scope}"


def slot_key(slot: int) -> str:
    return f"slot#{slot:04d}"


@dataclass(frozen=True)
class StoreOutcome:
    stored: bool
    size_bytes: int  # the item's size (compressed body and the rest), stored or not
    reason: str = ""  # why it was not stored


@dataclass(frozen=True)
class SemanticSet:
    """One scope's live entries (at most the bound) and the slot the next entry should take."""

    entries: list[SemanticEntry]
    free_slot: int


@dataclass(frozen=True)
class SemanticSearch:
    match: Match | None  # the most similar entry at or above the threshold
    free_slot: int  # for ``add_semantic`` after a miss
    compared: int  # entries compared (bounded by the per-scope bound)


@dataclass
class CacheStats:
    """DynamoDB requests made (for benchmarks and logs)."""

    gets: int = 0
    queries: int = 0
    puts: int = 0


class ResponseCache:
    def __init__(self, tables: Tables, max_semantic_entries: int) -> None:
        if not tables.cache:
            raise ValueError("no response cache table configured (COSTBRAKE_CACHE_TABLE)")
        self.tables = tables
        self._table = tables.cache
        self.max_semantic_entries = max_semantic_entries
        self.stats = CacheStats()

    @property
    def client(self) -> Any:
        """The botocore client (instrumentation and fault injection in tests)."""
        return self.tables.client

    # ---- exact ----------------------------------------------------------------------------------

    def get(self, feature: str, request_key: str, now: int) -> CachedAnswer | None:
        """The live answer stored under ``request_key`` for ``feature``, or None. One GetItem."""
        self.stats.gets += 1
        with unavailable("the response cache could not be read", CacheUnavailable):
            item = self.tables.get(self._table, AnswerItem, key(answer_pk(feature, request_key), "answer"))
        if item is None or int(item.expires_at) <= now:
            return None
        try:
            return CachedAnswer(
                api=item.api,
                model=item.model,
                form=AnswerForm(item.form),
                content_type=item.content_type,
                body=zlib.decompress(item.payload),
                usage=_usage(item.usage),
                cost_usd=item.cost_usd,
                created_at=int(item.created_at),
                expires_at=int(item.expires_at),
            )
        except (ValueError, TypeError, zlib.error):
            return None  # written by another version or damaged: a miss, overwritten by the next store

    def put(
        self,
        feature: str,
        request_key: str,
        *,
        api: str,
        model: str,
        form: AnswerForm,
        content_type: str,
        body: bytes,
        usage: Usage,
        cost_usd: Decimal,
        now: int,
        ttl_seconds: int,
    ) -> StoreOutcome:
        """Store an answer for ``ttl_seconds``; not stored (said in the outcome) when its item would pass
        DynamoDB's item limit. One PutItem (overwriting an earlier answer under the same key)."""
        if ttl_seconds < MIN_TTL_SECONDS:
            raise ValueError(f"a cache TTL must be at least {MIN_TTL_SECONDS} second(s)")
        payload = zlib.compress(body, 6)
        usage_json = json.dumps(asdict(usage), sort_keys=True, separators=(",", ":"))
        pk = answer_pk(feature, request_key)
        texts = (pk, api, model, form.value, content_type, usage_json, format(cost_usd, "f"))
        size = len(payload) + sum(len(text.encode()) for text in texts) + ITEM_OVERHEAD_BYTES
        if size > MAX_ITEM_BYTES:
            return StoreOutcome(
                False,
                size,
                f"the answer is {size:,} bytes compressed; DynamoDB items hold at most {MAX_ITEM_BYTES:,}",
            )
        item = AnswerItem(
            pk,
            "answer",
            api=api,
            model=model,
            form=form.value,
            content_type=content_type,
            payload=payload,
            usage=usage_json,
            cost_usd=cost_usd,
            created_at=now,
            expires_at=now + ttl_seconds,
        )
        self._save(item)
        return StoreOutcome(True, size)

    # ---- semantic -------------------------------------------------------------------------------

    def semantic_entries(self, feature: str, scope: str, now: int) -> SemanticSet:
        """The scope's live entries and the slot for the next one. One Query of at most the bound's items."""
        bound = self.max_semantic_entries
        self.stats.queries += 1
        entries: list[SemanticEntry] = []
        expired: list[int] = []
        condition = (SemanticItem.pk == semantic_pk(feature, scope)) & (SemanticItem.sk < slot_key(bound))
        with unavailable("the semantic cache could not be read", CacheUnavailable):
            for item in self.tables.query(self._table, SemanticItem, condition, limit=bound, page_size=bound):
                slot = _slot_of(item.sk)
                if slot is None:
                    continue
                if int(item.expires_at) <= now:
                    expired.append(slot)
                    continue
                try:
                    vector = decode_vector(item.vector)
                except InvalidVector:
                    expired.append(slot)  # damaged: reuse its slot
                    continue
                entries.append(SemanticEntry(vector, item.answer_key, int(item.created_at), slot))
        return SemanticSet(entries, _free_slot(entries, expired, bound))

    def semantic_search(
        self, feature: str, scope: str, query: list[float], threshold: Decimal, now: int
    ) -> SemanticSearch:
        """The scope's entry most similar to ``query`` at or above ``threshold`` (one Query, bounded CPU)."""
        found = self.semantic_entries(feature, scope, now)
        return SemanticSearch(best_match(query, found.entries, threshold), found.free_slot, len(found.entries))

    def add_semantic(
        self,
        feature: str,
        scope: str,
        *,
        vector: list[float],
        answer_key: str,
        slot: int,
        now: int,
        ttl_seconds: int,
    ) -> None:
        """Keep a question's vector in ``slot`` (``SemanticSearch.free_slot``) pointing at its stored answer.
        One PutItem. Add only after the answer was stored (``StoreOutcome.stored``)."""
        if not 0 <= slot < self.max_semantic_entries:
            raise ValueError(f"slot {slot} is outside 0..{self.max_semantic_entries - 1}")
        if ttl_seconds < MIN_TTL_SECONDS:
            raise ValueError(f"a cache TTL must be at least {MIN_TTL_SECONDS} second(s)")
        item = SemanticItem(
            semantic_pk(feature, scope),
            slot_key(slot),
            vector=encode_vector(vector),
            answer_key=answer_key,
            created_at=now,
            expires_at=now + ttl_seconds,
        )
        self._save(item)

    def _save(self, item: Model) -> None:
        self.stats.puts += 1
        with unavailable("the response cache could not be written", CacheUnavailable):
            self.tables.put(self._table, item)


def _slot_of(sort_key: str) -> int | None:
    digits = sort_key.removeprefix("slot#")
    return int(digits) if digits.isdigit() else None


def _free_slot(entries: list[SemanticEntry], expired: list[int], bound: int) -> int:
    """An unused slot (lowest first), else an expired one, else the oldest entry's."""
    used = {entry.slot for entry in entries} | set(expired)
    unused = next((slot for slot in range(bound) if slot not in used), None)
    if unused is not None:
        return unused
    if expired:
        return min(expired)
    return min(entries, key=lambda entry: (entry.created_at, entry.slot)).slot


def _usage(text: str) -> Usage:
    known = {field.name for field in fields(Usage)}
    stored: Mapping[str, Any] = json.loads(text)
    return Usage(**{name: value for name, value in stored.items() if name in known})
