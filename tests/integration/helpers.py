"""Assertions shared by the integration tests."""

from __future__ import annotations

import re
from decimal import Decimal

from costbrake.budget_view import budget_status
from costbrake.local.stack import LocalStack
from costbrake.pricing import PriceTable


def hand_priced(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """Cost from the price table's per-token rates, for calls without cache or long context."""
    rates = PriceTable.default().get(model).rates
    return rates.input * input_tokens + rates.output * output_tokens


def user_windows(stack: LocalStack, user_id: str) -> list[dict[str, str]]:
    assert stack.stores is not None and stack.settings is not None
    status = budget_status(stack.stores.admin, stack.settings, stack.clock.now(), user_id, "default", None)
    return [w for w in status["windows"] if w["scope"] == f"user {user_id}"]


def assert_nothing_spent_or_held(stack: LocalStack, user_id: str) -> None:
    for window in user_windows(stack, user_id):
        assert Decimal(window["spent_usd"]) == 0, window
        assert Decimal(window["reserved_usd"]) == 0, window
    assert not open_reservations_of(stack, user_id)


def open_reservations_of(stack: LocalStack, user_id: str) -> list[str]:
    assert stack.stores is not None
    return [
        res.request_id for res in stack.stores.reservations.open_reservations() if res.user_pk == f"ctr#user#{user_id}"
    ]


def calls_of(stack: LocalStack, user_id: str) -> list:
    assert stack.stores is not None
    return [record for record in stack.stores.calls.scan_calls() if record.user_id == user_id]


COST_COMMENT = re.compile(r"^: costbrake cost_usd=(?P<cost>[0-9.]+) request_id=(?P<request_id>[0-9a-f]+)")


def cost_comment(lines: list[str]) -> tuple[Decimal, str]:
    """(cost, request id) from a stream's final SSE comment; the stream must end with it."""
    comments = [match for line in lines if (match := COST_COMMENT.match(line))]
    assert len(comments) == 1, lines[-5:]
    assert lines[-1] == "" or COST_COMMENT.match(lines[-1]) or COST_COMMENT.match(lines[-2]), lines[-3:]
    return Decimal(comments[0]["cost"]), comments[0]["request_id"]
