"""Rollups of call records: hourly and daily totals per scope, computed from the calls table's stream (pure).

A stream record's NEW_IMAGE becomes a ``StreamCall``; each call adds its ``Totals`` to 8 rollup keys (global,
its feature, its model and its user, each in the call's UTC hour and day). A batch is coalesced into one delta
per key, and split into groups that each fit one DynamoDB transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from costbrake.scopes import GLOBAL_SCOPE
from costbrake.windows import Window, span

ROLLUP_WINDOWS = (Window.HOUR, Window.DAY)


class MalformedCallRecord(ValueError):
    """A stream record that is not a call record this version understands (reported, never guessed at)."""


@dataclass(frozen=True)
class StreamCall:
    """The part of a call record (``costbrake.records.CallRecord``) that rollups need."""

    request_id: str
    timestamp: datetime  # UTC
    user_id: str
    feature: str
    model: str
    status: str  # "ok" | "error"
    cost_usd: Decimal
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    truncated: bool
    # The shared counters (pk, sk) its reservation charged and what they are owed: settled here, once.
    shared_counters: tuple[tuple[str, str], ...] = ()
    shared_delta: Decimal = Decimal(0)


@dataclass(frozen=True)
class CounterDelta:
    """What a group of calls settles on one shared counter."""

    committed: Decimal = Decimal(0)
    spent: Decimal = Decimal(0)
    calls: int = 0

    def __add__(self, other: CounterDelta) -> CounterDelta:
        return CounterDelta(self.committed + other.committed, self.spent + other.spent, self.calls + other.calls)


@dataclass(frozen=True)
class RollupKey:
    scope: str  # "global", "feature#chat", "model#gpt-4o", "user#alice"
    window: str  # "h#2026-11-24T10" or "d#2026-11-24"
    expires_at: int  # epoch seconds: follows from the window, so it never makes two keys differ


@dataclass(frozen=True)
class Totals:
    cost_usd: Decimal = Decimal(0)
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_hits: int = 0
    truncations: int = 0
    errors: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            cost_usd=self.cost_usd + other.cost_usd,
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_hits=self.cache_hits + other.cache_hits,
            truncations=self.truncations + other.truncations,
            errors=self.errors + other.errors,
        )

    @classmethod
    def of(cls, call: StreamCall) -> Totals:
        return cls(
            cost_usd=call.cost_usd,
            calls=1,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cache_read_tokens=call.cache_read_tokens,
            cache_hits=1 if call.cache_read_tokens > 0 else 0,  # prompt-cache reads count as a hit for now
            truncations=1 if call.truncated else 0,
            errors=1 if call.status == "error" else 0,
        )


def parse_call(image: Mapping[str, Any]) -> StreamCall:
    """A call from a deserialized NEW_IMAGE (strings, Decimals, bools); raises MalformedCallRecord."""
    stamp = _text(image, "timestamp")
    try:
        timestamp = datetime.fromisoformat(stamp)
    except ValueError:
        raise MalformedCallRecord(f"timestamp is not ISO-8601: {stamp!r}") from None
    if timestamp.tzinfo is None:
        raise MalformedCallRecord(f"timestamp has no time zone: {stamp!r}")
    cost = _number(image, "cost_usd")
    if cost < 0:
        raise MalformedCallRecord(f"cost_usd is negative: {cost}")
    truncated = image.get("truncated")
    if not isinstance(truncated, bool):
        raise MalformedCallRecord(f"truncated is not a boolean: {truncated!r}")
    return StreamCall(
        request_id=_text(image, "request_id"),
        timestamp=timestamp.astimezone(UTC),
        user_id=_text(image, "user_id"),
        feature=_text(image, "feature"),
        model=_text(image, "model"),
        status=_text(image, "status"),
        cost_usd=cost,
        input_tokens=_count(image, "input_tokens"),
        output_tokens=_count(image, "output_tokens"),
        cache_read_tokens=_count(image, "cache_read_tokens"),
        truncated=truncated,
        shared_counters=_shared_counters(image),
        shared_delta=_number(image, "shared_delta") if "shared_delta" in image else Decimal(0),
    )


def _shared_counters(image: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    text = image.get("shared_counters")
    if text is None:
        return ()
    try:
        counters = json.loads(text)
        return tuple((str(pk), str(sk)) for pk, sk in counters)
    except (TypeError, ValueError) as error:
        raise MalformedCallRecord(f"shared_counters is not a list of [pk, sk]: {text!r}") from error


def _text(image: Mapping[str, Any], name: str) -> str:
    value = image.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedCallRecord(f"{name} is missing or not a non-empty string: {value!r}")
    return value


def _number(image: Mapping[str, Any], name: str) -> Decimal:
    value = image.get(name)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise MalformedCallRecord(f"{name} is missing or not a number: {value!r}")
    return value


def _count(image: Mapping[str, Any], name: str) -> int:
    value = _number(image, name)
    if value < 0 or value != value.to_integral_value():
        raise MalformedCallRecord(f"{name} is not a count: {value}")
    return int(value)


def rollup_keys(call: StreamCall) -> list[RollupKey]:
    scopes = (GLOBAL_SCOPE, f"feature#{call.feature}", f"model#{call.model}", f"user#{call.user_id}")
    windows = _windows_of_hour(call.timestamp.replace(minute=0, second=0, microsecond=0))
    return [RollupKey(scope, key, expires_at) for key, expires_at in windows for scope in scopes]


@lru_cache(maxsize=512)
def _windows_of_hour(hour: datetime) -> tuple[tuple[str, int], ...]:
    """(key, expires_at) of each rollup window containing this hour (a batch mostly spans one or two hours)."""
    spans = [span(window, hour) for window in ROLLUP_WINDOWS]
    return tuple((window.key, window.expires_at) for window in spans)


def distinct_calls(calls: Iterable[StreamCall]) -> list[StreamCall]:
    """One call per request id (a batch can hold the same INSERT twice after a retry upstream)."""
    first: dict[str, StreamCall] = {}
    for call in calls:
        first.setdefault(call.request_id, call)
    return list(first.values())


def coalesce(calls: Iterable[StreamCall]) -> dict[RollupKey, Totals]:
    """One delta per rollup key: what the calls add to it."""
    deltas: dict[RollupKey, Totals] = {}
    for call in calls:
        totals = Totals.of(call)
        for key in rollup_keys(call):
            previous = deltas.get(key)
            deltas[key] = totals if previous is None else previous + totals
    return deltas


def counter_deltas(calls: Iterable[StreamCall]) -> dict[tuple[str, str], CounterDelta]:
    """One settle per shared counter (pk, sk): the calls' deltas, spend and count on it."""
    deltas: dict[tuple[str, str], CounterDelta] = {}
    for call in calls:
        delta = CounterDelta(call.shared_delta, call.cost_usd, 1)
        for counter in call.shared_counters:
            previous = deltas.get(counter)
            deltas[counter] = delta if previous is None else previous + delta
    return deltas


def plan_transactions(calls: Sequence[StreamCall], max_items: int) -> list[list[StreamCall]]:
    """Groups of calls whose markers (one item each) plus the distinct rollup keys and shared counters they touch
    fit ``max_items``.

    Calls of the same user and hour are grouped together: they share all 8 keys, so each key is written once
    per group rather than once per call.
    """
    ordered = sorted(calls, key=lambda call: (call.timestamp.date(), call.user_id, call.timestamp.hour, call.feature))
    groups: list[list[StreamCall]] = []
    current: list[StreamCall] = []
    keys: set[RollupKey | tuple[str, str]] = set()
    for call in ordered:
        call_keys: list[RollupKey | tuple[str, str]] = [*rollup_keys(call), *call.shared_counters]
        merged = keys.union(call_keys)
        if current and len(current) + 1 + len(merged) > max_items:
            groups.append(current)
            current, merged = [], set(call_keys)
        current.append(call)
        keys = merged
    if current:
        groups.append(current)
    return groups
