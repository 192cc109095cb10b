"""``eventually``: poll a probe until its value satisfies a condition, or fail showing the last value."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def eventually(
    probe: Callable[[], T],
    *,
    until: Callable[[T], Any] = bool,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str | None = None,
) -> T:
    """``probe()``'s first value for which ``until(value)`` holds (by default: a truthy value), polled every
    ``interval`` seconds; after ``timeout`` seconds the test fails with ``what`` and the last value seen.

    The probe runs at least once, and once more at the deadline: a slow probe never loses its last chance.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            pytest.fail(
                f"{what or getattr(probe, '__name__', 'the condition')} did not hold within {timeout:g} s; "
                f"last value: {value!r}"
            )
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
