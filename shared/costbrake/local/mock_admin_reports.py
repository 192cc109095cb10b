"""The mock admin API's report bodies: buckets, grouping, filters and paging in each provider's shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from costbrake.formatting import plain_decimal
from costbrake.local.mock_admin import (
    ANTHROPIC,
    DEFAULT_LIMITS,
    OPENAI,
    WIDTHS,
    AdminApiError,
    AdminEntry,
    _Params,
    decode_page,
    encode_page,
)

if TYPE_CHECKING:
    from costbrake.local.mock_admin import MockAdmin

MOCK_PROJECT = "proj_costbrake_mock"
CENTS = Decimal(100)
LONG_CONTEXT = 200_000
OPENAI_LINE_ITEMS = {"uncached_input_tokens": "input", "cache_read_input_tokens": "cached input"}


def _bounds(
    admin: MockAdmin, params: _Params, *, unix: bool, widths: Iterable[str]
) -> tuple[list[tuple[datetime, datetime]], str | None]:
    width_name = params.one("bucket_width") or "1d"
    if width_name not in widths:
        raise AdminApiError(400, f"bucket_width must be one of {', '.join(widths)}")
    width = WIDTHS[width_name]
    first = params.one("start_time" if unix else "starting_at")
    if first is None:
        raise AdminApiError(400, "start_time is required" if unix else "starting_at is required")
    start = _snap(_time(first, unix), width)
    last = params.one("end_time" if unix else "ending_at")
    end = _time(last, unix) if last else admin.clock.now()
    page = params.one("page")
    if page:
        start = decode_page(page)
    limit = int(params.one("limit") or DEFAULT_LIMITS[width_name])
    buckets: list[tuple[datetime, datetime]] = []
    while start < end and len(buckets) < limit:
        buckets.append((start, start + width))
        start += width
    return buckets, (encode_page(start) if start < end else None)


def _time(value: str, unix: bool) -> datetime:
    try:
        if unix:
            return datetime.fromtimestamp(int(value), UTC)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise AdminApiError(400, f"not a time: {value!r}") from None


def _snap(moment: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // width) * width


def _page(
    admin: MockAdmin,
    params: _Params,
    *,
    unix: bool,
    widths: Iterable[str],
    rows: Callable[[list[AdminEntry]], list[dict[str, Any]]],
    provider: str,
) -> dict[str, Any]:
    buckets, next_page = _bounds(admin, params, unix=unix, widths=widths)
    entries = [e for e in admin.entries() if e.provider == provider]
    data = []
    for start, end in buckets:
        inside = [e for e in entries if start <= e.at < end]
        if unix:
            results = rows(inside)
            data.append({"object": "bucket", "start_time": _unix(start), "end_time": _unix(end), "results": results})
        else:
            data.append({"starting_at": _rfc(start), "ending_at": _rfc(end), "results": rows(inside)})
    page: dict[str, Any] = {"data": data, "has_more": next_page is not None, "next_page": next_page}
    return {"object": "page", **page} if unix else page


def _groups(
    entries: Iterable[AdminEntry], dims: dict[str, Callable[[AdminEntry], Any]], group_by: list[str]
) -> dict[tuple[Any, ...], list[AdminEntry]]:
    unknown = [name for name in group_by if name not in dims]
    if unknown:
        raise AdminApiError(400, f"cannot group by {', '.join(unknown)}")
    groups: dict[tuple[Any, ...], list[AdminEntry]] = {}
    for entry in entries:
        key = tuple(dims[name](entry) if name in group_by else None for name in dims)
        groups.setdefault(key, []).append(entry)
    return groups


def _filtered(entries: list[AdminEntry], params: _Params, filters: dict[str, Callable[[AdminEntry], Any]]) -> list:
    for name, value_of in filters.items():
        wanted = params.many(name)
        if wanted:
            entries = [e for e in entries if value_of(e) in wanted]
    return entries


# ---- Anthropic -------------------------------------------------------------------------------------------


def _tier(entry: AdminEntry) -> str:
    return entry.usage.service_tier or "standard"


def _window(entry: AdminEntry) -> str:
    return "200k-1M" if entry.usage.total_input_tokens > LONG_CONTEXT else "0-200k"


ANTHROPIC_DIMS: dict[str, Callable[[AdminEntry], Any]] = {
    "api_key_id": lambda e: e.api_key_id,
    "workspace_id": lambda e: None,  # the default workspace
    "model": lambda e: e.model,
    "service_tier": _tier,
    "context_window": _window,
}


def anthropic_usage(admin: MockAdmin, params: _Params) -> dict[str, Any]:
    filters = {"models": lambda e: e.model, "api_key_ids": lambda e: e.api_key_id, "service_tiers": _tier}
    filters["workspace_ids"] = ANTHROPIC_DIMS["workspace_id"]
    filters["context_window"] = _window

    def rows(entries: list[AdminEntry]) -> list[dict[str, Any]]:
        found = []
        groups = _groups(_filtered(entries, params, filters), ANTHROPIC_DIMS, params.many("group_by"))
        for key, members in groups.items():
            u = [e.usage for e in members]
            row = dict(zip(ANTHROPIC_DIMS, key, strict=True))
            row |= {
                "uncached_input_tokens": sum(x.input_tokens for x in u),
                "cache_creation": {
                    "ephemeral_1h_input_tokens": sum(x.cache_write_1h_tokens for x in u),
                    "ephemeral_5m_input_tokens": sum(x.cache_write_5m_tokens for x in u),
                },
                "cache_read_input_tokens": sum(x.cache_read_tokens for x in u),
                "output_tokens": sum(x.output_tokens for x in u),
                "server_tool_use": {"web_search_requests": sum(x.web_search_requests for x in u)},
            }
            found.append(row)
        return found

    return _page(admin, params, unix=False, widths=("1m", "1h", "1d"), rows=rows, provider=ANTHROPIC)


def anthropic_costs(admin: MockAdmin, params: _Params) -> dict[str, Any]:
    group_by = params.many("group_by")
    if set(group_by) - {"description", "workspace_id"}:
        raise AdminApiError(400, "group_by may hold description and workspace_id only")
    described = "description" in group_by

    def rows(entries: list[AdminEntry]) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], Decimal] = {}
        for entry in entries:
            if _tier(entry) == "priority":
                continue  # Anthropic: Priority Tier costs are not in the cost report
            for part, usd in admin.cost(entry).items():
                web = part == "web_search"
                key = ((entry.model if not web else None, part, _tier(entry), _window(entry)) if described else ()) + (
                    None,
                )
                sums[key] = sums.get(key, Decimal(0)) + usd
        found = []
        for key, usd in sums.items():
            row: dict[str, Any] = {"currency": "USD", "amount": plain_decimal(usd * CENTS), "workspace_id": None}
            row |= dict.fromkeys(("description", "cost_type", "model", "token_type", "service_tier"))
            row |= {"context_window": None, "inference_geo": None}
            if described:
                model, part, tier, window = key[:4]
                web = part == "web_search"
                row |= {
                    "cost_type": "web_search" if web else "tokens",
                    "model": model,
                    "token_type": None if web else part,
                    "service_tier": None if web else tier,
                    "context_window": None if web else window,
                    "description": "Web Search" if web else f"{model} Usage - {part}",
                }
            found.append(row)
        return found

    return _page(admin, params, unix=False, widths=("1d",), rows=rows, provider=ANTHROPIC)


# ---- OpenAI ----------------------------------------------------------------------------------------------


OPENAI_DIMS: dict[str, Callable[[AdminEntry], Any]] = {
    "project_id": lambda e: MOCK_PROJECT,
    "user_id": lambda e: None,
    "api_key_id": lambda e: e.api_key_id,
    "model": lambda e: e.model,
    "batch": lambda e: e.usage.service_tier == "batch",
    "service_tier": lambda e: e.usage.service_tier or "default",
}


def openai_usage(admin: MockAdmin, params: _Params, *, embeddings: bool) -> dict[str, Any]:
    filters = {"models": OPENAI_DIMS["model"], "api_key_ids": OPENAI_DIMS["api_key_id"]}
    filters["project_ids"] = OPENAI_DIMS["project_id"]
    kind = "embeddings" if embeddings else "completions"

    def rows(entries: list[AdminEntry]) -> list[dict[str, Any]]:
        chosen = [e for e in _filtered(entries, params, filters) if e.embeddings == embeddings]
        found = []
        for key, members in _groups(chosen, OPENAI_DIMS, params.many("group_by")).items():
            u = [e.usage for e in members]
            row: dict[str, Any] = {"object": f"organization.usage.{kind}.result"}
            row["input_tokens"] = sum(x.input_tokens + x.cache_read_tokens for x in u)
            if not embeddings:
                row |= {
                    "output_tokens": sum(x.output_tokens for x in u),
                    "input_cached_tokens": sum(x.cache_read_tokens for x in u),
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                }
            row["num_model_requests"] = sum(e.requests for e in members)
            found.append(row | dict(zip(OPENAI_DIMS, key, strict=True)))
        return found

    return _page(admin, params, unix=True, widths=("1m", "1h", "1d"), rows=rows, provider=OPENAI)


def openai_costs(admin: MockAdmin, params: _Params) -> dict[str, Any]:
    group_by = params.many("group_by")
    if set(group_by) - {"line_item", "project_id", "api_key_id"}:
        raise AdminApiError(400, "group_by may hold project_id, line_item and api_key_id only")

    def rows(entries: list[AdminEntry]) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], Decimal] = {}
        for entry in _filtered(entries, params, {"project_ids": OPENAI_DIMS["project_id"]}):
            for part, usd in admin.cost(entry).items():
                item = _line_item(entry.model, part) if "line_item" in group_by else None
                project = MOCK_PROJECT if "project_id" in group_by else None
                key_id = entry.api_key_id if "api_key_id" in group_by else None
                sums[(item, project, key_id)] = sums.get((item, project, key_id), Decimal(0)) + usd
        return [
            {
                "object": "organization.costs.result",
                "amount": {"value": usd, "currency": "usd"},
                "line_item": item,
                "project_id": project,
                "api_key_id": key_id,
            }
            for (item, project, key_id), usd in sums.items()
        ]

    return _page(admin, params, unix=True, widths=("1d",), rows=rows, provider=OPENAI)


def _line_item(model: str, part: str) -> str:
    if part == "web_search":
        return "web search tool calls"
    return f"{model}, {OPENAI_LINE_ITEMS.get(part, 'output' if part == 'output_tokens' else 'cache write')}"


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _rfc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
