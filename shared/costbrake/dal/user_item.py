"""A user's spend windows, request rate and open reservations: one ledger item, ``ctr#user#<id>`` / ``w``.

One item instead of one per window keeps a call's writes small (issue 9: DynamoDB write units per call). Each
spend window kind (``h``, ``d``, ``m``) holds the key of the window it counts (``h`` = ``h#2026-11-30T11``)
beside its committed, spent and calls (``hc``, ``hs``, ``hn``). A write that expects the window it names either
adds to it (condition: the item holds that window) or starts it afresh (condition: the item holds an older one,
or none); a write whose expectation was wrong is cancelled with the item's old image
(``ReturnValuesOnConditionCheckFailure``) and rebuilt from it: once per window turn, and a window key never moves
back. Requests per minute turn every minute, so they need no guess: each minute is an attribute of its own named
by its key (``rpm#2026-11-30T12:21`` = requests), added to whether or not it exists yet; a write removes the
minutes two to four before, and the sweeper any older one.

Each open reservation is an attribute ``r:<request_id>`` (``Entry``): its release time, amount, the user windows
and the shared counters (feature, key, global) it charged, so the sweeper can give back exactly that. The item's
``release_after`` (the earliest a reservation on it can expire) and ``sweep_bucket`` key the sparse
``reservations-by-expiry`` index; ``rv`` counts reservations, so the sweeper never drops a newer one's schedule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.records import CounterRef, CounterState

USER_SK = "w"
NOTHING = CounterState(Decimal(0), Decimal(0), 0)
ENTRY = "r:"  # r:<request_id>: an open reservation
RATE_KIND = "rpm"
_MINUTE_FORMAT = "rpm#%Y-%m-%dT%H:%M"
STALE_MINUTES = (2, 3, 4)  # minutes before the current one that a rate write removes (the one before may
# still be counted by a request whose clock is a little behind)


def kind_of(window_key: str) -> str:
    return window_key.split("#", 1)[0]


def is_user_ref(ref: CounterRef) -> bool:
    return ref.scope.startswith("user#") and ref.shard is None


def user_pk(user_id: str) -> str:
    return f"ctr#user#{user_id}"


@dataclass(frozen=True)
class Entry:
    """What one open reservation charged: the user's windows (keys) and shared counters (pk, sk)."""

    release_after: int
    amount: Decimal
    windows: tuple[str, ...]
    shared: tuple[tuple[str, str], ...]

    def dumps(self) -> str:
        return json.dumps([self.release_after, format(self.amount, "f"), self.windows, self.shared])

    @classmethod
    def loads(cls, text: str) -> Entry:
        release_after, amount, windows, shared = json.loads(text)
        return cls(int(release_after), Decimal(amount), tuple(windows), tuple((pk, sk) for pk, sk in shared))


@dataclass(frozen=True)
class UserSpend:
    """The item as read (or as the failed condition's old image showed it)."""

    windows: Mapping[str, str]  # kind -> window key held
    numbers: Mapping[str, Decimal]  # "hc", "hs", "hn", "rv", "rpm#<minute>" (requests), ...
    entries: Mapping[str, Entry]  # request id -> open reservation
    release_after: int | None

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> UserSpend:
        raw = raw or {}
        windows, numbers, entries = {}, {}, {}
        for name, value in raw.items():
            if name.startswith(ENTRY):
                entries[name.removeprefix(ENTRY)] = Entry.loads(value["S"])
            elif "N" in value:
                numbers[name] = Decimal(value["N"])
            elif "S" in value and name in ("h", "d", "m"):
                windows[name] = value["S"]
        release_after = numbers.get("release_after")
        return cls(windows, numbers, entries, int(release_after) if release_after is not None else None)

    def holds(self, window_key: str) -> bool:
        if kind_of(window_key) == RATE_KIND:
            return window_key in self.numbers
        return self.windows.get(kind_of(window_key)) == window_key

    def counting(self, window_key: str) -> str:
        """The window a charge meant for ``window_key`` goes to: a later one the item already counts (a request
        that began before the window turned, or a clock a little behind), else ``window_key`` itself."""
        held = self.windows.get(kind_of(window_key))
        return held if held is not None and held > window_key else window_key

    def number(self, name: str) -> Decimal:
        return self.numbers.get(name, Decimal(0))

    def state(self, window_key: str) -> CounterState:
        if not self.holds(window_key):
            return CounterState(Decimal(0), Decimal(0), 0)
        kind = kind_of(window_key)
        if kind == RATE_KIND:
            return CounterState(Decimal(0), Decimal(0), int(self.number(window_key)))
        return CounterState(self.number(kind + "c"), self.number(kind + "s"), int(self.number(kind + "n")))

    @property
    def version(self) -> int:
        return int(self.number("rv"))


