"""What the gateway knows of one call, from its plan to its settlement (plain values, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.budgets import BudgetLine
from costbrake.gateway.bounds import CallBounds
from costbrake.pricing import ModelPrice, PriceTable
from costbrake.records import (
    AnswerForm,
    ApiKey,
    Charge,
    CounterRef,
    CounterState,
    Feature,
    SettingsSnapshot,
    UserProfile,
)
from costbrake.usage import Usage


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    user_id: str


@dataclass(frozen=True)
class UserView:
    profile: UserProfile | None
    counters: dict[CounterRef, CounterState]


@dataclass(frozen=True)
class CallContext:
    request_id: str
    received_at: datetime
    started: float  # monotonic, for the latency


@dataclass(frozen=True)
class Reservation:
    view: UserView
    lines: list[BudgetLine]
    charges: list[Charge]
    amount: Decimal  # reserved on every line: the worst case of the (maybe clamped) call
    clamped_output_tokens: int | None  # the output bound the budget's room lowered the request's to


@dataclass(frozen=True)
class PlannedCall:
    """Everything decided before money is reserved."""

    provider: str
    api: str  # providers.base: CHAT_COMPLETIONS, RESPONSES, EMBEDDINGS, MESSAGES
    body: dict[str, Any]  # what goes upstream
    caller: Caller
    feature: Feature
    model_requested: str
    price: ModelPrice
    downgraded_from: str | None
    bounds: CallBounds
    worst_case_usd: Decimal
    stream: bool
    system_prompt_sha256: str | None
    prices: PriceTable  # the table the call was planned with (packaged + the snapshot's overrides)
    provider_key: str
    forwarded_headers: dict[str, str]  # the client's anthropic-version / anthropic-beta
    truncated_messages: int = 0  # history messages dropped to fit the feature's input cap (``truncate`` on)


@dataclass(frozen=True)
class CacheLookup:
    """What the response cache does for one call of a caching feature, decided before anything is reserved."""

    eligible: bool  # False: neither looked up nor stored ("bypass": the client asked, or not deterministic)
    reason: str
    form: AnswerForm  # what a stored answer must be to be replayed (a stream replays only a stream)
    answer_key: str | None  # the exact key of the upstream body (with its form)
    semantic_text: str | None  # the last user turn to embed (semantic features, single-turn text requests)
    semantic_scope: str | None  # the scope its vector is compared in (with its form)


@dataclass(frozen=True)
class PreparedCall:
    """A call authenticated and planned, nothing reserved yet: the response cache may still answer it."""

    plan: PlannedCall
    snapshot: SettingsSnapshot
    context: CallContext
    headers: Mapping[str, str]
    cache: CacheLookup | None  # None: the feature does not cache (or the deployment has no cache table)
    counted: bool = False  # its request of the user's rate limit is counted already (before a semantic lookup)


@dataclass(frozen=True)
class FreeCall:
    """A call the provider does not bill (count_tokens), admitted after its one request of the rate limit."""

    api: str
    body: dict[str, Any]
    caller: Caller
    request_id: str
    provider_key: str
    forwarded_headers: dict[str, str]


@dataclass
class AdmittedCall:
    """A call whose worst case is reserved, on its way to being settled exactly once."""

    plan: PlannedCall
    reservation: Reservation
    context: CallContext
    sent: bool = False  # the request may have reached the provider
    settled: bool = False
    cache: CacheLookup | None = None  # store the answer under ``cache.answer_key`` once it is complete
    cache_status: str | None = None  # for the call record (``CallRecord.cache_status``)
    semantic_vector: list[float] | None = None  # the question's vector, added to the scope after a store
    semantic_slot: int = 0  # the scope's slot it takes

    @property
    def request_id(self) -> str:
        return self.context.request_id

    @property
    def bounds(self) -> CallBounds:
        clamped = self.reservation.clamped_output_tokens
        return self.plan.bounds if clamped is None else self.plan.bounds.with_max_output(clamped)

    @property
    def upstream_body(self) -> dict[str, Any]:
        if self.reservation.clamped_output_tokens is None:
            return self.plan.body
        body = dict(self.plan.body)
        self.bounds.apply(body)
        return body

    @property
    def worst_case(self) -> Decimal:
        return self.reservation.amount

    @property
    def worst_usage(self) -> Usage:
        return Usage(input_tokens=self.bounds.input_tokens, output_tokens=self.bounds.output_tokens, estimated=True)
