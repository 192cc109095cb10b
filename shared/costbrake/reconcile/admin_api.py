"""Clients of the providers' organisation usage and cost APIs (admin keys, read-only), over httpx.

Anthropic (Usage & Cost Admin API, ``x-api-key: sk-ant-admin…`` and ``anthropic-version``):
- ``GET /v1/organizations/usage_report/messages``: ``starting_at``/``ending_at`` (RFC 3339), ``bucket_width``
  ``1d``, ``group_by[]`` (model, api_key_id, service_tier), ``workspace_ids[]``; results carry
  ``uncached_input_tokens``, ``cache_read_input_tokens``, ``cache_creation.ephemeral_{5m,1h}_input_tokens``,
  ``output_tokens``;
- ``GET /v1/organizations/cost_report``: ``group_by[]=description`` gives each row its ``model`` and
  ``cost_type``; ``amount`` is a decimal STRING in cents (``"123.45"`` is $1.2345), ``currency`` ``USD``;
  Priority Tier costs are not in it.
OpenAI (organisation Usage and Costs APIs, ``Authorization: Bearer <admin key>``):
- ``GET /v1/organization/usage/completions`` (and ``/embeddings``): ``start_time``/``end_time`` (Unix seconds),
  ``bucket_width`` ``1d``, ``group_by`` (model, api_key_id), ``project_ids``; results carry ``input_tokens``
  (cached included), ``input_cached_tokens``, ``output_tokens``, ``num_model_requests``;
- ``GET /v1/organization/costs``: ``group_by=line_item``; ``amount.value`` is a JSON NUMBER in dollars
  (parsed here straight into a Decimal), ``amount.currency`` ``usd``; a line item reads ``"<model>, <kind>"``.
Both page with ``has_more`` and ``next_page`` (sent back as ``page``). Sources: docs/reconciliation.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import httpx

from costbrake.errors import CostbrakeError
from costbrake.providers.base import ANTHROPIC, OPENAI
from costbrake.reconcile.figures import ProviderCost, ProviderReport, ProviderUsage, Tokens

ANTHROPIC_VERSION = "2023-06-01"
DAY_BUCKETS_PER_PAGE = 31  # the most either API returns per page for 1d buckets (OpenAI's costs allow 180)
MAX_PAGES = 200  # a runaway pager (a provider repeating a token) stops here
CENTS = Decimal(100)
PRIORITY = "priority"


class AdminApiError(CostbrakeError):
    """A provider's admin API refused or could not be reached (the message never holds the key)."""

    status = 502


class AdminClient(Protocol):
    provider: str

    def report(self, start: datetime, end: datetime) -> ProviderReport:
        """Usage and costs of the UTC days in [start, end), both day-aligned."""
        ...


