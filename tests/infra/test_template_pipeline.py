"""The pipeline functions' triggers in template.yaml (the local stack runs them the same way)."""

from __future__ import annotations

from typing import Any

from costbrake.local.stack import LocalStack


def _events(template: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    return template["Resources"][function]["Properties"]["Events"]


def test_given_anomaly_function_when_read_then_stream_batches_and_a_five_minute_backstop_trigger_it(template):
    events = _events(template, "AnomalyFunction")

    assert {event["Type"] for event in events.values()} == {"DynamoDB", "Schedule"}
    (schedule,) = [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"]
    assert schedule == "rate(5 minutes)"
    assert LocalStack.anomaly_backstop_seconds == 5 * 60  # the local stack's default backstop matches


def test_given_sweeper_when_read_then_it_runs_every_minute_as_the_local_stack_does(template):
    (event,) = _events(template, "SweeperFunction").values()

    assert event["Properties"]["Schedule"] == "rate(1 minute)"
    assert LocalStack.sweep_seconds == 60
