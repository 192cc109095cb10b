"""The arithmetic of the cost report (pure): nearest-rank percentiles, rounding, and calls grouped and costed.

- percentiles are nearest-rank (see ``percentile``).
- derived money (means, run rates, projections) is rounded to ``MONEY_PLACES``; sums and percentiles are exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

from costbrake.records import CallRecord

MONEY_PLACES = Decimal("0.00000001")
RATIO_PLACES = Decimal("0.000001")
TOKEN_PLACES = Decimal("0.01")

T = TypeVar("T", int, Decimal)


def percentile(values: Iterable[T], pct: int) -> T | None:
    """The nearest-rank ``pct``-th percentile: the value at 1-based rank ceil(pct / 100 * n) of the n sorted values.

    It is always one of the values (no interpolation), the smallest one that at least ``pct`` % of the values do not
    exceed: the p95 of 20 values is the 19th smallest, of 10 values the largest, of one value that value; the p50 of
    4 values is the 2nd smallest. None when there are no values.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 < pct <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {pct}")
    rank = -(-pct * len(ordered) // 100)  # exact integer ceiling
    return ordered[rank - 1]


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_PLACES)


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATIO_PLACES) if whole else None


def mean_money(total: Decimal, count: int) -> Decimal | None:
    return money(total / count) if count else None


def mean_tokens(values: Sequence[int]) -> Decimal | None:
    return (Decimal(sum(values)) / len(values)).quantize(TOKEN_PLACES) if values else None


def cost_of(calls: Iterable[CallRecord]) -> Decimal:
    return sum((c.cost_usd for c in calls), Decimal(0))


def group(calls: Iterable[CallRecord], key: Callable[[CallRecord], str]) -> dict[str, list[CallRecord]]:
    groups: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        groups[key(call)].append(call)
    return groups


def by_cost(groups: Mapping[str, Sequence[CallRecord]]) -> list[tuple[str, Sequence[CallRecord], Decimal]]:
    """Groups with their cost, most expensive first (then by name, so equal costs keep a stable order)."""
    costed = [(name, members, cost_of(members)) for name, members in groups.items()]
    return sorted(costed, key=lambda item: (-item[2], item[0]))