@dataclass(frozen=True)
class WindowCharge:
    window: str  # the window key, e.g. "h#2026-11-30T11"
    amount: Decimal
    limit: Decimal


def _n(value: Decimal | int) -> dict[str, str]:
    return {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}


class Expression:
    """An update under construction: SET/ADD/REMOVE clauses, conditions, and their placeholders."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.conditions: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = self.names.get(attribute)
        if placeholder is None:
            placeholder = self.names[attribute] = f"#a{len(self.names)}"
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value if isinstance(value, dict) else _n(value)
        return placeholder

    def add(self, attribute: str, amount: Decimal | int) -> None:
        self.adds.append(f"{self.name(attribute)} {self.value(amount)}")

    def set(self, attribute: str, value: Any) -> None:
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")

    def set_if_absent(self, attribute: str, value: Any) -> None:
        placeholder = self.name(attribute)
        self.sets.append(f"{placeholder} = if_not_exists({placeholder}, {self.value(value)})")

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def require(self, condition: str) -> None:
        self.conditions.append(condition)

    def holds_window(self, window_key: str) -> None:
        self.require(f"{self.name(kind_of(window_key))} = {self.value({'S': window_key})}")

    def lacks_window(self, window_key: str) -> None:
        """The item does not count this window (an older one, a later one, or none)."""
        kind = self.name(kind_of(window_key))
        self.require(f"(attribute_not_exists({kind}) OR {kind} <> {self.value({'S': window_key})})")

    def transact_item(self, table: str, pk: str) -> dict[str, Any]:
        """A TransactItems entry: an Update, or a ConditionCheck when nothing is written."""
        body = self.request(table, pk)
        if body.get("UpdateExpression"):
            return {"Update": body}
        del body["UpdateExpression"]
        return {"ConditionCheck": body}

    def request(self, table: str, pk: str, old_image: bool = True) -> dict[str, Any]:
        clauses = []
        for keyword, parts in (("SET", self.sets), ("ADD", self.adds), ("REMOVE", self.removes)):
            if parts:
                clauses.append(f"{keyword} {', '.join(parts)}")
        body: dict[str, Any] = {
            "TableName": table,
            "Key": {"pk": {"S": pk}, "sk": {"S": USER_SK}},
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": {placeholder: name for name, placeholder in self.names.items()},
        }
        if self.values:
            body["ExpressionAttributeValues"] = self.values
        if self.conditions:
            body["ConditionExpression"] = " AND ".join(self.conditions)
        if old_image:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return body


class Refused(Exception):
    """These windows (keys) have no room for the charge, on the item as it is."""

    def __init__(self, windows: Sequence[str]) -> None:
        super().__init__(", ".join(windows))
        self.windows = list(windows)


def charge_windows(
    expression: Expression,
    item: UserSpend | None,
    charges: Iterable[WindowCharge],
    expires_at: int | None = None,
    carried: Mapping[str, CounterState] | None = None,
) -> list[str]:
    """Add each charge to its window, or start the window with it (from what ``carried`` says the window held
    before, see ``legacy``); the windows charged. Refuse (``Refused``) a charge the item as known has no room
    for. ``item`` None: expect the item to hold every window already."""
    refused, charged = [], []
    for charge in charges:
        window = item.counting(charge.window) if item is not None else charge.window
        kind = kind_of(window)
        committed = kind + "c"
        if item is None or item.holds(window):
            if item is not None and item.number(committed) + charge.amount > charge.limit:
                refused.append(charge.window)
                continue
            expression.add(committed, charge.amount)
            expression.holds_window(window)
            expression.require(f"{expression.name(committed)} <= {expression.value(charge.limit - charge.amount)}")
        else:
            before = (carried or {}).get(window, NOTHING)
            if before.committed + charge.amount > charge.limit:
                refused.append(charge.window)
                continue
            expression.set(kind, {"S": window})
            expression.set(committed, before.committed + charge.amount)
            expression.set(kind + "s", before.spent)
            expression.set(kind + "n", before.calls)
            expression.lacks_window(window)
        charged.append(window)
    if refused:
        raise Refused(refused)
    if expires_at is not None:
        expression.set("expires_at", expires_at)
    return charged


def count_request(expression: Expression, item: UserSpend | None, window: str, limit: int, carried: int = 0) -> None:
    """One request in the minute ``window`` if fewer than ``limit`` were made in it (``Refused`` otherwise);
    ``carried``: requests counted before the item existed (``legacy``)."""
    made = item.number(window) if item is not None and item.holds(window) else carried
    if made >= limit:
        raise Refused([window])
    counter = expression.name(window)
    if carried and not (item is not None and item.holds(window)):
        expression.set(window, carried + 1)
        expression.require(f"attribute_not_exists({counter})")
    else:
        expression.add(window, 1)
        expression.require(f"(attribute_not_exists({counter}) OR {counter} < {expression.value(limit)})")
    minute = datetime.strptime(window, _MINUTE_FORMAT)
    for back in STALE_MINUTES:
        expression.remove((minute - timedelta(minutes=back)).strftime(_MINUTE_FORMAT))


def stale_minutes(item: UserSpend, current: str) -> list[str]:
    """The request-count attributes of minutes before the one before ``current`` (the sweeper removes them)."""
    before = (datetime.strptime(current, _MINUTE_FORMAT) - timedelta(minutes=1)).strftime(_MINUTE_FORMAT)
    return [name for name in item.numbers if name.startswith(RATE_KIND + "#") and name < before]


def open_entry(expression: Expression, request_id: str, entry: Entry, sweep_bucket: str) -> None:
    name = expression.name(ENTRY + request_id)
    expression.set(ENTRY + request_id, {"S": entry.dumps()})
    expression.require(f"attribute_not_exists({name})")
    expression.set_if_absent("release_after", entry.release_after)
    expression.set_if_absent("sweep_bucket", {"S": sweep_bucket})
    expression.add("rv", 1)


def settle_entry(
    expression: Expression,
    item: UserSpend | None,
    request_id: str,
    windows: Sequence[str],
    reserved: Decimal,
    actual: Decimal,
) -> bool:
    """Move each of ``windows`` the item still holds from ``reserved`` to ``actual`` and close the reservation
    (True); with its entry gone (released by the sweeper) charge ``actual`` in full instead (False). A window
    that rolled over since is left alone. ``item`` None: expect the entry and every window to be there."""
    entry_open = item is None or request_id in item.entries
    if item is not None and entry_open:
        windows = item.entries[request_id].windows  # the windows it really charged (maybe later ones)
    name = expression.name(ENTRY + request_id)
    if entry_open:
        expression.remove(ENTRY + request_id)
        expression.require(f"attribute_exists({name})")
    else:
        expression.require(f"attribute_not_exists({name})")
    committed = actual - reserved if entry_open else actual
    _apply(expression, item, windows, {"c": committed, "s": actual, "n": 1})
    return entry_open


def release_entry(expression: Expression, item: UserSpend, request_id: str) -> None:
    """Give an open reservation's amount back to the windows the item still holds, and close it."""
    entry = item.entries[request_id]
    expression.remove(ENTRY + request_id)
    expression.require(f"attribute_exists({expression.name(ENTRY + request_id)})")
    _apply(expression, item, entry.windows, {"c": -entry.amount})


def _apply(expression: Expression, item: UserSpend | None, windows: Sequence[str], amounts: Mapping[str, Any]) -> None:
    for window in windows:
        if item is None or item.holds(window):
            expression.holds_window(window)
            for suffix, amount in amounts.items():
                if amount:
                    expression.add(kind_of(window) + suffix, amount)
        else:
            expression.lacks_window(window)  # rolled over: the old window is not counted any more
