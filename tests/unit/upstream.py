"""One upstream call the way the gateway's relay makes it (adapter + async transport), from synchronous tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from costbrake.providers.base import ProviderAdapter, UpstreamResult
from costbrake.providers.transport import encode_json, endpoint, new_client, open_upstream


def call_adapter(
    adapter: ProviderAdapter,
    body: Mapping[str, Any],
    *,
    api_key: str,
    base_url: str,
    timeout: float,
    extra_headers: Mapping[str, str] | None = None,
) -> UpstreamResult:
    async def call() -> UpstreamResult:
        async with new_client() as client:
            upstream = await open_upstream(
                client,
                endpoint(base_url, adapter.path),
                encode_json(adapter.upstream_body(body)),
                adapter.upstream_headers(api_key, extra_headers),
                provider=adapter.name,
                idle=timeout,
                total=timeout,
            )
            try:
                return adapter.result(await upstream.read(), body)
            finally:
                await upstream.close()

    return anyio.run(call)
