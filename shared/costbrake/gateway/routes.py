"""Routes: thin adapters from the Powertools resolver to the Gateway."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from costbrake.gateway.service import ANTHROPIC, OPENAI, Gateway, GatewayResponse

completions = APIGatewayRouter()
info = APIGatewayRouter()


def gateway() -> Gateway:
    from costbrake.gateway import api  # the deployment's gateway, built once per container

    return api.current_gateway()


def _headers(router: APIGatewayRouter) -> dict[str, str]:
    return {name.lower(): value for name, value in (router.current_event.headers or {}).items()}


def _respond(result: GatewayResponse) -> Response[Any]:
    return Response(
        status_code=result.status,
        content_type=result.content_type,
        body=result.body.decode("utf-8"),  # text (JSON or SSE); bytes would be base64-encoded by the resolver
        headers=result.headers,
    )


def _complete(router: APIGatewayRouter, provider: str) -> Response[Any]:
    event = router.current_event
    request_id = uuid.uuid4().hex
    router.append_context(request_id=request_id)
    # Raw bytes when API Gateway base64-encoded them (not UTF-8): parse_json_body refuses them with a 400.
    body = base64.b64decode(event.body or "") if event.is_base64_encoded else event.body
    return _respond(gateway().complete(provider, body, _headers(router), request_id))


@completions.post("/v1/chat/completions")
def chat_completions() -> Response[Any]:
    return _complete(completions, OPENAI)


@completions.post("/v1/messages")
def messages() -> Response[Any]:
    return _complete(completions, ANTHROPIC)


@info.get("/v1/models")
def models() -> dict[str, Any]:
    gateway().authenticate(_headers(info))
    return gateway().models()


@info.get("/v1/budget")
def budget() -> dict[str, Any]:
    return gateway().budget(_headers(info), info.current_event.get_query_string_value("user"))
