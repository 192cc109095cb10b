"""The hot path: authenticate, bound, reserve, call the provider, settle, answer."""

from __future__ import annotations

import hashlib
import json
import random
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
from costbrake.dal import ChargesRefused, Ledger, ReservationContended
from costbrake.dal.ledger import ReservationInfo
from costbrake.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    FeatureOff,
    InputTooLarge,
    InvalidRequest,
    LedgerUnavailable,
    PermissionDenied,
    ProviderFailed,
    RateLimited,
    UserBlocked,
)
from costbrake.gateway import telemetry
from costbrake.gateway.cache import TtlCache
from costbrake.gateway.requests import (
    AnthropicMessagesRequest,
    OpenAIChatRequest,
    parse_json_body,
    validate,
)
from costbrake.policy import budget_status, feature_config, feature_of, global_budget, user_limits
from costbrake.pricing import ModelPrice, PriceTable, cost_of, worst_case_cost
from costbrake.providers import UpstreamResult, adapter_for
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
from costbrake.tokens import estimate_anthropic_input_tokens, estimate_openai_input_tokens
from costbrake.usage import Usage

logger = Logger(child=True)

OPENAI = "openai"
ANTHROPIC = "anthropic"
MAX_SHARD_HOPS = 3  # a reservation kept busy on a hot shard moves to another shard at most this often
TRUNCATION_REASONS = frozenset({"length", "max_tokens"})
# OpenAI reasoning models take max_completion_tokens; the others still accept max_tokens.
_COMPLETION_TOKENS_PREFIXES = ("o1", "o3", "o4", "gpt-5")


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
    max_output_tokens: int
    estimated_input_tokens: int
    worst_case_usd: Decimal
    stream: bool
    system_prompt_sha256: str | None
    prices: PriceTable  # the table the call was planned with (packaged + the snapshot's overrides)


