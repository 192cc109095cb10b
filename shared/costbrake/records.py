"""Plain records the data-access layer returns and the domain logic works with (no PynamoDB types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from costbrake.pricing import ModelPrice  # plain frozen dataclasses; pricing imports no records
from costbrake.usage import Usage


class SwitchState(StrEnum):
    ON = "on"
    DOWNGRADE = "downgrade"
    OFF = "off"


class OverCap(StrEnum):
    """What happens to a request asking for more output tokens than its feature's cap."""

    CLAMP = "clamp"
    REFUSE = "refuse"


class CacheMode(StrEnum):
    """A feature's response cache: off, exact (identical requests), or semantic (exact, then similar last user
    turns of single-turn requests with the same model, system prompt and parameters)."""

    OFF = "off"
    EXACT = "exact"
    SEMANTIC = "semantic"


DEFAULT_CACHE_TTL_SECONDS = 3600
DEFAULT_SEMANTIC_THRESHOLD = Decimal("0.95")


@dataclass(frozen=True)
class Limits:
    """Spend limits in USD per UTC window and a request rate; None means "no limit at this level"."""

    hour_usd: Decimal | None = None
    day_usd: Decimal | None = None
    month_usd: Decimal | None = None
    rpm: int | None = None

    def overridden_by(self, other: Limits) -> Limits:
        return Limits(
            hour_usd=other.hour_usd if other.hour_usd is not None else self.hour_usd,
            day_usd=other.day_usd if other.day_usd is not None else self.day_usd,
            month_usd=other.month_usd if other.month_usd is not None else self.month_usd,
            rpm=other.rpm if other.rpm is not None else self.rpm,
        )