class _Admin:
    provider = ""

    def __init__(self, base_url: str, headers: Mapping[str, str], http: httpx.Client | None, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._secrets = [value.removeprefix("Bearer ") for value in headers.values() if len(value) > 12]
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _pages(self, path: str, params: Sequence[tuple[str, str]]) -> Iterator[Mapping[str, Any]]:
        """Every bucket of every page of ``path``."""
        page: str | None = None
        for _ in range(MAX_PAGES):
            query = [*params, *([("page", page)] if page else [])]
            body = self._get(path, query)
            buckets = body.get("data")
            if not isinstance(buckets, list):
                raise AdminApiError(f"The {self.provider} admin API answered {path} without a data list.")
            yield from buckets
            page = body.get("next_page")
            if not body.get("has_more") or not page:
                return
        raise AdminApiError(f"The {self.provider} admin API kept paging {path} past {MAX_PAGES} pages.")

    def _get(self, path: str, params: Sequence[tuple[str, str]]) -> Mapping[str, Any]:
        try:
            response = self._http.get(f"{self._base_url}{path}", params=list(params), headers=self._headers)
        except httpx.HTTPError as error:
            kind = type(error).__name__
            raise AdminApiError(f"The {self.provider} admin API could not be reached ({kind}).") from None
        if response.status_code != 200:
            text = _error_text(response)
            for secret in self._secrets:  # a provider that echoes the key back must not put it in a log
                text = text.replace(secret, "[redacted]")
            raise AdminApiError(f"The {self.provider} admin API answered {path} with {response.status_code}: {text}")
        try:
            body = json.loads(response.text, parse_float=Decimal)  # amounts stay exact
        except ValueError:
            raise AdminApiError(f"The {self.provider} admin API answered {path} with invalid JSON.") from None
        if not isinstance(body, dict):
            raise AdminApiError(f"The {self.provider} admin API answered {path} with a non-object.")
        return body


class AnthropicAdmin(_Admin):
    provider = ANTHROPIC

    def __init__(
        self,
        admin_key: str,
        base_url: str = "https://api.anthropic.com",
        *,
        workspace_ids: Sequence[str] = (),
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"x-api-key": admin_key, "anthropic-version": ANTHROPIC_VERSION}
        super().__init__(base_url, headers, http, timeout)
        self._workspaces = tuple(workspace_ids)

    def report(self, start: datetime, end: datetime) -> ProviderReport:
        window = [("starting_at", _rfc3339(start)), ("ending_at", _rfc3339(end)), ("bucket_width", "1d")]
        window.append(("limit", str(DAY_BUCKETS_PER_PAGE)))
        workspaces = [("workspace_ids[]", w) for w in self._workspaces]
        grouping = [("group_by[]", g) for g in ("model", "api_key_id", "service_tier")]
        usage = [
            _anthropic_usage(_day_of(bucket.get("starting_at")), row)
            for bucket in self._pages("/v1/organizations/usage_report/messages", [*window, *grouping, *workspaces])
            for row in _results(bucket)
        ]
        # The cost report filters by workspace only through grouping: rows of other workspaces are dropped here.
        cost_grouping = [("group_by[]", "description"), *([("group_by[]", "workspace_id")] if self._workspaces else [])]
        costs = [
            _anthropic_cost(_day_of(bucket.get("starting_at")), row)
            for bucket in self._pages("/v1/organizations/cost_report", [*window, *cost_grouping])
            for row in _results(bucket)
            if not self._workspaces or row.get("workspace_id") in self._workspaces
        ]
        return ProviderReport(ANTHROPIC, tuple(usage), tuple(costs), excluded_tiers=frozenset({PRIORITY}))


class OpenAIAdmin(_Admin):
    provider = OPENAI

    def __init__(
        self,
        admin_key: str,
        base_url: str = "https://api.openai.com",
        *,
        project_ids: Sequence[str] = (),
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(base_url, {"Authorization": f"Bearer {admin_key}"}, http, timeout)
        self._projects = tuple(project_ids)

    def report(self, start: datetime, end: datetime) -> ProviderReport:
        window = [("start_time", str(int(start.timestamp()))), ("end_time", str(int(end.timestamp())))]
        window += [("bucket_width", "1d"), ("limit", str(DAY_BUCKETS_PER_PAGE))]
        window += [("project_ids", p) for p in self._projects]
        grouping = [("group_by", "model"), ("group_by", "api_key_id")]
        usage = [
            _openai_usage(_day_of(bucket.get("start_time")), row, embeddings=path.endswith("embeddings"))
            for path in ("/v1/organization/usage/completions", "/v1/organization/usage/embeddings")
            for bucket in self._pages(path, [*window, *grouping])
            for row in _results(bucket)
        ]
        models = {u.model for u in usage}
        costs = [
            _openai_cost(_day_of(bucket.get("start_time")), row, models)
            for bucket in self._pages("/v1/organization/costs", [*window, ("group_by", "line_item")])
            for row in _results(bucket)
        ]
        return ProviderReport(OPENAI, tuple(usage), tuple(costs))


# ---- parsing ---------------------------------------------------------------------------------------------


def _results(bucket: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # OpenAI's reference names the list "result", its answers (and every client we checked) "results".
    rows = bucket.get("results", bucket.get("result", []))
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise AdminApiError("A usage or cost bucket holds no list of results.")
    return rows


def _anthropic_usage(day: date, row: Mapping[str, Any]) -> ProviderUsage:
    cache = _mapping(row, "cache_creation")
    tokens = Tokens(
        input=_count(row, "uncached_input_tokens"),
        cached=_count(row, "cache_read_input_tokens"),
        cache_write=_count(cache, "ephemeral_5m_input_tokens") + _count(cache, "ephemeral_1h_input_tokens"),
        output=_count(row, "output_tokens"),
    )
    return ProviderUsage(
        day, ANTHROPIC, _text(row, "model"), tokens, row.get("api_key_id"), row.get("service_tier"), None
    )


def _anthropic_cost(day: date, row: Mapping[str, Any]) -> ProviderCost:
    currency = str(row.get("currency") or "USD").upper()
    if currency != "USD":
        raise AdminApiError(f"The Anthropic cost report is in {currency}, not USD.")
    cents = _decimal(row.get("amount"), "amount")
    kind = row.get("cost_type") or "tokens"
    model = row.get("model") if kind == "tokens" else None
    return ProviderCost(day, ANTHROPIC, cents / CENTS, model if isinstance(model, str) and model else None, kind)


def _openai_usage(day: date, row: Mapping[str, Any], *, embeddings: bool) -> ProviderUsage:
    total_input = _count(row, "input_tokens")
    cached = 0 if embeddings else _count(row, "input_cached_tokens")
    tokens = Tokens(
        input=max(total_input - cached, 0),
        cached=cached,
        output=0 if embeddings else _count(row, "output_tokens"),
    )
    requests = row.get("num_model_requests")
    return ProviderUsage(
        day,
        OPENAI,
        _text(row, "model"),
        tokens,
        row.get("api_key_id"),
        row.get("service_tier"),
        requests if isinstance(requests, int) else None,
    )


def _openai_cost(day: date, row: Mapping[str, Any], usage_models: set[str]) -> ProviderCost:
    amount = _mapping(row, "amount")
    currency = str(amount.get("currency") or "usd").lower()
    if currency != "usd":
        raise AdminApiError(f"The OpenAI costs are in {currency}, not usd.")
    usd = _decimal(amount.get("value", 0), "amount.value")
    item = str(row.get("line_item") or "")
    return ProviderCost(day, OPENAI, usd, line_item_model(item, usage_models), item or "unattributed")


def line_item_model(item: str, usage_models: set[str]) -> str | None:
    """The model a line item such as ``gpt-4o-2024-08-06, input`` is for, when it names one the usage report
    has (or one that looks like a model); None for line items like web search or file storage."""
    head = item.split(",", 1)[0].strip()
    if not head:
        return None
    if head in usage_models or (" " not in head and head.lower() == head and any(c.isdigit() for c in head)):
        return head
    return None


def _day_of(value: Any) -> date:
    """A bucket's UTC day from RFC 3339 text (Anthropic) or Unix seconds (OpenAI)."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value), UTC).date()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).date()
        except ValueError:
            pass
    raise AdminApiError(f"A bucket's start is not a time: {value!r}")


def _mapping(row: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = row.get(key)
    return value if isinstance(value, Mapping) else {}


def _count(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AdminApiError(f"{key} is not a token count: {value!r}")
    return value


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise AdminApiError(f"{name} is not an amount: {value!r}")
    try:
        amount = Decimal(value) if isinstance(value, str | int | Decimal) else None
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite():
        raise AdminApiError(f"{name} is not an amount: {value!r}")
    return amount


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return value if isinstance(value, str) and value else "(unknown model)"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_text(response: httpx.Response) -> str:
    """The provider's error message (both providers answer {"error": {"message": ...}}), cut short."""
    try:
        error = response.json().get("error", {})
        message = error.get("message") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        message = None
    return str(message or response.reason_phrase)[:200]