class ProviderKeys:
    """Provider API keys: from settings locally, from Secrets Manager in AWS (read on first use, not at init)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, str] | None = None

    def key_for(self, provider: str) -> str:
        if self._keys is None:
            self._keys = self._load()
        try:
            return self._keys[provider]
        except KeyError:
            raise ProviderFailed(f"No {provider} API key is configured for this gateway.") from None

    def _load(self) -> dict[str, str]:
        settings = self._settings
        keys = {
            name: secret.get_secret_value()
            for name, secret in ((OPENAI, settings.openai_api_key), (ANTHROPIC, settings.anthropic_api_key))
            if secret is not None
        }
        if settings.provider_secret_arn:
            import boto3  # only on the first provider call of a container that uses Secrets Manager

            client = boto3.client("secretsmanager", region_name=settings.aws_region)
            secret = client.get_secret_value(SecretId=settings.provider_secret_arn)["SecretString"]
            stored = json.loads(secret)
            keys.update(
                {name: stored[f"{name}_api_key"] for name in (OPENAI, ANTHROPIC) if stored.get(f"{name}_api_key")}
            )
        return keys


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
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.prices = prices
        self.clock = clock
        self._provider_keys = provider_keys
        self._base_urls = dict(base_urls or {OPENAI: settings.openai_base_url, ANTHROPIC: settings.anthropic_base_url})
        self._monotonic = monotonic
        ttl = settings.settings_cache_seconds
        self._keys: TtlCache[ApiKey | None] = TtlCache(clock, ttl)
        self._settings_cache: TtlCache[SettingsSnapshot] = TtlCache(clock, ttl)
        self._users: TtlCache[UserView] = TtlCache(clock, ttl)
        self._priced: tuple[SettingsSnapshot, PriceTable] | None = None

    # ---- cached reads -------------------------------------------------------------------------

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
        caller = self._caller(key, user_id)
        feature = feature_of(headers, key)
        return budget_status(self.ledger, self.settings, self.clock.now(), caller.user_id, feature, key)

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
        if key.service:
            return Caller(key, named_user or f"key:{key.key_id}")
        if key.user_id is None:
            raise AuthenticationFailed("This costbrake key is bound to no user.")
        if named_user is not None and named_user != key.user_id:
            raise PermissionDenied("A user key may only act for its own user; use a service key to name end users.")
        return Caller(key, key.user_id)

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
            named_user = request.user
        else:
            request = validate(AnthropicMessagesRequest, body)
            named_user = request.metadata.user_id if request.metadata else None
        caller = self._caller(key, named_user)
        feature = feature_config(self.settings, snapshot, feature_of(headers, key))
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
            cheaper = self.settings.downgrade_map.get(price.model)
            if cheaper is not None:
                downgraded_from, price = price.model, prices.get(cheaper)

        upstream = dict(body)
        upstream["model"] = price.model if (downgraded_from or request.model == "auto") else request.model
        max_output = self._bound_output(provider, request, upstream, feature)
        n = request.n if isinstance(request, OpenAIChatRequest) else 1
        estimated = (
            estimate_openai_input_tokens(upstream) if provider == OPENAI else estimate_anthropic_input_tokens(upstream)
        )
        if estimated > feature.max_input_tokens:
            raise InputTooLarge(
                f"The prompt is about {estimated} tokens; feature '{feature.name}' allows {feature.max_input_tokens}.",
                param="messages",
            )
        return PlannedCall(
            provider=provider,
            body=upstream,
            caller=caller,
            feature=feature,
            model_requested=request.model,
            price=price,
            downgraded_from=downgraded_from,
            max_output_tokens=max_output,
            estimated_input_tokens=estimated,
            worst_case_usd=worst_case_cost(price, estimated, max_output * n),
            stream=request.stream,
            system_prompt_sha256=_system_prompt_hash(provider, body),
            prices=prices,
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

    def _bound_output(
        self,
        provider: str,
        request: OpenAIChatRequest | AnthropicMessagesRequest,
        upstream: dict[str, Any],
        feature: Feature,
    ) -> int:
        """RULE 1: every call has a max output; above the feature's cap it is clamped or refused."""
        if isinstance(request, OpenAIChatRequest):
            field_name = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
            asked = request.max_completion_tokens or request.max_tokens
            if asked is None and upstream["model"].startswith(_COMPLETION_TOKENS_PREFIXES):
                field_name = "max_completion_tokens"
        else:
            field_name, asked = "max_tokens", request.max_tokens
        bounded = asked if asked is not None else min(feature.default_max_output_tokens, feature.max_output_tokens)
        if bounded > feature.max_output_tokens:
            if feature.over_cap is OverCap.REFUSE:
                raise InvalidRequest(
                    f"{field_name}={asked} is above feature '{feature.name}''s cap of {feature.max_output_tokens}.",
                    param=field_name,
                )
            bounded = feature.max_output_tokens
        upstream[field_name] = bounded
        return bounded

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
        amount = plan.worst_case_usd
        for line in lines:
            if amount > line.limit:
                raise BudgetExceeded(
                    f"This call may cost up to ${amount}, more than the whole {line.label} budget of ${line.limit}.",
                    retry_after=line.span.seconds_left(now),
                    scope=line.label.rsplit(",", 1)[0],
                    window=line.span.window.value,
                )
        rate = rate_charge(user_id, limits.rpm, now)
        shard_order = {line.scope: _shard_order(line.shards) for line in lines if line.sharded}
        info = ReservationInfo(
            request_id=request_id,
            user_id=user_id,
            feature=plan.feature.name,
            model=plan.price.model,
            created_at=now,
            release_after=int(now.timestamp()) + self.settings.reservation_ttl_seconds,
        )
        attempt = 0
        while True:
            shard = {scope: order[0] for scope, order in shard_order.items()}
            charges = [line.charge(amount, shard.get(line.scope)) for line in lines]
            try:
                self.ledger.reserve(info, charges, rate[0] if rate else None, attempt)
                return Reservation(view, lines, charges)
            except ReservationContended as busy:
                attempt += 1
                busy_shards = {ref.scope for ref in busy.contended if ref.shard is not None}
                if busy_shards and attempt <= MAX_SHARD_HOPS:
                    for scope in busy_shards:  # a hot shard: carry on with another one
                        order = shard_order[scope]
                        order.append(order.pop(0))
                    continue
                if busy.contended and all(ref.scope == f"user#{user_id}" for ref in busy.contended):
                    # Only this user's own counters stayed busy: the user sends more at once than they can take.
                    raise RateLimited(
                        f"Too many concurrent requests for user '{user_id}'; retry shortly.",
                        retry_after=1,
                        scope="user",
                        window="concurrency",
                        should_retry=True,
                    ) from busy
                raise
            except ChargesRefused as refused:
                attempt += 1
                blocking = self._blocking_line(refused, lines, shard_order, rate)
                if blocking is None:
                    continue  # only shards were full and untried shards remain
                raise blocking from None

    def _blocking_line(
        self,
        refused: ChargesRefused,
        lines: list[BudgetLine],
        shard_order: dict[str, list[int]],
        rate: Any,
    ) -> BudgetExceeded | RateLimited | None:
        now = self.clock.now()
        if rate is not None and rate[0].counter in refused.refused:
            minute = rate[1]
            return RateLimited(
                f"Rate limit reached: {rate[0].limit} requests per minute for this user.",
                retry_after=minute.seconds_left(now),
                scope="user",
                window="minute",
            )
        for line in lines:
            hit = [ref for ref in refused.refused if ref.scope == line.scope and ref.window == line.span.key]
            if not hit:
                continue
            order = shard_order.get(line.scope)
            if order is not None and len(order) > 1:
                order.pop(0)  # this shard is full; try the next one before refusing
                continue
            return BudgetExceeded(
                f"Budget exceeded: {line.label} limit of ${line.limit} would be passed by this call.",
                retry_after=line.span.seconds_left(now),
                scope=line.label.rsplit(",", 1)[0],
                window=line.span.window.value,
            )
        return None

    def _call_and_settle(
        self, plan: PlannedCall, reservation: Reservation, call: CallContext, headers: Mapping[str, str]
    ) -> GatewayResponse:
        adapter = adapter_for(plan.provider)
        forwarded = {name: headers[name] for name in ("anthropic-version", "anthropic-beta") if name in headers}
        try:
            result = adapter.call(
                plan.body,
                api_key=self._provider_keys.key_for(plan.provider),
                base_url=self._base_urls[plan.provider],
                timeout=self.settings.provider_timeout_seconds,
                extra_headers=forwarded,
            )
        except ProviderFailed as failure:
            self._settle(plan, reservation, call, None, Decimal(0), failure.status, str(failure))
            raise
        if not result.ok:
            # The provider's own 4xx (bad parameter, its rate limit) reaches the client as is; its 5xx is a 502.
            status = result.status if 400 <= result.status < 500 else 502
            error = f"upstream HTTP {result.status}"
            self._settle(plan, reservation, call, result, Decimal(0), result.status, error)
            return GatewayResponse(
                status, result.body, result.content_type, {"x-costbrake-request-id": call.request_id}
            )
        # Usage that never arrived is charged at the worst case (the amount reserved) and flagged.
        usage = result.usage or Usage(
            input_tokens=plan.estimated_input_tokens, output_tokens=plan.max_output_tokens, estimated=True
        )
        price = self._served_price(plan, result)
        cost = cost_of(price, usage)
        self._settle(plan, reservation, call, result, cost, result.status, None, usage)
        remaining = _tightest_remaining(reservation, cost)
        response_headers = {
            "x-costbrake-request-id": call.request_id,
            "x-costbrake-cost-usd": format(cost, "f"),
            "x-costbrake-model": result.served_model or price.model,
            **remaining,
        }
        if plan.downgraded_from:
            response_headers["x-costbrake-downgraded-from"] = plan.downgraded_from
        return GatewayResponse(result.status, result.body, result.content_type, response_headers)

    def _served_price(self, plan: PlannedCall, result: UpstreamResult) -> ModelPrice:
        served = result.served_model
        if served and served in plan.prices:
            return plan.prices.get(served)
        return plan.price

    def _settle(
        self,
        plan: PlannedCall,
        reservation: Reservation,
        call: CallContext,
        result: UpstreamResult | None,
        cost: Decimal,
        http_status: int,
        error: str | None,
        usage: Usage | None = None,
    ) -> None:
        usage = usage or Usage()
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
            reserved_usd=plan.worst_case_usd,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            estimated_input_tokens=plan.estimated_input_tokens,
            max_output_tokens=plan.max_output_tokens,
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
            self.ledger.settle(request_id, reservation.charges, cost, record)
        except LedgerUnavailable:
            # The provider already answered (and billed): keep the answer, leave a complete trail in the logs.
            logger.exception("settle failed", extra={"request_id": request_id, "cost_usd": str(cost)})
            return
        telemetry.call_settled(record)
        logger.info(
            "call settled",
            extra={
                "request_id": request_id,
                "user": record.user_id,
                "feature": record.feature,
                "model": record.model,
                "cost_usd": str(cost),
                "reserved_usd": str(plan.worst_case_usd),
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "status": record.status,
            },
        )


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


def _shard_order(shards: int) -> list[int]:
    order = list(range(shards))
    random.shuffle(order)  # spread calls over the shards; a full shard sends the call to the next
    return order


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
