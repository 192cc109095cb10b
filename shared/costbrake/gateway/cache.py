"""A small TTL cache so a warm gateway does not re-read keys, users and settings on every call."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from costbrake.clock import Clock

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, clock: Clock, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[datetime, V]] = {}

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        now = self._clock.now()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # crude but bounded; entries are cheap to reload
        self._entries[key] = (now + self._ttl, value)
        return value

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = (self._clock.now() + self._ttl, value)

    def clear(self) -> None:
        self._entries.clear()
