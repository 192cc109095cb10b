"""UTC budget windows: their counter keys, when they roll over, how long their counters are kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Window(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


# Counters outlive their window so reports and `budget show` can still read them.
_RETENTION = {
    Window.MINUTE: timedelta(minutes=10),
    Window.HOUR: timedelta(days=35),
    Window.DAY: timedelta(days=100),
    Window.MONTH: timedelta(days=800),
}
_PREFIX = {Window.MINUTE: "rpm", Window.HOUR: "h", Window.DAY: "d", Window.MONTH: "m"}


@dataclass(frozen=True)
class WindowSpan:
    window: Window
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        stamp = {
            Window.MINUTE: "%Y-%m-%dT%H:%M",
            Window.HOUR: "%Y-%m-%dT%H",
            Window.DAY: "%Y-%m-%d",
            Window.MONTH: "%Y-%m",
        }[self.window]
        return f"{_PREFIX[self.window]}#{self.start.strftime(stamp)}"

    def seconds_left(self, now: datetime) -> int:
        return max(1, int((self.end - now).total_seconds() + 0.999))

    @property
    def expires_at(self) -> int:
        return int((self.end + _RETENTION[self.window]).timestamp())


def span(window: Window, now: datetime) -> WindowSpan:
    now = now.astimezone(UTC)
    if window is Window.MINUTE:
        start = now.replace(second=0, microsecond=0)
        end = start + timedelta(minutes=1)
    elif window is Window.HOUR:
        start = now.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif window is Window.DAY:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    else:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
    return WindowSpan(window, start, end)
