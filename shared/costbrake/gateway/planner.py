"""Planning a call, without I/O: validate the body, resolve user, feature, switch and model, bound the request.

What a planned call needs from the ledger (the key, the settings snapshot, the price table) and the provider key
are handed in, so the request rules (RULE 1, ``auto``, downgrade) are tested as functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from costbrake.config import Settings
from costbrake.errors import FeatureOff, InvalidRequest
from costbrake.gateway.calls import Caller, PlannedCall
from costbrake.gateway.reducers import bound_or_truncate
from costbrake.gateway.requests import (
    AnthropicCountTokensRequest,
    AnthropicMessagesRequest,
    ApiRequest,
    OpenAIChatRequest,
    OpenAIEmbeddingsRequest,
    OpenAIResponsesRequest,
    validate,
)
from costbrake.policy import caller_user_id, end_user, resolve_feature
from costbrake.pricing import CHAT, EMBEDDING, RESPONSES, ModelPrice, PriceTable, downgrade_target
from costbrake.providers.base import CHAT_COMPLETIONS, COUNT_TOKENS, EMBEDDINGS, MESSAGES, ProviderAdapter
from costbrake.providers.base import RESPONSES as RESPONSES_API
from costbrake.records import ApiKey, Feature, SettingsSnapshot, SwitchState

# Client headers that change what the provider does, forwarded as they are.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")

# How each API's body is validated (pydantic, strict).
REQUEST_MODELS: dict[str, type[ApiRequest]] = {
    CHAT_COMPLETIONS: OpenAIChatRequest,
    RESPONSES_API: OpenAIResponsesRequest,
    EMBEDDINGS: OpenAIEmbeddingsRequest,
    MESSAGES: AnthropicMessagesRequest,
    COUNT_TOKENS: AnthropicCountTokensRequest,
}
# Where a model of each mode is served, for a refusal that says where to go.
_ROUTE_OF_MODE = {
    CHAT: "POST /v1/chat/completions, /v1/responses or /v1/messages",
    RESPONSES: "POST /v1/responses",
    EMBEDDING: "POST /v1/embeddings",
}


def plan_call(
    settings: Settings,
    adapter: ProviderAdapter,
    body: dict[str, Any],
    headers: Mapping[str, str],
    key: ApiKey,
    snapshot: SettingsSnapshot,
    prices: PriceTable,
    provider_key: Callable[[str], str],
) -> PlannedCall:
    """The call ``body`` asks for, as it will be reserved and sent; a 4xx (``CostbrakeError``) if it may not be.
    ``provider_key`` is read last: a request refused for what it is gets its 4xx, not a missing key's 503."""
    provider = adapter.name
    request = validate(REQUEST_MODELS[adapter.api], body)
    if isinstance(request, AnthropicMessagesRequest):
        named_user = end_user(request.metadata.user_id if request.metadata else None, "metadata.user_id")
    else:
        named_user = end_user(request.user, "user")
    caller = Caller(key, caller_user_id(key, named_user))
    feature = resolve_feature(settings, snapshot, headers, key)
    refuse_switched_off(feature)

    model_requested = model_choice(settings, provider, request.model, headers)
    price = served_by(adapter, prices.get(model_requested))
    downgraded_from = None
    if feature.state is SwitchState.DOWNGRADE:
        cheaper = downgrade_target(settings.downgrade_map, price.model)
        if cheaper is not None and prices.get(cheaper).mode in adapter.modes:
            downgraded_from, price = price.model, prices.get(cheaper)

    upstream = dict(body)
    upstream["model"] = price.model if (downgraded_from or request.model == "auto") else request.model
    upstream, bounds, dropped = bound_or_truncate(
        adapter.api, upstream, price, feature, auto_tiers=settings.auto_service_tiers
    )
    return PlannedCall(
        provider=provider,
        api=adapter.api,
        body=upstream,
        caller=caller,
        feature=feature,
        model_requested=request.model,
        price=price,
        downgraded_from=downgraded_from,
        bounds=bounds,
        worst_case_usd=bounds.worst_case_usd(price),
        stream=request.stream,
        system_prompt_sha256=system_prompt_hash(adapter.api, body),
        prices=prices,
        # Read before anything is reserved: a gateway without a usable key costs the caller nothing.
        provider_key=provider_key(provider),
        forwarded_headers={name: headers[name] for name in FORWARDED_HEADERS if name in headers},
        truncated_messages=dropped,
    )


def model_choice(settings: Settings, provider: str, model: str, headers: Mapping[str, str]) -> str:
    """The model asked for; for ``auto``, the deployment's choice for the request's X-Costbrake-Complexity."""
    if model != "auto":
        return model
    complexity = (headers.get("x-costbrake-complexity") or "complex").lower()
    choices = settings.auto_models.get(provider, {})
    if complexity not in choices:
        raise InvalidRequest(
            f"X-Costbrake-Complexity must be one of {sorted(choices)} for model 'auto'.", param="model"
        )
    return choices[complexity]


def refuse_switched_off(feature: Feature) -> None:
    if feature.state is SwitchState.OFF:
        raise FeatureOff(f"The feature '{feature.name}' is switched off: {feature.reason or 'no reason given'}.")


def served_by(adapter: ProviderAdapter, price: ModelPrice) -> ModelPrice:
    """The model's price, if ``adapter``'s API serves it (its provider, one of its modes); else a 400."""
    if price.provider != adapter.name:
        raise InvalidRequest(
            f"The model '{price.model}' is served by {price.provider}; call its endpoint instead.", param="model"
        )
    if price.mode not in adapter.modes:
        raise InvalidRequest(
            f"The model '{price.model}' is a {price.mode} model, not served by POST {adapter.path}; "
            f"call {_ROUTE_OF_MODE.get(price.mode, 'its own endpoint')} instead.",
            param="model",
        )
    return price


def system_prompt_hash(api: str, body: Mapping[str, Any]) -> str | None:
    """Prompts are not stored: the record keeps only a hash of the system prompt (Responses: instructions)."""
    if api == MESSAGES:
        system = body.get("system")
    elif api == RESPONSES_API:
        system = body.get("instructions")
    elif api == EMBEDDINGS:
        system = None
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
