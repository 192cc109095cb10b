"""The tests' one polling helper: the first value that holds, or a failure that shows the last value seen."""

from __future__ import annotations

import time

import pytest
from support.eventually import eventually


def test_given_a_probe_that_holds_on_its_third_call_then_that_value_is_returned():
    values = iter([0, [], "ready", "never read"])

    assert eventually(lambda: next(values), interval=0.001) == "ready"


def test_given_a_condition_on_the_value_then_the_first_value_meeting_it_is_returned():
    counter = iter(range(100))

    assert eventually(lambda: next(counter), until=lambda n: n >= 3, interval=0.001) == 3


def test_given_a_condition_that_never_holds_then_the_failure_names_it_and_shows_the_last_value():
    calls = iter(range(1_000))

    with pytest.raises(pytest.fail.Exception) as failed:
        eventually(lambda: {"missing": next(calls)}, until=lambda v: False, timeout=0.05, interval=0.01, what="rollups")

    message = str(failed.value)
    assert message.startswith("rollups did not hold within 0.05 s; last value: {'missing': ")
    assert "{'missing': 0}" not in message  # polled more than once: the last value, not the first


def test_given_a_slow_probe_then_it_still_runs_once_more_at_the_deadline():
    started = time.monotonic()
    seen: list[float] = []

    def probe() -> bool:
        seen.append(time.monotonic() - started)
        return len(seen) == 2

    assert eventually(probe, timeout=0.05, interval=1.0) is True
    assert 0.04 <= seen[1] < 0.5  # waited until the deadline, not the whole interval
