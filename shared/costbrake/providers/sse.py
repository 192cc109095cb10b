"""Server-sent events: parsed from a body (whole, or cut short), and cut into whole events as they arrive."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# SSE lines end with CRLF, LF or CR; str.splitlines() would also split on U+2028 inside JSON strings.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str


def iter_sse_events(body: bytes) -> Iterator[SseEvent]:
    """Events in order, following the WHATWG event-stream rules for the ``event`` and ``data`` fields.

    A last event without its closing blank line (a stream cut short) is still yielded: its data may be
    complete, and a caller that cannot parse it simply ignores it.
    """
    event_name: str | None = None
    data_lines: list[str] = []
    for line in _LINE_BREAK.split(body.decode("utf-8", errors="replace")):
        if not line:
            if data_lines:
                yield SseEvent(event_name, "\n".join(data_lines))
            event_name, data_lines = None, []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event_name = value
        elif field == "data":
            data_lines.append(value)
    if data_lines:
        yield SseEvent(event_name, "\n".join(data_lines))


def encode_sse_events(events: Iterable[SseEvent]) -> bytes:
    parts: list[str] = []
    for event in events:
        if event.event is not None:
            parts.append(f"event: {event.event}\n")
        parts.extend(f"data: {line}\n" for line in event.data.split("\n"))
        parts.append("\n")
    return "".join(parts).encode("utf-8")


class SseSplitter:
    """Cuts arriving bytes into whole events (each with its closing blank line), so a stream is relayed
    event by event and never half an event."""

    _BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._pending += chunk
        events = []
        start = 0
        for boundary in self._BOUNDARY.finditer(self._pending):
            events.append(self._pending[start : boundary.end()])
            start = boundary.end()
        self._pending = self._pending[start:]
        return events

    def rest(self) -> bytes:
        """What arrived after the last whole event (a stream cut short)."""
        rest, self._pending = self._pending, b""
        return rest


def text_bytes(value: object) -> int:
    """UTF-8 bytes of every string in a parsed JSON value (a delta's text, arguments, names)."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return sum(text_bytes(item) for item in value.values())
    if isinstance(value, list):
        return sum(text_bytes(item) for item in value)
    return 0


def json_object(data: str | bytes) -> dict[str, Any] | None:
    """A JSON object, or None for anything else (not JSON, or not an object): answers are read, never trusted."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
