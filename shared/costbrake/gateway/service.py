"""The hot path: authenticate, bound, reserve, call the provider, settle, answer."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from costbrake.budgets import BudgetLine, budget_lines, rate_charge
from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.dal.ledger import ReservationInfo
from costbrake.errors import (
    AuthenticationFailed,
    FeatureOff,
    InvalidRequest,
    LedgerUnavailable,
    ProviderFailed,
    UserBlocked,
)
from costbrake.gateway import telemetry
from costbrake.gateway.bounds import CallBounds, bound_call
from costbrake.gateway.cache import TtlCache
from costbrake.gateway.provider_keys import ProviderKeys
from costbrake.gateway.requests import (
    AnthropicMessagesRequest,
    OpenAIChatRequest,
    parse_json_body,
    validate,
)
from costbrake.gateway.reservation import CallCost, Reserver
from costbrake.policy import budget_status, caller_user_id, end_user, global_budget, resolve_feature, user_limits
from costbrake.pricing import ModelPrice, PriceTable, cost_of, downgrade_target
from costbrake.providers import UpstreamResult, adapter_for
from costbrake.providers.base import ANTHROPIC, OPENAI
from costbrake.records import (
    ApiKey,
    CallRecord,
    Charge,
    CounterRef,
    CounterState,
    Feature,
    OverCap,
    SettingsSnapshot,
    SwitchState,
    UserProfile,
)
from costbrake.usage import Usage

logger = Logger(child=True)

TRUNCATION_REASONS = frozenset({"length", "max_tokens"})


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return headers.get("x-api-key") or None


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


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


class Gateway:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        prices: PriceTable,
        clock: Clock,
        provider_keys: ProviderKeys,
        base_urls: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.prices = prices
        self.clock = clock
        self._provider_keys = provider_keys
        self._base_urls = dict(base_urls or {OPENAI: settings.openai_base_url, ANTHROPIC: settings.anthropic_base_url})
        self._monotonic = monotonic
        self._reserver = Reserver(ledger, clock, settings.budget_wait_seconds, sleep, monotonic)
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
        secret = key_from_headers(headers)
        if secret is None:
            raise AuthenticationFailed(
                "No API key: send 'Authorization: Bearer <costbrake key>' or 'x-api-key: <costbrake key>'."
            )
        digest = hash_key(secret)
        key = self._keys.get(digest, lambda: self.ledger.get_key(digest))
        if key is None or key.revoked:
            raise AuthenticationFailed("Incorrect or revoked costbrake API key.")
        return key

    def snapshot(self) -> SettingsSnapshot:
        return self._settings_cache.get("settings", self.ledger.load_settings)

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
            profile, counters = self.ledger.get_user_and_counters(user_id, refs)
            return UserView(profile, counters)

        view = self._users.get((user_id, tuple(refs)), load)
        return view

    # ---- endpoints ----------------------------------------------------------------------------

    def complete(
        self, provider: str, raw_body: bytes | str | None, headers: Mapping[str, str], request_id: str
    ) -> GatewayResponse:
        started = self._monotonic()
        now = self.clock.now()
        key = self.authenticate(headers)
        body = parse_json_body(raw_body, self.settings.max_body_bytes)
        snapshot = self.snapshot()
        plan = self._plan(provider, body, headers, key, snapshot)
        reservation = self._reserve(plan, snapshot, now, request_id)
        return self._call_and_settle(plan, reservation, CallContext(request_id, now, started), headers)

    def budget(self, headers: Mapping[str, str], user_id: str | None) -> dict[str, Any]:
        key = self.authenticate(headers)
        caller = self._caller(key, end_user(user_id, "user"))
        feature = resolve_feature(self.settings, self.snapshot(), headers, key)
        return budget_status(self.ledger, self.settings, self.clock.now(), caller.user_id, feature.name, key)

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
        provider: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        key: ApiKey,
        snapshot: SettingsSnapshot,
    ) -> PlannedCall:
        request: OpenAIChatRequest | AnthropicMessagesRequest
        if provider == OPENAI:
            request = validate(OpenAIChatRequest, body)
            named_user = end_user(request.user, "user")
        else:
            request = validate(AnthropicMessagesRequest, body)
            named_user = end_user(request.metadata.user_id if request.metadata else None, "metadata.user_id")
        caller = self._caller(key, named_user)
        feature = resolve_feature(self.settings, snapshot, headers, key)
        if feature.state is SwitchState.OFF:
            raise FeatureOff(f"The feature '{feature.name}' is switched off: {feature.reason or 'no reason given'}.")

        model_requested = self._resolve_auto(provider, request.model, headers)
        prices = self.price_table(snapshot)
        price = prices.get(model_requested)
        if price.provider != provider:
            raise InvalidRequest(
                f"The model '{model_requested}' is served by {price.provider}; call its endpoint instead.",
                param="model",
            )
        downgraded_from = None
        if feature.state is SwitchState.DOWNGRADE:
            cheaper = downgrade_target(self.settings.downgrade_map, price.model)
            if cheaper is not None:
                downgraded_from, price = price.model, prices.get(cheaper)

        upstream = dict(body)
        upstream["model"] = price.model if (downgraded_from or request.model == "auto") else request.model
        bounds = bound_call(provider, upstream, price, feature, auto_tiers=self.settings.auto_service_tiers)
        return PlannedCall(
            provider=provider,
            body=upstream,
            caller=caller,
            feature=feature,
            model_requested=request.model,
            price=price,
            downgraded_from=downgraded_from,
            bounds=bounds,
            worst_case_usd=bounds.worst_case_usd(price),
            stream=request.stream,
            system_prompt_sha256=_system_prompt_hash(provider, body),
            prices=prices,
            # Read before anything is reserved: a gateway without a usable key costs the caller nothing.
            provider_key=self._provider_keys.key_for(provider),
        )

    def _resolve_auto(self, provider: str, model: str, headers: Mapping[str, str]) -> str:
        if model != "auto":
            return model
        complexity = (headers.get("x-costbrake-complexity") or "complex").lower()
        choices = self.settings.auto_models.get(provider, {})
        if complexity not in choices:
            raise InvalidRequest(
                f"X-Costbrake-Complexity must be one of {sorted(choices)} for model 'auto'.", param="model"
            )
        return choices[complexity]

    def _reserve(self, plan: PlannedCall, snapshot: SettingsSnapshot, now: datetime, request_id: str) -> Reservation:
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
        if profile and profile.blocked_until and profile.blocked_until > now:
            raise UserBlocked(
                f"User '{user_id}' is blocked until {profile.blocked_until.isoformat()}: "
                f"{profile.blocked_reason or 'no reason given'}."
            )
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
        admitted = self._reserver.reserve(info, lines, cost, rate_charge(user_id, limits.rpm, now), now)
        clamped = admitted.max_output_tokens if admitted.max_output_tokens < bounds.max_output_tokens else None
        return Reservation(view, lines, admitted.charges, admitted.amount, clamped)

    def _call_and_settle(
        self, plan: PlannedCall, reservation: Reservation, call: CallContext, headers: Mapping[str, str]
    ) -> GatewayResponse:
        """Call the provider and settle exactly once, whatever happens after the reservation.

        Before the request is sent, a failure refunds; once it may have been sent, a failure without usage is
        charged the reserved worst case (the provider may have generated up to it) and flagged as estimated.
        """
        outcome = _Outcome(plan, reservation, call)
        forwarded = {name: headers[name] for name in ("anthropic-version", "anthropic-beta") if name in headers}
        try:
            body = plan.body
            if reservation.clamped_output_tokens is not None:
                body = dict(body)
                outcome.bounds.apply(body)
            outcome.sent = True
            result = adapter_for(plan.provider).call(
                body,
                api_key=plan.provider_key,
                base_url=self._base_urls[plan.provider],
                timeout=self.settings.provider_timeout_seconds,
                extra_headers=forwarded,
            )
            if not result.ok:
                # The provider's own 4xx (bad parameter, its rate limit) reaches the client as is; its 5xx is a
                # 502. Neither is billed by the provider: refunded.
                status = result.status if 400 <= result.status < 500 else 502
                self._settle(outcome, result, Decimal(0), result.status, f"upstream HTTP {result.status}")
                return GatewayResponse(
                    status, result.body, result.content_type, {"x-costbrake-request-id": call.request_id}
                )
            return self._settle_answer(outcome, result)
        except ProviderFailed as failure:
            if not outcome.settled:
                charged = failure.request_sent
                self._settle(outcome, None, outcome.worst_case if charged else Decimal(0), failure.status, str(failure))
            raise
        except Exception as crash:
            if outcome.settled:
                raise
            cost = outcome.worst_case if outcome.sent else Decimal(0)
            self._settle(outcome, None, cost, 502, f"gateway error: {type(crash).__name__}")
            raise ProviderFailed(
                f"The gateway failed during the call ({type(crash).__name__}); it was "
                + ("charged at its reserved worst case." if outcome.sent else "not charged."),
                request_sent=outcome.sent,
            ) from crash

    def _settle_answer(self, outcome: _Outcome, result: UpstreamResult) -> GatewayResponse:
        plan, call = outcome.plan, outcome.call
        # Usage that never arrived is charged at the worst case (the amount reserved) and flagged.
        usage = result.usage or outcome.worst_usage
        price = self._served_price(plan, result)
        cost = cost_of(price, usage) if result.usage else outcome.worst_case
        self._settle(outcome, result, cost, result.status, None, usage)
        remaining = _tightest_remaining(outcome.reservation, cost)
        response_headers = {
            "x-costbrake-request-id": call.request_id,
            "x-costbrake-cost-usd": format(cost, "f"),
            "x-costbrake-model": result.served_model or price.model,
            **remaining,
        }
        if plan.downgraded_from:
            response_headers["x-costbrake-downgraded-from"] = plan.downgraded_from
        if outcome.reservation.clamped_output_tokens is not None:
            response_headers["x-costbrake-max-tokens-clamped"] = str(outcome.reservation.clamped_output_tokens)
        return GatewayResponse(result.status, result.body, result.content_type, response_headers)

    def _served_price(self, plan: PlannedCall, result: UpstreamResult) -> ModelPrice:
        served = result.served_model
        if served and served in plan.prices:
            return plan.prices.get(served)
        return plan.price

    def _settle(
        self,
        outcome: _Outcome,
        result: UpstreamResult | None,
        cost: Decimal,
        http_status: int,
        error: str | None,
        usage: Usage | None = None,
    ) -> None:
        outcome.settled = True
        plan, call, bounds = outcome.plan, outcome.call, outcome.bounds
        if usage is None:
            usage = outcome.worst_usage if cost else Usage()
        finish = result.finish_reason if result else None
        request_id = call.request_id
        record = CallRecord(
            request_id=request_id,
            timestamp=call.received_at,
            user_id=plan.caller.user_id,
            feature=plan.feature.name,
            key_id=plan.caller.key.key_id,
            provider=plan.provider,
            model_requested=plan.model_requested,
            model=(result.served_model if result and result.served_model else plan.price.model),
            status="error" if error else "ok",
            http_status=http_status,
            cost_usd=cost,
            reserved_usd=outcome.reservation.amount,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            estimated_input_tokens=bounds.input_tokens,
            max_output_tokens=bounds.max_output_tokens,
            usage_estimated=usage.estimated,
            finish_reason=finish,
            truncated=finish in TRUNCATION_REASONS,
            stream=plan.stream,
            downgraded_from=plan.downgraded_from,
            system_prompt_sha256=plan.system_prompt_sha256,
            latency_ms=int((self._monotonic() - call.started) * 1000),
            error=error,
        )
        try:
            self.ledger.settle(request_id, outcome.reservation.charges, cost, record)
        except LedgerUnavailable:
            # The provider already answered (and billed): keep the answer, leave a complete trail in the logs.
            logger.exception("settle failed", extra={"request_id": request_id, "cost_usd": str(cost)})
            return
        telemetry.call_settled(record)
        log = logger.error if cost > record.reserved_usd else logger.info
        log(
            "call settled above its reservation" if cost > record.reserved_usd else "call settled",
            extra={
                "request_id": request_id,
                "user": record.user_id,
                "feature": record.feature,
                "model": record.model,
                "cost_usd": str(cost),
                "reserved_usd": str(record.reserved_usd),
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "usage_estimated": record.usage_estimated,
                "status": record.status,
            },
        )


@dataclass
class _Outcome:
    """One admitted call on its way to being settled exactly once."""

    plan: PlannedCall
    reservation: Reservation
    call: CallContext
    sent: bool = False  # the request may have reached the provider
    settled: bool = False

    @property
    def bounds(self) -> CallBounds:
        clamped = self.reservation.clamped_output_tokens
        return self.plan.bounds if clamped is None else self.plan.bounds.with_max_output(clamped)

    @property
    def worst_case(self) -> Decimal:
        return self.reservation.amount

    @property
    def worst_usage(self) -> Usage:
        return Usage(input_tokens=self.bounds.input_tokens, output_tokens=self.bounds.output_tokens, estimated=True)


def _tightest_remaining(reservation: Reservation, cost: Decimal) -> dict[str, str]:
    """Remaining budget of the tightest window after this call, from the counters read with the user's profile.

    That snapshot is at most ``settings_cache_seconds`` old; GET /v1/budget reads the counters exactly.
    """
    counters = reservation.view.counters
    remaining, line = min(
        ((max(Decimal(0), line.remaining(counters) - cost), line) for line in reservation.lines),
        key=lambda pair: pair[0],
    )
    return {"x-costbrake-budget-remaining-usd": format(remaining, "f"), "x-costbrake-budget-window": line.label}


def _system_prompt_hash(provider: str, body: Mapping[str, Any]) -> str | None:
    """Prompts are not stored: the record keeps only a hash of the system prompt."""
    if provider == ANTHROPIC:
        system = body.get("system")
    else:
        system = next(
            (
                m.get("content")
                for m in body.get("messages", [])
                if isinstance(m, dict) and m.get("role") in ("system", "developer")
            ),
            None,
        )
    if system is None:
        return None
    return hashlib.sha256(json.dumps(system, sort_keys=True).encode()).hexdigest()


__all__ = [
    "ANTHROPIC",
    "OPENAI",
    "Gateway",
    "GatewayResponse",
    "ProviderKeys",
    "hash_key",
    "key_from_headers",
]
