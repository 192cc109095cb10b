"""Calling the gateway app in-process from synchronous code (the replay, unit tests, the bench).

One private event loop per client (anyio's blocking portal) runs the app through httpx's ASGI transport:
the same routes, errors and settlement as over HTTP, without a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.applications import Starlette


class AppClient:
    def __init__(self, app: Starlette) -> None:
        self._app = app
        self._portal_context: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._client: httpx.AsyncClient = self._portal.call(self._new_client)

    async def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self._app), base_url="http://costbrake.local")

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            return await self._client.request(method, path, headers=dict(headers or {}), content=body)

        return self._portal.call(send)

    def post_json(self, path: str, payload: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
        import json

        return self.request(
            "POST", path, {"content-type": "application/json", **(headers or {})}, json.dumps(payload).encode()
        )

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
