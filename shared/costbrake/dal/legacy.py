"""The ledger layout before a user's windows shared one item (costbrake before issue 9's write-unit work), read
so an upgrade neither forgets spend nor strands a reservation.

Before, each user window was an item of its own (``ctr#user#<id>`` / ``h#…``, ``d#…``, ``m#…``, ``rpm#…``) and
each open reservation an item ``res#<request_id>`` listing the counters it charged. After an upgrade:
- a user's item starts each current window from what its old counter holds (``carried_windows``), so a month's
  spend is not forgotten (read once, when the user's item is created);
- the sweeper still finds old reservations through the same index and gives them back, or carries out a settle
  an old gateway parked on one (``LegacyReservations``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from costbrake.dal.retry import Transactor
from costbrake.dal.tables import Tables, key
from costbrake.records import CounterState

LEGACY_RESERVATION = "res#"


def carried_windows(tables: Tables, pk: str, windows: Sequence[str]) -> dict[str, CounterState]:
    """What the old per-window counters of a user hold, by window key (windows without one are absent)."""
    found = tables.batch_get(tables.ledger, [key(pk, window) for window in windows], consistent=True)
    carried = {}
    for raw in found:
        numbers = {name: Decimal(value["N"]) for name, value in raw.items() if "N" in value}
        calls = numbers.get("calls") or numbers.get("requests") or Decimal(0)
        carried[raw["sk"]["S"]] = CounterState(
            numbers.get("committed", Decimal(0)), numbers.get("spent", Decimal(0)), int(calls)
        )
    return carried


def is_legacy(raw: dict[str, Any]) -> bool:
    return raw["pk"]["S"].startswith(LEGACY_RESERVATION)


def legacy_charges(raw: dict[str, Any]) -> list[tuple[str, str, Decimal]]:
    return [(pk, sk, Decimal(amount)) for pk, sk, amount in json.loads(raw["charges"]["S"])]


def legacy_parked(raw: dict[str, Any]) -> tuple[Decimal, dict[str, Any]] | None:
    if "settle_record" not in raw:
        return None
    return Decimal(raw["settle_usd"]["N"]), json.loads(raw["settle_record"]["S"])


def close_legacy(
    tables: Tables,
    transactor: Transactor,
    request_id: str,
    charges: Sequence[tuple[str, str, Decimal]],
    parked: tuple[Decimal, dict[str, Any]] | None,
) -> bool:
    """Delete an old reservation and give its amounts back (``parked`` None), or settle it as the old gateway
    parked it: the record put, each counter moved to the actual cost. False when it is gone already."""
    items: list[dict[str, Any]] = [
        {
            "Delete": {
                "TableName": tables.ledger,
                "Key": key(f"{LEGACY_RESERVATION}{request_id}", "res"),
                "ConditionExpression": "attribute_exists(#k)",
                "ExpressionAttributeNames": {"#k": "pk"},
            }
        }
    ]
    if parked is not None:
        items.append({"Put": {"TableName": tables.calls, "Item": parked[1]}})
    for pk, sk, amount in charges:
        if parked is None:
            expression, values = "ADD #c :d", {":d": {"N": format(-amount, "f")}}
        else:
            actual = parked[0]
            expression = "ADD #c :d, #s :a, #n :one"
            values = {":d": {"N": format(actual - amount, "f")}, ":a": {"N": format(actual, "f")}, ":one": {"N": "1"}}
        names = {"#c": "committed"} | ({"#s": "spent", "#n": "calls"} if parked is not None else {})
        update = {"TableName": tables.ledger, "Key": key(pk, sk), "UpdateExpression": expression}
        items.append({"Update": update | {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}})
    return not transactor.run(items, token=f"{request_id}{'p' if parked else 'x'}L")
