"""OpenAI embeddings upstream: POST /v1/embeddings, JSON only; billed by ``usage.prompt_tokens`` at the input rate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from costbrake.pricing import EMBEDDING, usage_from_openai_embeddings
from costbrake.providers.base import EMBEDDINGS, OPENAI, UpstreamResult
from costbrake.providers.openai_chat import openai_headers
from costbrake.providers.transport import RawResponse
from costbrake.usage import Usage


class OpenAIEmbeddingsAdapter:
    name = OPENAI
    api = EMBEDDINGS
    path = "/v1/embeddings"
    modes = (EMBEDDING,)

    def upstream_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(body)

    def upstream_headers(self, api_key: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]:
        return openai_headers(api_key, extra_headers)

    def result(self, raw: RawResponse, client_body: Mapping[str, Any]) -> UpstreamResult:
        usage: Usage | None = None
        model: str | None = None
        if 200 <= raw.status < 300:
            usage, model = _parse(raw.body)
        return UpstreamResult(raw.status, raw.body, raw.content_type, usage, model, None, raw.request_id)

    def relays(self, event: bytes, client_body: Mapping[str, Any]) -> bool:
        return True

    def streamed_output_bytes(self, body: bytes) -> int:
        return 0  # embeddings have no output tokens (and no streams)


def _parse(body: bytes) -> tuple[Usage | None, str | None]:
    try:
        answer = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(answer, dict):
        return None, None
    model = answer.get("model")
    raw_usage = answer.get("usage")
    try:
        usage = usage_from_openai_embeddings(raw_usage) if isinstance(raw_usage, dict) else None
    except (KeyError, TypeError, ValueError):
        usage = None  # malformed counts: the worst case is charged and the record flagged
    return usage, model if isinstance(model, str) and model else None
