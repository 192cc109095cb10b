"""The cost reducers in a report (issue 12): the response cache's hit rate and savings per feature (exact and
semantic), what its semantic embeddings cost, and the histories truncated to a feature's input cap (pure).

Definitions (from the call records, ``CallRecord.cache_status``):

- a *lookup* is a call the response cache could answer: a hit or a miss (``bypass`` calls were not eligible);
- the *hit rate* is hits / lookups; a *semantic* hit is one served by similarity (it has a similarity);
- *saved* is what the cached answers cost when they were made (what the hits would have cost again); *net* is
  saved minus the semantic cache's embedding calls (real spend, recorded with ``cache_status`` "embedding").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from costbrake.formatting import percent, usd
from costbrake.records import CallRecord

CACHE_HELPFUL_FROM = Decimal("0.20")  # a lower hit rate means the response cache is not helping the feature...
CACHE_MIN_LOOKUPS = 100  # ...once it has had this many lookups to judge by
RATIO_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class FeatureReducers:
    name: str
    lookups: int  # hits + misses
    hits: int
    semantic_hits: int
    bypassed: int  # calls of a caching feature that were not eligible
    hit_rate: Decimal | None
    saved_usd: Decimal
    semantic_saved_usd: Decimal
    embedding_calls: int
    embedding_usd: Decimal
    net_saved_usd: Decimal
    truncated_calls: int  # calls whose history was truncated to the input cap
    truncated_messages: int

    @property
    def exact_hits(self) -> int:
        return self.hits - self.semantic_hits


@dataclass(frozen=True)
class CostReducers:
    lookups: int
    hits: int
    hit_rate: Decimal | None
    saved_usd: Decimal
    embedding_usd: Decimal
    net_saved_usd: Decimal
    truncated_calls: int
    features: tuple[FeatureReducers, ...] = ()  # features with a lookup, an embedding or a truncation


def reducers_of(calls: Iterable[CallRecord]) -> CostReducers:
    by_feature: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        if call.cache_status is not None or call.truncated_messages:
            by_feature[call.feature].append(call)
    features = tuple(sorted((_feature(name, group) for name, group in by_feature.items()), key=_most_saved))
    lookups, hits = sum(f.lookups for f in features), sum(f.hits for f in features)
    saved = sum((f.saved_usd for f in features), Decimal(0))
    embedding = sum((f.embedding_usd for f in features), Decimal(0))
    return CostReducers(
        lookups=lookups,
        hits=hits,
        hit_rate=_ratio(hits, lookups),
        saved_usd=saved,
        embedding_usd=embedding,
        net_saved_usd=saved - embedding,
        truncated_calls=sum(f.truncated_calls for f in features),
        features=features,
    )


def _feature(name: str, calls: Sequence[CallRecord]) -> FeatureReducers:
    hits = [c for c in calls if c.cache_hit]
    semantic = [c for c in hits if c.cache_similarity is not None]
    misses = sum(1 for c in calls if c.cache_status == "miss")
    embeddings = [c for c in calls if c.cache_status == "embedding"]
    saved = sum((c.saved_usd for c in hits), Decimal(0))
    embedding_usd = sum((c.cost_usd for c in embeddings), Decimal(0))
    truncated = [c for c in calls if c.truncated_messages]
    return FeatureReducers(
        name=name,
        lookups=len(hits) + misses,
        hits=len(hits),
        semantic_hits=len(semantic),
        bypassed=sum(1 for c in calls if c.cache_status == "bypass"),
        hit_rate=_ratio(len(hits), len(hits) + misses),
        saved_usd=saved,
        semantic_saved_usd=sum((c.saved_usd for c in semantic), Decimal(0)),
        embedding_calls=len(embeddings),
        embedding_usd=embedding_usd,
        net_saved_usd=saved - embedding_usd,
        truncated_calls=len(truncated),
        truncated_messages=sum(c.truncated_messages for c in truncated),
    )


def unhelpful_caches(reducers: CostReducers) -> tuple[FeatureReducers, ...]:
    """Features whose response cache is not helping: a hit rate below CACHE_HELPFUL_FROM after at least
    CACHE_MIN_LOOKUPS lookups (each miss costs a read; a semantic miss an embedding too)."""
    return tuple(
        f
        for f in reducers.features
        if f.lookups >= CACHE_MIN_LOOKUPS and f.hit_rate is not None and f.hit_rate < CACHE_HELPFUL_FROM
    )


def cache_advice(feature: FeatureReducers) -> str:
    rate = feature.hit_rate or Decimal(0)
    embedding = f", and its embeddings cost {usd(feature.embedding_usd)}" if feature.embedding_calls else ""
    return (
        f"The response cache of feature '{feature.name}' is not helping: {percent(rate)} hits over "
        f"{feature.lookups} lookups (below {percent(CACHE_HELPFUL_FROM)} after {CACHE_MIN_LOOKUPS}){embedding}; "
        f"turn caching off: costbrake features set {feature.name} --cache off."
    )


def _ratio(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATIO_PLACES) if whole else None


def _most_saved(feature: FeatureReducers) -> tuple[Decimal, str]:
    return (-feature.net_saved_usd, feature.name)
