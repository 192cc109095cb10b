"""RULE 1 and the worst case: the most a request can cost, decided from its body before anything is reserved.

Pure functions of the request body, the model's price and the feature's settings (no I/O). Every billed
dimension has a bound here: input tokens (the estimator's proven bound, or the model's context window for parts
whose tokens are not their bytes), output tokens (max_tokens, clamped by the feature, times ``n``, plus predicted
output), the service tier asked for, prompt-cache writes at the requested TTL's rate, and server-tool uses.
docs/design.md lists each bound and what stays outside.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from costbrake.errors import InputTooLarge, InvalidRequest
from costbrake.pricing import ModelPrice, worst_case_cost
from costbrake.providers.base import ANTHROPIC, CHAT_COMPLETIONS, EMBEDDINGS, MESSAGES, OPENAI, RESPONSES
from costbrake.records import Feature, OverCap
from costbrake.tokens import (
    InputEstimate,
    estimate_anthropic_input_tokens,
    estimate_embeddings_input_tokens,
    estimate_openai_input_tokens,
    estimate_openai_responses_input_tokens,
)

# OpenAI reasoning models take max_completion_tokens; the others still accept max_tokens.
_COMPLETION_TOKENS_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# An Anthropic server tool that names no max_uses gets this many: a search the caller did not bound is not free.
DEFAULT_SERVER_TOOL_USES = 3
# A call the budget's room would clamp below this many output tokens is refused instead.
MIN_CLAMPED_OUTPUT_TOKENS = 64
# Anthropic's smallest thinking budget; max_tokens must stay above the budget.
MIN_THINKING_BUDGET = 1024
# Anthropic server tools, by type prefix: what each adds. Client tools (custom, bash, text editor, computer,
# memory) run in the caller's code and cost only their definitions' tokens, which the estimator counts.
_SEARCH_TOOL = "web_search_"  # priced per use, results read as input
_FETCH_TOOL = "web_fetch_"  # free per use, fetched pages read as input
_CLIENT_TOOL_PREFIXES = ("custom", "bash_", "text_editor_", "computer_", "memory_")
_ANTHROPIC_SERVICE_TIERS = {"auto", "standard_only"}
_OPENAI_SERVICE_TIERS = {"auto", "default", "flex", "priority", "fast", "scale"}
# Responses API tools that run in the caller's code (cost: their definitions' tokens, which the estimator counts).
# Built-in tools other than web search bill what the price table does not carry (file search calls and
# storage, code interpreter containers, generated images, MCP and computer-use loops): refused.
_RESPONSES_CLIENT_TOOLS = frozenset({"function", "custom", "local_shell", "shell", "apply_patch"})
_RESPONSES_SEARCH_TOOL = "web_search"  # web_search, web_search_preview and their dated versions


@dataclass(frozen=True)
class CallBounds:
    """The worst case of one call, per billed dimension, and the output fields that enforce it upstream."""

    input_tokens: int  # billed input at most (all passes of a server-tool loop)
    sized_input_tokens: int  # the estimator's bound of the parts it can size
    unsized: tuple[str, ...]  # parts bounded by the context window instead
    max_output_tokens: int  # per choice, as sent upstream
    choices: int
    predicted_output_tokens: int  # OpenAI predicted outputs: rejected prediction tokens are billed as output
    output_fields: tuple[str, ...]  # body fields that carry max_output_tokens upstream
    service_tier: str | None
    cache_write_ttl: str | None  # "5m" / "1h" when the request writes the prompt cache
    web_search_uses: int

    @property
    def output_tokens(self) -> int:
        return self.max_output_tokens * self.choices + self.predicted_output_tokens

    def worst_case_usd(self, price: ModelPrice) -> Decimal:
        return worst_case_cost(
            price,
            self.input_tokens,
            self.output_tokens,
            service_tier=self.service_tier,
            cache_write_ttl=self.cache_write_ttl,
            web_search_uses=self.web_search_uses,
        )

    def with_max_output(self, tokens: int) -> CallBounds:
        return replace(self, max_output_tokens=tokens)

    def apply(self, body: dict[str, Any]) -> None:
        """Write the output bound into the upstream body (and keep a thinking budget below it)."""
        for name in self.output_fields:
            body[name] = self.max_output_tokens
        thinking = body.get("thinking")
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if isinstance(thinking, dict) and isinstance(budget, int) and budget >= self.max_output_tokens:
            body["thinking"] = {**thinking, "budget_tokens": self.max_output_tokens - 1}

    def min_output_tokens(self, body: Mapping[str, Any]) -> int:
        """The fewest output tokens the request can be sent with (above its thinking budget's floor)."""
        thinking = body.get("thinking")
        if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
            return MIN_THINKING_BUDGET + 1
        return 1

    def clamp_floor(self, body: Mapping[str, Any]) -> int:
        """The fewest output tokens a budget's room may clamp the request to: below this it is refused."""
        return min(self.max_output_tokens, max(MIN_CLAMPED_OUTPUT_TOKENS, self.min_output_tokens(body)))


def bound_call(
    api: str, body: dict[str, Any], price: ModelPrice, feature: Feature, *, auto_tiers: Mapping[str, str]
) -> CallBounds:
    """The request's bounds; ``body`` (the upstream copy) gets its output fields and server-tool limits set.

    ``api`` is one of ``providers.base``'s APIs. Raises InvalidRequest (what cannot be bounded or is above a
    cap the feature refuses) or InputTooLarge.
    """
    if api == EMBEDDINGS:
        return _bound_embeddings(body, price, feature)
    if api == RESPONSES:
        return _bound_responses(body, price, feature, auto_tiers[OPENAI])
    if api not in (CHAT_COMPLETIONS, MESSAGES):
        raise ValueError(f"no bounds for API {api!r}")
    if api == CHAT_COMPLETIONS:
        estimate = estimate_openai_input_tokens(body)
        refuse_audio(body)
        uses = 1 if ("web_search_options" in body or "search" in price.model) else 0
        if uses:  # the search results the model reads are input tokens the request does not carry
            estimate = InputEstimate(estimate.tokens, (*estimate.unsized, "web search results"))
        extra_passes = 0
        tier = _openai_tier(body, auto_tiers[OPENAI])
        cache_ttl = None  # OpenAI's prompt cache bills no write premium
        predicted = _predicted_output_tokens(body)
    else:
        estimate = estimate_anthropic_input_tokens(body)
        refuse_remote_tools(body)
        uses, extra_passes, unsized_tools = _anthropic_server_tools(body)
        estimate = InputEstimate(estimate.tokens, estimate.unsized + unsized_tools)
        tier = _anthropic_tier(body, auto_tiers[ANTHROPIC])
        cache_ttl = anthropic_cache_write_ttl(body)
        predicted = 0
    single_pass = _input_bound(estimate, price, feature)
    max_output, fields = _bound_output(api, body, feature)
    choices = body.get("n", 1) if api == CHAT_COMPLETIONS else 1
    bounds = CallBounds(
        input_tokens=single_pass * (1 + extra_passes),
        sized_input_tokens=estimate.tokens,
        unsized=estimate.unsized,
        max_output_tokens=max_output,
        choices=choices if isinstance(choices, int) and choices > 0 else 1,
        predicted_output_tokens=predicted,
        output_fields=fields,
        service_tier=tier,
        cache_write_ttl=cache_ttl,
        web_search_uses=uses,
    )
    if bounds.max_output_tokens < bounds.min_output_tokens(body):
        raise InvalidRequest(
            f"Extended thinking needs max_tokens above {MIN_THINKING_BUDGET}; this request may use "
            f"{bounds.max_output_tokens} (its max_tokens within feature '{feature.name}''s cap of "
            f"{feature.max_output_tokens}).",
            param="max_tokens",
        )
    bounds.apply(body)
    return bounds


def _bound_responses(body: dict[str, Any], price: ModelPrice, feature: Feature, auto_tier: str) -> CallBounds:
    """A Responses call: its input (context it only refers to is unsized), ``max_output_tokens`` (reasoning
    included), web searches (at most ``max_tool_calls``, each one more pass over the context), the tier."""
    if body.get("background"):
        raise InvalidRequest(
            "Background responses finish after the HTTP call, so costbrake could not settle them.", param="background"
        )
    if body.get("context_management"):
        raise InvalidRequest(
            "context_management (compaction) runs model passes whose cost costbrake cannot bound.",
            param="context_management",
        )
    estimate = estimate_openai_responses_input_tokens(body)
    searches = _responses_web_searches(body)
    if searches:
        estimate = InputEstimate(estimate.tokens, (*estimate.unsized, "web search results"))
    single_pass = _input_bound(estimate, price, feature, param="input")
    max_output, fields = _bound_output(RESPONSES, body, feature)
    bounds = CallBounds(
        input_tokens=single_pass * (1 + searches),
        sized_input_tokens=estimate.tokens,
        unsized=estimate.unsized,
        max_output_tokens=max_output,
        choices=1,
        predicted_output_tokens=0,
        output_fields=fields,
        service_tier=_openai_tier(body, auto_tier),
        cache_write_ttl=_openai_cache_ttl(body),
        web_search_uses=searches,
    )
    bounds.apply(body)
    return bounds


def _responses_web_searches(body: dict[str, Any]) -> int:
    """Web searches a Responses call may make: ``max_tool_calls`` (set to DEFAULT_SERVER_TOOL_USES when absent)
    if it offers a web search tool, else 0. Built-in tools that are not priced are refused."""
    tools = body.get("tools")
    searching = False
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if isinstance(kind, str) and kind.startswith(_RESPONSES_SEARCH_TOOL):
            searching = True
        elif kind not in _RESPONSES_CLIENT_TOOLS:
            raise InvalidRequest(
                f"The built-in tool '{kind}' is not priced by costbrake, so its cost cannot be bounded.", param="tools"
            )
    if not searching:
        return 0
    calls = body.get("max_tool_calls")
    if calls is None:
        calls = body["max_tool_calls"] = DEFAULT_SERVER_TOOL_USES
    return int(calls)


def _openai_cache_ttl(body: Mapping[str, Any]) -> str | None:
    """OpenAI writes its prompt cache unasked (its write rate always counts); an extended lifetime is priced
    at the data's longer-TTL rate as well."""
    options = body.get("prompt_cache_options")
    extended = (isinstance(options, Mapping) and options.get("ttl") not in (None, "30m")) or body.get(
        "prompt_cache_retention"
    ) not in (None, "in_memory")
    return "1h" if extended else None


def _bound_embeddings(body: dict[str, Any], price: ModelPrice, feature: Feature) -> CallBounds:
    """An embeddings call: input only (each text bounded, token arrays exact), billed at the standard tier."""
    tokens = estimate_embeddings_input_tokens(body.get("input"))
    return CallBounds(
        input_tokens=_input_bound(InputEstimate(tokens), price, feature, param="input"),
        sized_input_tokens=tokens,
        unsized=(),
        max_output_tokens=0,
        choices=1,
        predicted_output_tokens=0,
        output_fields=(),
        service_tier="default",  # embeddings have no service tier to ask for
        cache_write_ttl=None,
        web_search_uses=0,
    )


def _input_bound(estimate: InputEstimate, price: ModelPrice, feature: Feature, param: str = "messages") -> int:
    """One pass's input: the estimator's bound, or the context window when a part cannot be sized."""
    if not estimate.unsized:
        bound = estimate.tokens
        what = f"The prompt is about {bound} tokens"
    else:
        window = price.max_input_tokens
        if window is None:
            raise InvalidRequest(
                f"{', '.join(sorted(set(estimate.unsized)))} input cannot be sized before the call and the context "
                f"window of '{price.model}' is unknown, so no worst case can be reserved.",
                param=param,
            )
        bound = max(window, estimate.tokens)
        what = (
            f"{', '.join(sorted(set(estimate.unsized)))} input is bounded only by the context window of "
            f"'{price.model}' ({window} tokens)"
        )
    if bound > feature.max_input_tokens:
        raise InputTooLarge(
            f"{what}; feature '{feature.name}' allows {feature.max_input_tokens} input tokens.", param=param
        )
    return bound


def _bound_output(api: str, body: dict[str, Any], feature: Feature) -> tuple[int, tuple[str, ...]]:
    """RULE 1: every call has a max output; above the feature's cap it is clamped or refused."""
    if api == CHAT_COMPLETIONS:
        present = tuple(name for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None)
        asked = max((body[name] for name in present), default=None)  # both sent: the larger is the bound
        if str(body.get("model", "")).startswith(_COMPLETION_TOKENS_PREFIXES):
            # Reasoning models refuse max_tokens; the bound goes out as max_completion_tokens (auto and
            # downgrade may pick such a model for a client that wrote max_tokens).
            body.pop("max_tokens", None)
            present = ("max_completion_tokens",)
        elif not present:
            present = ("max_tokens",)
    elif api == RESPONSES:
        present, asked = ("max_output_tokens",), body.get("max_output_tokens")
    else:
        present, asked = ("max_tokens",), body.get("max_tokens")
    bounded = asked if asked is not None else min(feature.default_max_output_tokens, feature.max_output_tokens)
    if bounded > feature.max_output_tokens:
        if feature.over_cap is OverCap.REFUSE:
            raise InvalidRequest(
                f"{present[0]}={asked} is above feature '{feature.name}''s cap of {feature.max_output_tokens}.",
                param=present[0],
            )
        bounded = feature.max_output_tokens
    return bounded, present


def _openai_tier(body: Mapping[str, Any], default_tier: str) -> str:
    tier = body.get("service_tier")
    if tier is None or tier == "auto":
        return default_tier  # "auto" is served at the project's default tier
    if not isinstance(tier, str) or tier not in _OPENAI_SERVICE_TIERS:
        raise InvalidRequest(f"service_tier must be one of {sorted(_OPENAI_SERVICE_TIERS)}.", param="service_tier")
    return {"scale": "default", "fast": "priority"}.get(str(tier), str(tier))


def _anthropic_tier(body: Mapping[str, Any], auto_tier: str) -> str:
    tier = body.get("service_tier", "auto")
    if not isinstance(tier, str) or tier not in _ANTHROPIC_SERVICE_TIERS:
        raise InvalidRequest(f"service_tier must be one of {sorted(_ANTHROPIC_SERVICE_TIERS)}.", param="service_tier")
    # "auto" uses Priority Tier capacity where the organisation has it (the deployment says so).
    return auto_tier if tier == "auto" else "standard"


def refuse_remote_tools(body: Mapping[str, Any]) -> None:
    """Anthropic's MCP connector and code-execution containers run tool loops at the provider whose passes and
    results the request does not bound: refused rather than under-reserved."""
    for field, what in (("mcp_servers", "MCP servers"), ("container", "a code-execution container")):
        if body.get(field) not in (None, "", []):
            raise InvalidRequest(
                f"{what} run tool loops costbrake cannot bound before the call; call the tools from your code.",
                param=field,
            )


def hides_reasoning(api: str, body: Mapping[str, Any]) -> bool:
    """Whether the model may spend output tokens the stream never shows (OpenAI reasoning models)."""
    return api.startswith(OPENAI) and str(body.get("model", "")).startswith(_COMPLETION_TOKENS_PREFIXES)


def refuse_audio(body: Mapping[str, Any]) -> None:
    """Audio is billed at audio rates the price table does not carry: refused rather than under-reserved."""
    modalities = body.get("modalities")
    if (isinstance(modalities, list) and "audio" in modalities) or body.get("audio") is not None:
        raise InvalidRequest("Audio output is not priced by costbrake; use a text modality.", param="modalities")


def _predicted_output_tokens(body: Mapping[str, Any]) -> int:
    prediction = body.get("prediction")
    if prediction is None:
        return 0
    # Rejected prediction tokens are billed as output: bounded by the prediction's own size.
    message = {"role": "assistant", "content": _content_of(prediction)}
    return estimate_openai_input_tokens({"messages": [message]}).tokens


def _content_of(prediction: Any) -> Any:
    return prediction.get("content") if isinstance(prediction, Mapping) else prediction


def _anthropic_server_tools(body: dict[str, Any]) -> tuple[int, int, tuple[str, ...]]:
    """(web searches at most, extra sampling passes, unsized input) of the request's server tools.

    Each use adds a pass in which the model reads its context (results included) again, so the input bound is
    the context window once per pass. A server tool without max_uses gets DEFAULT_SERVER_TOOL_USES.
    """
    searches = passes = 0
    unsized: list[str] = []
    tools = body.get("tools")
    if not isinstance(tools, list):
        return 0, 0, ()
    bounded_tools = []
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if not isinstance(kind, str) or kind.startswith(_CLIENT_TOOL_PREFIXES):
            bounded_tools.append(tool)
            continue
        if not kind.startswith((_SEARCH_TOOL, _FETCH_TOOL)):
            raise InvalidRequest(
                f"The server tool '{kind}' is not priced by costbrake, so its cost cannot be bounded.", param="tools"
            )
        uses = tool.get("max_uses", DEFAULT_SERVER_TOOL_USES)
        if not isinstance(uses, int) or isinstance(uses, bool) or uses < 1:
            raise InvalidRequest(f"tools: '{kind}' max_uses must be a positive integer.", param="tools")
        bounded_tools.append({**tool, "max_uses": uses})
        passes += uses
        unsized.append("web search results" if kind.startswith(_SEARCH_TOOL) else "fetched pages")
        if kind.startswith(_SEARCH_TOOL):
            searches += uses
    body["tools"] = bounded_tools
    return searches, passes, tuple(unsized)


def anthropic_cache_write_ttl(body: Mapping[str, Any]) -> str | None:
    """The longest prompt-cache TTL the request writes with ("1h" costs 2x input, "5m" 1.25x), or None."""
    ttls = {str(marker.get("ttl") or "5m") for marker in _cache_controls(body)}
    if not ttls:
        return None
    return "1h" if ttls != {"5m"} else "5m"  # an unknown TTL is priced at the dearest rate


def _cache_controls(value: Any) -> Iterator[Mapping[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            marker = item.get("cache_control")
            if isinstance(marker, Mapping):
                yield marker
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
