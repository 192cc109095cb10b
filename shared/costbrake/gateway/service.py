"""The hot path: authenticate, bound, reserve, call the provider, settle, answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from costbrake.budget_view import budget_status
from costbrake.budgets import BudgetLine, budget_lines, rate_charge
from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal.cache import ResponseCache
from costbrake.dal.calls import CallStore
from costbrake.dal.spend import ReservationInfo, SpendStore
from costbrake.errors import (
    NotFound,
    RateLimited,
    UserBlocked,
)
from costbrake.gateway.auth import authenticate
from costbrake.gateway.cache import TtlCache
from costbrake.gateway.calls import (
    AdmittedCall,
    CallContext,
    Caller,
    FreeCall,
    PlannedCall,
    PreparedCall,
    Reservation,
    UserView,
)
from costbrake.gateway.planner import FORWARDED_HEADERS, REQUEST_MODELS, plan_call, refuse_switched_off, served_by
from costbrake.gateway.provider_keys import ProviderKeys
from costbrake.gateway.reducers import cache_lookup, hit_record
from costbrake.gateway.requests import (
    parse_json_body,
    validate,
)
from costbrake.gateway.reservation import CallCost, Reserver
from costbrake.policy import caller_user_id, end_user, global_budget, resolve_feature, user_limits
from costbrake.pricing import PriceTable
from costbrake.providers import adapter_for
from costbrake.providers.base import (
    ANTHROPIC,
    EMBEDDINGS,
    OPENAI,
    ProviderAdapter,
)
from costbrake.records import (
    ApiKey,
    CachedAnswer,
    CallRecord,
    OverCap,
    RateCharge,
    SettingsSnapshot,
    UserProfile,
)
from costbrake.windows import WindowSpan

logger = Logger(child=True)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        spend: SpendStore,
        calls: CallStore,
        prices: PriceTable,
        clock: Clock,
        provider_keys: ProviderKeys,
        base_urls: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        response_cache: ResponseCache | None = None,
    ) -> None:
        self.settings = settings
        self.response_cache = response_cache  # None: nothing is cached (no cache table)
        self.spend = spend
        self.calls = calls
        self.prices = prices
        self.clock = clock
        self._provider_keys = provider_keys
        self._base_urls = dict(base_urls or {OPENAI: settings.openai_base_url, ANTHROPIC: settings.anthropic_base_url})
        self._monotonic = monotonic
        self._reserver = Reserver(spend, clock, settings.budget_wait_seconds, sleep, monotonic)
        ttl = settings.settings_cache_seconds
        self._keys: TtlCache[ApiKey | None] = TtlCache(clock, ttl)
        self._settings_cache: TtlCache[SettingsSnapshot] = TtlCache(clock, ttl)
        self._users: TtlCache[UserView] = TtlCache(clock, ttl)
        self._priced: tuple[SettingsSnapshot, PriceTable] | None = None

    # ---- cached reads -------------------------------------------------------------------------

    def forget_cached(self) -> None:
        """Drop cached keys, users and settings: the next call reads the ledger (tests, after operator changes)."""
        for cache in (self._keys, self._settings_cache, self._users):
            cache.clear()

    def authenticate(self, headers: Mapping[str, str]) -> ApiKey:
        return authenticate(headers, lambda digest: self._keys.get(digest, lambda: self.spend.get_key(digest)))

    def snapshot(self) -> SettingsSnapshot:
        return self._settings_cache.get("settings", self.spend.load_settings)

    def price_table(self, snapshot: SettingsSnapshot) -> PriceTable:
        """The packaged prices with the snapshot's overrides, merged once per snapshot (not per request)."""
        if not snapshot.prices:
            return self.prices
        priced = self._priced
        if priced is None or priced[0] is not snapshot:
            priced = (snapshot, self.prices.with_overrides(snapshot.prices.values()))
            self._priced = priced
        return priced[1]

    def _user_view(self, user_id: str, lines: list[BudgetLine]) -> UserView:
        refs = [ref for line in lines for ref in line.counters()]

        def load() -> UserView:
            profile, counters = self.spend.get_user_and_counters(user_id, refs)
            return UserView(profile, counters)

        view = self._users.get((user_id, tuple(refs)), load)
        return view

    # ---- endpoints ----------------------------------------------------------------------------

    def admit(
        self, api: str, raw_body: bytes | str | None, headers: Mapping[str, str], request_id: str
    ) -> AdmittedCall:
        """Authenticate, bound and reserve a call to ``api`` (``providers.base.RESPONSES`` …; a provider's name
        stands for its chat API): from here it must be settled exactly once (``Settler``)."""
        return self.reserve(self.prepare(api, raw_body, headers, request_id))

    def prepare(
        self, api: str, raw_body: bytes | str | None, headers: Mapping[str, str], request_id: str
    ) -> PreparedCall:
        """Authenticate and plan a call (bounds, downgrade, truncation, what the response cache does); nothing
        is reserved: a cache hit is served from here (``record_hit``), anything else goes on to ``reserve``."""
        started = self._monotonic()
        now = self.clock.now()
        key = self.authenticate(headers)
        body = parse_json_body(raw_body, self.settings.max_body_bytes)
        snapshot = self.snapshot()
        plan = self._plan(adapter_for(api), body, headers, key, snapshot)
        lookup = cache_lookup(self.settings, plan.feature, plan.api, plan.body, headers, plan.stream)
        if self.response_cache is None:
            lookup = None
        return PreparedCall(plan, snapshot, CallContext(request_id, now, started), headers, lookup)

    def reserve(self, prepared: PreparedCall, *, count_request: bool = True) -> AdmittedCall:
        """Reserve a prepared call's worst case: from here it must be settled exactly once (``Settler``)."""
        context = prepared.context
        count_request = count_request and not prepared.counted
        reservation = self._reserve(
            prepared.plan, prepared.snapshot, context.received_at, context.request_id, count_request
        )
        return AdmittedCall(prepared.plan, reservation, context, cache=prepared.cache)

    def prepare_embedding(self, prepared: PreparedCall, text: str, request_id: str) -> PreparedCall:
        """The semantic cache's embedding of ``text``: a billed call of the same feature and user, planned like
        a client's embeddings request (bounded; reserved by ``reserve(..., count_request=False)``: the client's
        call counts one request of the rate limit, its embedding none)."""
        body = {
            "model": self.settings.cache_embedding_model,
            "input": text,
            "dimensions": self.settings.cache_embedding_dimensions,
            "encoding_format": "float",
        }
        plan = self._plan(adapter_for(EMBEDDINGS), body, prepared.headers, prepared.plan.caller.key, prepared.snapshot)
        plan = replace(plan, caller=prepared.plan.caller, forwarded_headers={})
        context = CallContext(request_id, self.clock.now(), self._monotonic())
        return PreparedCall(plan, prepared.snapshot, context, prepared.headers, None)

    def record_hit(self, prepared: PreparedCall, answer: CachedAnswer, similarity: float | None) -> CallRecord:
        """A call answered from the response cache: charged nothing, counted as one request of the user's rate
        limit (a blocked user is refused as ever), recorded with what it saved."""
        rate = None if prepared.counted else self._rate_of(prepared)
        latency_ms = int((self._monotonic() - prepared.context.started) * 1000)
        record = hit_record(prepared, answer, similarity, latency_ms)
        if not self.spend.record_free_call(record, rate[0] if rate else None):
            assert rate is not None
            raise self._rate_limited(rate)
        return record

    def count_request(self, prepared: PreparedCall) -> PreparedCall:
        """Count the call's request of the user's rate limit now, before anything it causes is spent (the
        semantic cache's embedding): a rate-limited or blocked caller reaches no provider."""
        rate = self._rate_of(prepared)
        if rate is not None and not self.spend.count_request(prepared.context.request_id, rate[0]):
            raise self._rate_limited(rate)
        return replace(prepared, counted=True)

    def _rate_of(self, prepared: PreparedCall) -> tuple[RateCharge, WindowSpan] | None:
        """The user's requests-per-minute charge of a prepared call (a blocked user is refused here)."""
        plan, now = prepared.plan, prepared.context.received_at
        user_id = plan.caller.user_id
        profile = self._user_view(user_id, []).profile
        _refuse_blocked(user_id, profile, now)
        return rate_charge(user_id, user_limits(self.settings, prepared.snapshot, profile).rpm, now)

    def _rate_limited(self, rate: tuple[RateCharge, WindowSpan]) -> RateLimited:
        return RateLimited(
            f"Rate limit reached: {rate[0].limit} requests per minute for this user.",
            retry_after=rate[1].seconds_left(self.clock.now()),
            scope="user",
            window="minute",
        )

    def admit_free(
        self, api: str, raw_body: bytes | str | None, headers: Mapping[str, str], request_id: str
    ) -> FreeCall:
        """A call the provider does not bill (count_tokens): authenticated, validated, checked against the
        feature's switch and the user's block, and counted as one request of the user's rate limit; nothing
        is reserved or settled."""
        now = self.clock.now()
        key = self.authenticate(headers)
        body = parse_json_body(raw_body, self.settings.max_body_bytes)
        adapter = adapter_for(api)
        request = validate(REQUEST_MODELS[adapter.api], body)
        snapshot = self.snapshot()
        served_by(adapter, self.price_table(snapshot).get(request.model))  # an unknown or OpenAI model: 400
        caller = self._caller(key, None)
        refuse_switched_off(resolve_feature(self.settings, snapshot, headers, key))
        profile = self._user_view(caller.user_id, []).profile
        _refuse_blocked(caller.user_id, profile, now)
        provider_key = self._provider_keys.key_for(adapter.name)  # before the request is counted
        rate = rate_charge(caller.user_id, user_limits(self.settings, snapshot, profile).rpm, now)
        if rate is not None and not self.spend.count_request(request_id, rate[0]):
            raise self._rate_limited(rate)
        forwarded = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
        return FreeCall(adapter.api, body, caller, request_id, provider_key, forwarded)

    def call_record(self, headers: Mapping[str, str], request_id: str) -> CallRecord:
        """A call's record, for the key that made it (or any key of the same user)."""
        key = self.authenticate(headers)
        record = self.calls.get_call(request_id)
        if record is None or not (record.key_id == key.key_id or (key.user_id and record.user_id == key.user_id)):
            raise NotFound(f"No call '{request_id}' was made with this key.")
        return record

    def budget(self, headers: Mapping[str, str], user_id: str | None) -> dict[str, Any]:
        key = self.authenticate(headers)
        caller = self._caller(key, end_user(user_id, "user"))
        feature = resolve_feature(self.settings, self.snapshot(), headers, key)
        return budget_status(self.spend, self.settings, self.clock.now(), caller.user_id, feature.name, key)

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": price.model, "object": "model", "owned_by": price.provider, "created": 0}
                for price in self.price_table(self.snapshot()).models()
            ],
        }

    # ---- steps of a call ----------------------------------------------------------------------

    def _caller(self, key: ApiKey, named_user: str | None) -> Caller:
        """``named_user``: the canonical end-user id the request names (``policy.end_user``), if any."""
        return Caller(key, caller_user_id(key, named_user))

    def _plan(
        self,
        adapter: ProviderAdapter,
        body: dict[str, Any],
        headers: Mapping[str, str],
        key: ApiKey,
        snapshot: SettingsSnapshot,
    ) -> PlannedCall:
        prices = self.price_table(snapshot)
        return plan_call(self.settings, adapter, body, headers, key, snapshot, prices, self._provider_keys.key_for)

    def _reserve(
        self, plan: PlannedCall, snapshot: SettingsSnapshot, now: datetime, request_id: str, count_request: bool
    ) -> Reservation:
        user_id = plan.caller.user_id
        # The profile decides the limits, so read it first (cached), then plan the windows.
        provisional = budget_lines(
            user_id=user_id,
            user_limits=user_limits(self.settings, snapshot, None),
            feature=plan.feature,
            key=plan.caller.key,
            global_budget=global_budget(self.settings, snapshot),
            now=now,
        )
        view = self._user_view(user_id, provisional)
        profile = view.profile
        _refuse_blocked(user_id, profile, now)
        limits = user_limits(self.settings, snapshot, profile)
        lines = budget_lines(
            user_id=user_id,
            user_limits=limits,
            feature=plan.feature,
            key=plan.caller.key,
            global_budget=global_budget(self.settings, snapshot),
            now=now,
        )
        bounds = plan.bounds

        def worst_case(max_output: int) -> Decimal:
            return bounds.with_max_output(max_output).worst_case_usd(plan.price)

        clamps = plan.feature.over_cap is OverCap.CLAMP
        cost = CallCost(
            of_output=worst_case,
            max_output_tokens=bounds.max_output_tokens,
            min_output_tokens=bounds.clamp_floor(plan.body) if clamps else bounds.max_output_tokens,
        )
        info = ReservationInfo(
            request_id=request_id,
            user_id=user_id,
            feature=plan.feature.name,
            model=plan.price.model,
            created_at=now,
            release_after=int(now.timestamp()) + self.settings.reservation_ttl_seconds,
        )
        rate = rate_charge(user_id, limits.rpm, now) if count_request else None
        admitted = self._reserver.reserve(info, lines, cost, rate, now)
        clamped = admitted.max_output_tokens if admitted.max_output_tokens < bounds.max_output_tokens else None
        return Reservation(view, lines, admitted.charges, admitted.amount, clamped)


def _refuse_blocked(user_id: str, profile: UserProfile | None, now: datetime) -> None:
    if profile and profile.blocked_until and profile.blocked_until > now:
        raise UserBlocked(
            f"User '{user_id}' is blocked until {profile.blocked_until.isoformat()}: "
            f"{profile.blocked_reason or 'no reason given'}."
        )
