"""A loopback stand-in for both providers' organisation usage and cost APIs, fed by what the mock provider billed.

Serves, in the real shapes (docs/reconciliation.md lists the sources):
- Anthropic: ``GET /v1/organizations/usage_report/messages`` and ``GET /v1/organizations/cost_report``
  (``x-api-key`` an admin key, ``anthropic-version``; amounts in cents as decimal strings; Priority Tier usage is
  left out of the cost report, as Anthropic documents);
- OpenAI: ``GET /v1/organization/usage/completions``, ``/usage/embeddings`` and ``GET /v1/organization/costs``
  (``Authorization: Bearer`` an admin key; ``amount.value`` a JSON number in dollars, written exactly).
Buckets of 1m/1h/1d (costs: 1d), ``group_by``, the model/key/project filters, ``limit`` and paging
(``has_more``/``next_page``) work as documented.

Each generation in ``MockProvider.billed`` is stamped with the time it was first seen (a watcher thread looks
every few milliseconds; ``sync()`` stamps at once), on the gateway's provider key ``gateway_key_ids[provider]``.
Tests add what costbrake never saw: ``add_outside_usage`` (a key used directly, a batch job) and a price change
(``set_price`` / ``scale_price``: the cost report prices that model's usage at another rate from then on).
For ``costbrake local``: ``start_admin_mock(stack.mock_provider)`` and point ``COSTBRAKE_*_ADMIN_BASE_URL`` at it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from costbrake.clock import Clock, SystemClock
from costbrake.errors import UnknownModel
from costbrake.formatting import plain_decimal
from costbrake.local.mock_provider import MockProvider
from costbrake.pricing import ModelPrice, PriceTable, TokenRates, usage_from_anthropic, usage_from_openai
from costbrake.usage import Usage

OPENAI, ANTHROPIC = "openai", "anthropic"
OPENAI_ADMIN_KEY = "sk-admin-costbrake-mock"
ANTHROPIC_ADMIN_KEY = "sk-ant-admin01-costbrake-mock"
GATEWAY_KEY_IDS = {OPENAI: "key_costbrake_gateway", ANTHROPIC: "apikey_costbrake_gateway"}
WIDTHS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
DEFAULT_LIMITS = {"1m": 60, "1h": 24, "1d": 7}
ANTHROPIC_TOKEN_TYPES = (  # (token_type, Usage field)
    ("uncached_input_tokens", "input_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("cache_creation.ephemeral_5m_input_tokens", "cache_write_5m_tokens"),
    ("cache_creation.ephemeral_1h_input_tokens", "cache_write_1h_tokens"),
    ("output_tokens", "output_tokens"),
)


@dataclass(frozen=True)
class AdminEntry:
    """One billed generation (or outside usage) as the admin APIs count it."""

    at: datetime
    provider: str
    model: str
    usage: Usage
    api_key_id: str
    embeddings: bool = False
    requests: int = 1


class AdminApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class MockAdmin:
    def __init__(
        self,
        provider: MockProvider,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        prices: PriceTable | None = None,
        openai_admin_key: str = OPENAI_ADMIN_KEY,
        anthropic_admin_key: str = ANTHROPIC_ADMIN_KEY,
        gateway_key_ids: Mapping[str, str] = GATEWAY_KEY_IDS,
        watch_seconds: float | None = 0.01,
    ) -> None:
        self.provider = provider
        self.clock = clock or SystemClock()
        self.keys = {OPENAI: openai_admin_key, ANTHROPIC: anthropic_admin_key}
        self.gateway_key_ids = dict(gateway_key_ids)
        self._prices = prices or PriceTable.default()
        self._address = (host, port)
        self._watch_seconds = watch_seconds
        self._lock = threading.Lock()
        self._stamps: list[datetime] = []
        self._outside: list[AdminEntry] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.base_url = ""
        self.sync()

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> str:
        server = ThreadingHTTPServer(self._address, _Handler)
        server.daemon_threads = True
        server.admin = self  # type: ignore[attr-defined]
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._stopping.clear()
        self._threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)]
        if self._watch_seconds:
            self._threads.append(threading.Thread(target=self._watch, daemon=True))
        for thread in self._threads:
            thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server, self._threads = None, []

    def __enter__(self) -> MockAdmin:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stopping.wait(self._watch_seconds):
            self.sync()

    # ---- what the provider billed, and what it did not see through costbrake ----------------------------------

    def sync(self) -> None:
        """Stamp the generations billed since the last look with the time now (or their own, if they carry one)."""
        with self._lock:
            billed = list(self.provider.billed)
            for entry in billed[len(self._stamps) :]:
                stamp = getattr(entry, "at", None)
                self._stamps.append(stamp if isinstance(stamp, datetime) else self.clock.now())

    def add_outside_usage(
        self,
        provider: str,
        model: str,
        *,
        at: datetime,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        api_key_id: str | None = None,
        requests: int = 1,
    ) -> None:
        """Usage costbrake never saw, on ``api_key_id`` (default: the gateway's own provider key, used directly),
        as ``requests`` calls sharing the tokens evenly (each is priced as one call: its context tier)."""
        key = api_key_id or self.gateway_key_ids[provider]
        counts = (input_tokens, output_tokens, cached_tokens, cache_write_tokens)
        entries = []
        for index in range(requests):
            share = [count // requests + (1 if index < count % requests else 0) for count in counts]
            usage = Usage(
                input_tokens=share[0],
                output_tokens=share[1],
                cache_read_tokens=share[2],
                cache_write_5m_tokens=share[3],
            )
            entries.append(AdminEntry(at.astimezone(UTC), provider, model, usage, key))
        with self._lock:
            self._outside.extend(entries)

    def set_price(self, price: ModelPrice) -> None:
        """The provider bills ``price.model`` at this price from now on (all of its usage, as a cost report would
        after a price change the gateway's table missed)."""
        with self._lock:
            self._prices = self._prices.with_overrides([price])

    def scale_price(self, model: str, factor: Decimal) -> None:
        base = self._prices.get(model)
        rates = _scaled(base.rates, factor)
        long_rates = None if base.long_context_rates is None else _scaled(base.long_context_rates, factor)
        self.set_price(replace(base, model=model, rates=rates, long_context_rates=long_rates, service_tiers=()))

    def entries(self) -> list[AdminEntry]:
        self.sync()
        with self._lock:
            billed = list(self.provider.billed)[: len(self._stamps)]
            stamps, outside = list(self._stamps), list(self._outside)
        found = [_billed_entry(b, at, self.gateway_key_ids) for b, at in zip(billed, stamps, strict=True)]
        return [entry for entry in found if entry is not None] + outside

    def cost(self, entry: AdminEntry) -> dict[str, Decimal]:
        """The entry's cost by token type (and web search), at the admin's current prices; {} if unpriced."""
        with self._lock:
            prices = self._prices
        try:
            return cost_components(prices.get(entry.model), entry.usage)
        except UnknownModel:
            return {}

    # ---- the HTTP API ---------------------------------------------------------------------------------------

    def answer(self, path: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str]) -> dict[str, Any]:
        from costbrake.local import mock_admin_reports as reports

        params = _Params(query)
        if path == "/v1/organizations/usage_report/messages":
            self._check_anthropic(headers)
            return reports.anthropic_usage(self, params)
        if path == "/v1/organizations/cost_report":
            self._check_anthropic(headers)
            return reports.anthropic_costs(self, params)
        if path in ("/v1/organization/usage/completions", "/v1/organization/usage/embeddings"):
            self._check_openai(headers)
            return reports.openai_usage(self, params, embeddings=path.endswith("embeddings"))
        if path == "/v1/organization/costs":
            self._check_openai(headers)
            return reports.openai_costs(self, params)
        raise AdminApiError(404, f"Unknown admin route {path}")

    def _check_anthropic(self, headers: Mapping[str, str]) -> None:
        if headers.get("x-api-key") != self.keys[ANTHROPIC]:
            raise AdminApiError(401, "invalid x-api-key: an admin key (sk-ant-admin...) is required")
        if not headers.get("anthropic-version"):
            raise AdminApiError(400, "anthropic-version header is required")

    def _check_openai(self, headers: Mapping[str, str]) -> None:
        if headers.get("authorization") != f"Bearer {self.keys[OPENAI]}":
            raise AdminApiError(401, "Incorrect API key provided: an admin key is required")


def _scaled(rates: TokenRates, factor: Decimal) -> TokenRates:
    return TokenRates(
        input=rates.input * factor,
        output=rates.output * factor,
        cache_read=rates.cache_read * factor,
        cache_write_5m=rates.cache_write_5m * factor,
        cache_write_1h=rates.cache_write_1h * factor,
        reasoning=rates.reasoning * factor,
    )


def start_admin_mock(provider: MockProvider, **options: Any) -> tuple[MockAdmin, str]:
    """A started admin mock over ``provider`` and its base URL (the same for both providers)."""
    admin = MockAdmin(provider, **options)
    return admin, admin.start()


def cost_components(price: ModelPrice, usage: Usage) -> dict[str, Decimal]:
    """``costbrake.pricing.cost_of`` split by Anthropic's token types (plus ``web_search``); they sum to it."""
    rates = price.rates_for(usage.total_input_tokens, usage.service_tier or "standard")
    input_rate = max(rates.input, rates.cache_write_5m) if price.provider == OPENAI else rates.input
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    parts = {
        "uncached_input_tokens": usage.input_tokens * input_rate,
        "cache_read_input_tokens": usage.cache_read_tokens * rates.cache_read,
        "cache_creation.ephemeral_5m_input_tokens": usage.cache_write_5m_tokens * rates.cache_write_5m,
        "cache_creation.ephemeral_1h_input_tokens": usage.cache_write_1h_tokens * rates.cache_write_1h,
        "output_tokens": (usage.output_tokens - reasoning) * rates.billed_output + reasoning * rates.billed_reasoning,
        "web_search": usage.web_search_requests * price.web_search_price,
    }
    return {name: amount for name, amount in parts.items() if amount}


def _billed_entry(billed: Any, at: datetime, key_ids: Mapping[str, str]) -> AdminEntry | None:
    raw: Mapping[str, Any] = billed.usage
    try:
        if billed.dialect == ANTHROPIC:
            usage = usage_from_anthropic(raw)
            return AdminEntry(at, ANTHROPIC, billed.model, usage, key_ids[ANTHROPIC])
        searches = int(raw.get("web_search_requests") or 0)
        if "prompt_tokens" in raw and "completion_tokens" not in raw:  # an embeddings answer
            usage = Usage(input_tokens=int(raw["prompt_tokens"]))
            return AdminEntry(at, OPENAI, billed.model, usage, key_ids[OPENAI], embeddings=True)
        if "input_tokens" in raw and "prompt_tokens" not in raw:  # a Responses answer
            raw = {
                "prompt_tokens": raw.get("input_tokens"),
                "completion_tokens": raw.get("output_tokens"),
                "prompt_tokens_details": raw.get("input_tokens_details"),
                "completion_tokens_details": raw.get("output_tokens_details"),
            }
        usage = usage_from_openai(raw, service_tier=billed.service_tier, web_search_requests=searches)
        return AdminEntry(at, OPENAI, billed.model, usage, key_ids[OPENAI])
    except (ValueError, KeyError, TypeError):
        return None


class _Params:
    """A query string's values, with ``name`` and ``name[]`` as the same (both providers' array styles)."""

    def __init__(self, query: Sequence[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in query:
            self._values.setdefault(name.removesuffix("[]"), []).append(value)

    def one(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> list[str]:
        return [v for value in self._values.get(name, []) for v in value.split(",") if v]


def encode_page(start: datetime) -> str:
    return "page_" + base64.urlsafe_b64encode(start.isoformat().encode()).decode()


def decode_page(token: str) -> datetime:
    try:
        return datetime.fromisoformat(base64.urlsafe_b64decode(token.removeprefix("page_").encode()).decode())
    except ValueError:
        raise AdminApiError(400, f"invalid page token {token!r}") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "costbrake-mock-admin/1"

    def do_GET(self) -> None:
        admin = cast(MockAdmin, self.server.admin)  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        anthropic = parts.path.startswith("/v1/organizations/")
        try:
            status, body = 200, admin.answer(parts.path, parse_qsl(parts.query), headers)
        except AdminApiError as error:
            status, body = error.status, _error_body(anthropic, error)
        payload = dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # quiet, like the mock provider
        return


def _error_body(anthropic: bool, error: AdminApiError) -> dict[str, Any]:
    kind = {401: "authentication_error", 404: "not_found_error"}.get(error.status, "invalid_request_error")
    if anthropic:
        return {"type": "error", "error": {"type": kind, "message": error.message}}
    return {"error": {"message": error.message, "type": "invalid_request_error", "code": kind, "param": None}}


def dumps(value: Any) -> str:
    """JSON where a Decimal is written as the exact number it is (OpenAI's ``amount.value`` is a number)."""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    return json.dumps(value)