@dataclass(frozen=True)
class ApiKey:
    key_id: str  # short, non-secret identifier (prefix of the hash) used in records and logs
    user_id: str | None  # set for user keys: the key is bound to this end user
    service: bool  # a service key may name the end user in the request
    default_feature: str | None = None  # charged when a request names none (the first of ``features``)
    month_usd: Decimal | None = None
    revoked: bool = False
    name: str = ""
    # The features the key may charge, as the operator named them. Empty on a key made before keys listed
    # features: such a key may charge only its default feature (or "default"), the safe reading.
    features: tuple[str, ...] = ()
    any_feature: bool = False  # the operator opted out: any configured feature (or "default")
    hour_usd: Decimal | None = None
    day_usd: Decimal | None = None

    @property
    def limits(self) -> Limits:
        """The key's own spend limits (all its end users together), None where unset."""
        return Limits(self.hour_usd, self.day_usd, self.month_usd)


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    tier: str
    overrides: Limits = field(default_factory=Limits)
    blocked_until: datetime | None = None
    blocked_reason: str = ""


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what, when and why (switch flips, user blocks and tier moves)."""

    at: datetime
    actor: str
    action: str  # "switch" | "block" | "unblock" | "tier"
    old_value: str
    new_value: str
    reason: str = ""


@dataclass(frozen=True)
class Tier:
    name: str
    limits: Limits


@dataclass(frozen=True)
class Feature:
    name: str
    state: SwitchState = SwitchState.ON
    reason: str = ""
    default_max_output_tokens: int = 4096
    max_output_tokens: int = 4096
    over_cap: OverCap = OverCap.CLAMP
    max_input_tokens: int = 32_000
    month_usd: Decimal | None = None
    shards: int = 1
    # Cost reducers (issue 12), all off by default.
    cache: CacheMode = CacheMode.OFF
    cache_ttl_seconds: int = DEFAULT_CACHE_TTL_SECONDS
    semantic_threshold: Decimal = DEFAULT_SEMANTIC_THRESHOLD  # cosine similarity a semantic hit needs
    truncate: bool = False  # drop the oldest turns of a history above max_input_tokens instead of refusing it
    cache_generation: int = 0  # bumped when the cache settings change or it is flushed: stored answers retire

    @property
    def exact_cache(self) -> bool:
        """Look identical requests up (the semantic mode does too, first: a GetItem is cheaper than an embedding)."""
        return self.cache in (CacheMode.EXACT, CacheMode.SEMANTIC)

    @property
    def semantic_cache(self) -> bool:
        return self.cache is CacheMode.SEMANTIC

    def switched(self, state: SwitchState, reason: str) -> Feature:
        return replace(self, state=state, reason=reason)


@dataclass(frozen=True)
class GlobalBudget:
    month_usd: Decimal
    shards: int


@dataclass(frozen=True)
class SettingsSnapshot:
    """Operator settings that change rarely and are cached by warm gateways for a few seconds."""

    tiers: dict[str, Tier]
    features: dict[str, Feature]
    global_budget: GlobalBudget | None  # None: use the deployment's parameter
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)  # operators' overrides of the packaged table


@dataclass(frozen=True)
class CounterRef:
    """One spend (or request-rate) counter: a scope in a UTC window, optionally one shard of it."""

    scope: str  # e.g. "user#alice", "feature#chat", "global", "key#3f2a9c"
    window: str  # e.g. "h#2026-11-24T06", "d#2026-11-24", "m#2026-11", "rpm#2026-11-24T06:52"
    shard: int | None = None

    @property
    def pk(self) -> str:
        return f"ctr#{self.scope}" if self.shard is None else f"ctr#{self.scope}#{self.shard}"


@dataclass(frozen=True)
class Charge:
    """Reserve ``amount`` on ``counter`` only if the counter stays within ``limit``."""

    counter: CounterRef
    limit: Decimal
    amount: Decimal
    expires_at: int  # epoch seconds after which the counter item may be deleted (TTL)


@dataclass(frozen=True)
class RateCharge:
    counter: CounterRef
    limit: int
    expires_at: int


@dataclass(frozen=True)
class CounterState:
    committed: Decimal  # settled spend plus open reservations: what limits are checked against
    spent: Decimal  # settled spend only
    calls: int


@dataclass(frozen=True)
class CallRecord:
    request_id: str
    timestamp: datetime
    user_id: str
    feature: str
    key_id: str
    provider: str
    model_requested: str
    model: str  # the model that served (or would have served)
    status: str  # "ok" | "error"
    http_status: int
    cost_usd: Decimal
    reserved_usd: Decimal
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    estimated_input_tokens: int
    max_output_tokens: int
    usage_estimated: bool
    finish_reason: str | None
    truncated: bool
    stream: bool
    downgraded_from: str | None
    system_prompt_sha256: str | None
    latency_ms: int
    error: str | None = None
    # Cost reducers (issue 12). ``cache_status``: None when the feature does not cache; "hit" (served from the
    # response cache, cost 0), "miss" (looked up, then called), "bypass" (not eligible: the client's
    # X-Costbrake-Cache, a non-deterministic request, ...), "embedding" (the semantic cache's embedding call).
    cache_hit: bool = False
    saved_usd: Decimal = Decimal(0)  # what the cached answer cost when it was made: what serving it saved
    truncated_messages: int = 0  # history messages (Responses input items) dropped to fit the input cap
    cache_status: str | None = None
    cache_similarity: Decimal | None = None  # a semantic hit's cosine similarity
    # Server-side web searches billed per use: their fees are in cost_usd, but providers report them apart
    # from the model's tokens (reconciliation).
    web_search_requests: int = 0


# ---- the response cache (issue 12) --------------------------------------------------------------------


class AnswerForm(StrEnum):
    JSON = "json"  # a non-streamed answer: the provider's JSON body
    SSE = "sse"  # a streamed answer: the complete SSE body, replayed event by event


@dataclass(frozen=True)
class CachedAnswer:
    api: str
    model: str  # the model that served it
    form: AnswerForm
    content_type: str
    body: bytes  # the JSON body, or the complete SSE body (``form``)
    usage: Usage
    cost_usd: Decimal  # what the original call cost: what serving it again saves
    created_at: int  # epoch seconds
    expires_at: int
