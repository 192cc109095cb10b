"""The gateway as one ASGI app: the same code behind the Lambda Web Adapter in AWS and under uvicorn locally.

Routes are thin: read the request, call the Gateway (in a worker thread: its ledger I/O is synchronous) or the
Relay (async: the provider call streams), answer. Domain errors become HTTP in one place, in each provider's
own error JSON, so the official SDKs raise their usual exceptions. ``create_app`` is the composition root
uvicorn calls (``uvicorn --factory costbrake.gateway.asgi:create_app``); tests and the local stack build the app
around a Gateway of their own with ``build_app``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from anyio import to_thread
from aws_lambda_powertools import Logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from costbrake.errors import CostbrakeError, InputTooLarge, NotFound
from costbrake.gateway import telemetry
from costbrake.gateway.errors import anthropic_error_body, openai_error_body
from costbrake.gateway.relay import Relay
from costbrake.gateway.service import Gateway
from costbrake.gateway.settlement import Settler
from costbrake.providers.base import CHAT_COMPLETIONS, COUNT_TOKENS, EMBEDDINGS, MESSAGES, RESPONSES
from costbrake.providers.transport import new_client

logger = Logger(service="costbrake")
HEALTH_PATH = "/healthz"  # the Lambda Web Adapter's readiness check
# Billed calls, by route; count_tokens is served free.
_CALL_ROUTES = {
    "/v1/chat/completions": CHAT_COMPLETIONS,
    "/v1/responses": RESPONSES,
    "/v1/embeddings": EMBEDDINGS,
    "/v1/messages": MESSAGES,
}
_FREE_ROUTES = {"/v1/messages/count_tokens": COUNT_TOKENS}
_SERVED = ", ".join(
    [f"POST {path}" for path in (*_CALL_ROUTES, *_FREE_ROUTES)]
    + ["GET /v1/models", "GET /v1/budget", "GET /v1/calls/{request_id}"]
)


def build_app(gateway: Gateway, client: httpx.AsyncClient | None = None) -> Starlette:
    settings = gateway.settings
    relay = Relay(gateway, Settler(gateway.spend), client or new_client(), settings)

    async def call(request: Request) -> Response:
        body = await _body(request, settings.max_body_bytes)
        request.state.body = body
        return await relay.complete(_CALL_ROUTES[request.url.path], body, _headers(request), uuid.uuid4().hex)

    async def free_call(request: Request) -> Response:
        body = await _body(request, settings.max_body_bytes)
        request.state.body = body
        return await relay.free(_FREE_ROUTES[request.url.path], body, _headers(request), uuid.uuid4().hex)

    async def models(request: Request) -> Response:
        headers = _headers(request)

        def listed() -> dict[str, Any]:
            gateway.authenticate(headers)
            return gateway.models()

        return JSONResponse(await to_thread.run_sync(listed))

    async def budget(request: Request) -> Response:
        user = request.query_params.get("user")
        return JSONResponse(await to_thread.run_sync(gateway.budget, _headers(request), user))

    async def call_detail(request: Request) -> Response:
        record = await to_thread.run_sync(gateway.call_record, _headers(request), request.path_params["request_id"])
        return JSONResponse(call_json(record))

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def unknown_route(request: Request) -> Response:
        raise NotFound(f"costbrake does not serve {request.method} {request.url.path}; it serves {_SERVED}.")

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, CostbrakeError)
        body = getattr(request.state, "body", b"")
        labels = await to_thread.run_sync(telemetry.rejection_labels, error, _headers(request), body, gateway)
        telemetry.rejected(error, *labels)
        log = logger.warning if error.status >= 500 else logger.info
        log("request failed" if error.status >= 500 else "request refused", extra=_refusal(request, error))
        return Response(_error_json(request, error), error.status, error.headers, "application/json")

    every_method = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        *(Route(path, call, methods=["POST"]) for path in _CALL_ROUTES),
        *(Route(path, free_call, methods=["POST"]) for path in _FREE_ROUTES),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/budget", budget, methods=["GET"]),
        Route("/v1/calls/{request_id}", call_detail, methods=["GET"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route("/{path:path}", unknown_route, methods=every_method),
    ]
    return Starlette(routes=routes, exception_handlers={CostbrakeError: refused})


def create_app() -> Starlette:
    """The deployment's app, wired from validated settings (the environment, read once at cold start)."""
    from costbrake.wiring import gateway_from_settings  # the composition root; not loaded by build_app's users

    return build_app(gateway_from_settings())


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (never read whole first)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputTooLarge(f"The request body is over {limit} bytes.")
        parts.append(chunk)
    return b"".join(parts)


def _error_json(request: Request, error: CostbrakeError) -> str:
    """The error in the caller's provider's JSON: Anthropic's on its routes (and on any route an Anthropic SDK
    calls, which always sends ``anthropic-version``), OpenAI's elsewhere."""
    path = request.url.path.rstrip("/")
    anthropic = path == "/v1/messages" or path.startswith("/v1/messages/")
    if path not in _CALL_ROUTES and not anthropic:
        anthropic = "anthropic-version" in request.headers
    return anthropic_error_body(error) if anthropic else openai_error_body(error)


def _headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _refusal(request: Request, error: CostbrakeError) -> dict[str, Any]:
    return {"status": error.status, "reason": error.message, "path": request.url.path, "method": request.method}


def call_json(record: Any) -> Mapping[str, Any]:
    """A call's cost and usage, as GET /v1/calls/{request_id} answers (no prompt: prompts are not stored)."""
    return {
        "object": "costbrake.call",
        "request_id": record.request_id,
        "created": record.timestamp.isoformat(),
        "status": record.status,
        "http_status": record.http_status,
        "model_requested": record.model_requested,
        "model": record.model,
        "feature": record.feature,
        "user": record.user_id,
        "stream": record.stream,
        "cost_usd": format(record.cost_usd, "f"),
        "reserved_usd": format(record.reserved_usd, "f"),
        "usage": {
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "cache_read_tokens": record.cache_read_tokens,
            "cache_write_tokens": record.cache_write_tokens,
            "reasoning_tokens": record.reasoning_tokens,
            "estimated": record.usage_estimated,
        },
        "finish_reason": record.finish_reason,
        "error": record.error,
        "latency_ms": record.latency_ms,
        "cache": {
            "status": record.cache_status,
            "hit": record.cache_hit,
            "saved_usd": format(record.saved_usd, "f"),
            "similarity": format(record.cache_similarity, "f") if record.cache_similarity is not None else None,
        },
        "truncated_messages": record.truncated_messages,
    }


__all__ = ["HEALTH_PATH", "build_app", "call_json", "create_app"]
