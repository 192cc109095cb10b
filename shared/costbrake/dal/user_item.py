"""A user's spend windows, request rate and open reservations: one ledger item, ``ctr#user#<id>`` / ``w``.

One item instead of one per window keeps a call's writes small (issue 9: DynamoDB write units per call). Each
window is attributes named by its key: ``h#2026-11-30T11:c`` / ``:s`` / ``:n`` (committed, spent, calls; the same
for days and months) and ``rpm#2026-11-30T12:21`` (requests in that minute). A charge adds to its window's
attributes whether they exist yet or not (condition: below the limit), so a window's turn needs no read and no
guess. A write removes the windows two before its own, and the one before once a minute of the new window has
passed (a request whose clock is a little behind may still count there until then); the sweeper removes anything
older. A settle or release adds to the windows its reservation charged: to a window removed since, that only
leaves attributes no limit reads, which the sweeper removes.

Each open reservation is an attribute ``r:<request_id>`` (``Entry``): its release time, amount, the user windows
and the shared counters (feature, key, global) it charged, so the sweeper can give back exactly that. The item's
``release_after`` (the earliest a reservation on it can expire) and ``sweep_bucket`` key the sparse
``reservations-by-expiry`` index; ``rv`` counts reservations, so the sweeper never drops a newer one's schedule.
A write expects the item to exist; for a user new to this layout it is cancelled once (with the item's old image
absent) and redone from what the layout before held (``legacy``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costbrake.records import CounterRef, CounterState
from costbrake.windows import Window, span

USER_SK = "w"
NOTHING = CounterState(Decimal(0), Decimal(0), 0)
ENTRY = "r:"  # r:<request_id>: an open reservation
RATE_KIND = "rpm"
_KINDS = {"rpm": Window.MINUTE, "h": Window.HOUR, "d": Window.DAY, "m": Window.MONTH}
_STAMPS = {"rpm": "%Y-%m-%dT%H:%M", "h": "%Y-%m-%dT%H", "d": "%Y-%m-%d", "m": "%Y-%m"}
_SPEND_PARTS = (":c", ":s", ":n")
# A request whose clock is this far behind may still count in the window before: it is kept that long.
BEHIND = timedelta(minutes=1)


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

    numbers: Mapping[str, Decimal]  # "h#…:c", "rpm#…", "rv", "release_after", ...
    entries: Mapping[str, Entry]  # request id -> open reservation
    release_after: int | None

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> UserSpend:
        raw = raw or {}
        numbers, entries = {}, {}
        for name, value in raw.items():
            if name.startswith(ENTRY):
                entries[name.removeprefix(ENTRY)] = Entry.loads(value["S"])
            elif "N" in value:
                numbers[name] = Decimal(value["N"])
        release_after = numbers.get("release_after")
        return cls(numbers, entries, int(release_after) if release_after is not None else None)

    def number(self, name: str) -> Decimal:
        return self.numbers.get(name, Decimal(0))

    def state(self, window_key: str) -> CounterState:
        if kind_of(window_key) == RATE_KIND:
            return CounterState(Decimal(0), Decimal(0), int(self.number(window_key)))
        committed, spent, calls = (self.number(window_key + part) for part in _SPEND_PARTS)
        return CounterState(committed, spent, int(calls))

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
    now: datetime,
    carried: Mapping[str, CounterState] | None = None,
) -> None:
    """Add each charge to its window (refused, ``Refused``, when the item as known has no room for it). With
    ``carried`` (a new item, see ``legacy``), start each window from what it held in the layout before."""
    refused = []
    for charge in charges:
        committed = expression.name(charge.window + ":c")
        if carried is not None:
            before = carried.get(charge.window, NOTHING)
            if before.committed + charge.amount > charge.limit:
                refused.append(charge.window)
                continue
            expression.set(charge.window + ":c", before.committed + charge.amount)
            if before.spent or before.calls:
                expression.set(charge.window + ":s", before.spent)
                expression.set(charge.window + ":n", before.calls)
        else:
            if item is not None and item.number(charge.window + ":c") + charge.amount > charge.limit:
                refused.append(charge.window)
                continue
            expression.add(charge.window + ":c", charge.amount)
            room = expression.value(charge.limit - charge.amount)
            expression.require(f"(attribute_not_exists({committed}) OR {committed} <= {room})")
        _drop_past(expression, charge.window, now, _SPEND_PARTS)
    if refused:
        raise Refused(refused)


def count_request(
    expression: Expression, item: UserSpend | None, window: str, limit: int, now: datetime, carried: int | None = None
) -> None:
    """One request in the minute ``window`` if fewer than ``limit`` were made in it (``Refused`` otherwise); with
    ``carried`` (a new item), starting from the requests the layout before counted."""
    made = item.number(window) if item is not None else (carried or 0)
    if made >= limit:
        raise Refused([window])
    counter = expression.name(window)
    if carried is not None:
        expression.set(window, carried + 1)
    else:
        expression.add(window, 1)
        expression.require(f"(attribute_not_exists({counter}) OR {counter} < {expression.value(limit)})")
    _drop_past(expression, window, now, ("",))


def carry_windows(
    expression: Expression, carried: Mapping[str, CounterState], skip: Iterable[str], at: datetime
) -> None:
    """Start a new item's other windows from what the layout before held (``legacy``), and note when
    (``carried_at``: an old reservation made before then is in the carried amounts)."""
    expression.set("carried_at", int(at.timestamp()))
    skipped = set(skip)
    for window, before in carried.items():
        if window in skipped:
            continue
        if kind_of(window) == RATE_KIND:
            expression.set(window, before.calls)
            continue
        expression.set(window + ":c", before.committed)
        expression.set(window + ":s", before.spent)
        expression.set(window + ":n", before.calls)


def current_windows(now: datetime) -> list[str]:
    """The hour, day and month keys of ``now``."""
    return [span(window, now).key for window in (Window.HOUR, Window.DAY, Window.MONTH)]


def expect_item(expression: Expression, new: bool) -> None:
    """The item exists (the usual case), or, for a new one, does not yet."""
    pk = expression.name("pk")
    expression.require(f"attribute_not_exists({pk})" if new else f"attribute_exists({pk})")


def _drop_past(expression: Expression, window: str, now: datetime, parts: Sequence[str]) -> None:
    two_before = _before(_before(window))
    dropped = [two_before] + ([_before(window)] if now - window_start(window) >= BEHIND else [])
    for key in dropped:
        for part in parts:
            expression.remove(key + part)


def window_start(window_key: str) -> datetime:
    kind, stamp = window_key.split("#", 1)
    return datetime.strptime(stamp, _STAMPS[kind]).replace(tzinfo=UTC)


def _before(window_key: str) -> str:
    kind = kind_of(window_key)
    return span(_KINDS[kind], window_start(window_key) - timedelta(microseconds=1)).key


def past_attributes(item: UserSpend, now: datetime) -> list[str]:
    """The window attributes of windows before the one before ``now``'s (the sweeper removes them)."""
    oldest_kept = {kind: _before(span(window, now).key) for kind, window in _KINDS.items()}
    past = []
    for name in item.numbers:
        key = name if name.startswith(RATE_KIND + "#") else name[:-2] if name[-2:] in _SPEND_PARTS else None
        kind = kind_of(key) if key else None
        if key is not None and kind in oldest_kept and "#" in key and key < oldest_kept[kind]:
            past.append(name)
    return past


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
    """Move each of ``windows`` from ``reserved`` to ``actual`` and close the reservation (True); with its entry
    gone (released by the sweeper) charge ``actual`` in full instead (False). ``item`` None: expect the entry."""
    entry_open = item is None or request_id in item.entries
    name = expression.name(ENTRY + request_id)
    if entry_open:
        expression.remove(ENTRY + request_id)
        expression.require(f"attribute_exists({name})")
    else:
        expression.require(f"attribute_not_exists({name})")
    committed = actual - reserved if entry_open else actual
    _apply(expression, windows, {":c": committed, ":s": actual, ":n": 1})
    return entry_open


def release_entry(expression: Expression, item: UserSpend, request_id: str) -> None:
    """Give an open reservation's amount back to its windows, and close it."""
    entry = item.entries[request_id]
    expression.remove(ENTRY + request_id)
    expression.require(f"attribute_exists({expression.name(ENTRY + request_id)})")
    _apply(expression, entry.windows, {":c": -entry.amount})


def _apply(expression: Expression, windows: Sequence[str], amounts: Mapping[str, Decimal | int]) -> None:
    for window in windows:
        for part, amount in amounts.items():
            if amount:
                expression.add(window + part, amount)
