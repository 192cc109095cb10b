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
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.dal.retry import Transactor, parameter_token
from costbrake.dal.tables import Tables, key, unavailable
from costbrake.dal.user_item import USER_SK
from costbrake.records import CounterState

LEGACY_RESERVATION = "res#"
UNREACHABLE = "The budget ledger could not be reached."


def carried_windows(tables: Tables, pk: str, windows: Sequence[str]) -> dict[str, CounterState]:
    """What the old per-window counters of a user hold, by window key (windows without one are absent)."""
    with unavailable(UNREACHABLE):
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


def legacy_created_at(raw: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(raw["created_at"]["S"]).timestamp())


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
    created_at: int,
) -> bool:
    """Delete an old reservation and give its amounts back (``parked`` None), or settle it as the old gateway
    parked it: the record put, each counter moved to the actual cost. A user window the user's item carried over
    from the old counter (``carried_windows``) is moved there too. False when it is gone already."""
    for _ in range(3):
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
        moves: dict[str, dict[str, Decimal]] = {}
        for pk, sk, amount in charges:
            moved = {":c": -amount} if parked is None else {":c": parked[0] - amount, ":s": parked[0], ":n": Decimal(1)}
            items.append(_add(tables.ledger, key(pk, sk), {"committed": moved[":c"]} | _spent(moved)))
            if pk.startswith("ctr#user#"):
                moves.setdefault(pk, {}).update({sk + part: value for part, value in moved.items()})
        items += [
            move for pk, attributes in moves.items() if (move := _user_item_move(tables, pk, attributes, created_at))
        ]
        refused = transactor.run(items, token=parameter_token(request_id, "L", items))
        if not refused:
            return True
        if 0 in refused:
            return False  # gone: released or settled before
    return False


def _spent(moved: dict[str, Decimal]) -> dict[str, Decimal]:
    return {"spent": moved[":s"], "calls": moved[":n"]} if ":s" in moved else {}


def _add(table: str, item_key: dict[str, Any], amounts: dict[str, Decimal]) -> dict[str, Any]:
    names = {f"#a{index}": name for index, name in enumerate(amounts)}
    values = {f":v{index}": {"N": format(value, "f")} for index, value in enumerate(amounts.values())}
    expression = "ADD " + ", ".join(f"#a{index} :v{index}" for index in range(len(amounts)))
    update = {"TableName": table, "Key": item_key, "UpdateExpression": expression}
    return {"Update": update | {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}


def _user_item_move(tables: Tables, pk: str, attributes: dict[str, Decimal], created_at: int) -> dict[str, Any] | None:
    """The same move on the user's item if it carried the old window over after the reservation was made; if
    the item does not exist, a check that it still does not (the move then reaches it through the old counter);
    nothing if the item was started before the reservation (it never held its amount)."""
    item_key = key(pk, USER_SK)
    with unavailable(UNREACHABLE):
        found = tables.client.get_item(TableName=tables.ledger, Key=item_key, ConsistentRead=True).get("Item")
    if found is None:
        check = {"TableName": tables.ledger, "Key": item_key, "ConditionExpression": "attribute_not_exists(#k)"}
        return {"ConditionCheck": check | {"ExpressionAttributeNames": {"#k": "pk"}}}
    carried_at = found.get("carried_at")
    if carried_at is None or int(carried_at["N"]) < created_at:
        return None
    update = _add(tables.ledger, item_key, attributes)
    update["Update"]["ConditionExpression"] = "attribute_exists(#k)"
    update["Update"]["ExpressionAttributeNames"]["#k"] = "pk"
    return update
