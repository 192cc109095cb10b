"""The biggest spenders of the last N UTC days: users, features or models, from the daily rollups.

"The last N days" are the current UTC day (so far) and the N-1 days before it. Each day's rollups are read in
full (every scope of the dimension), so a name's cost is exact even where it was not among a day's top few.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from costbrake.dal.rollups import RollupStore
from costbrake.pipeline.rollups import GLOBAL_SCOPE, Totals
from costbrake.windows import Window, WindowSpan, span

DIMENSIONS = {"users": "user#", "features": "feature#", "models": "model#"}
EVERY_SCOPE = 2**31  # a ``top_in_window`` limit no window reaches: every scope of the window

Progress = Callable[[int, int], None]  # (windows read, windows to read)


@dataclass(frozen=True)
class Spender:
    name: str
    totals: Totals  # over the period
    share: Decimal | None  # of the period's total cost (None when nothing was spent)


@dataclass(frozen=True)
class Top:
    dimension: str  # "users", "features" or "models"
    as_of: datetime
    days: tuple[WindowSpan, ...]  # oldest first; the last is the current, partial day
    total: Totals  # every call of the period (the global rollups)
    spenders: tuple[Spender, ...]  # the most expensive first


def days_back(now: datetime, days: int) -> list[WindowSpan]:
    """The current UTC day and the ``days - 1`` before it, oldest first."""
    if days < 1:
        raise ValueError("days must be at least 1")
    today = span(Window.DAY, now)
    return [span(Window.DAY, today.start - timedelta(days=back)) for back in range(days - 1, -1, -1)]


def costs_in(
    rollups: RollupStore, scope_prefix: str, windows: Iterable[WindowSpan], progress: Progress | None = None
) -> dict[str, Decimal]:
    """Each scope's cost summed over ``windows`` (name without the prefix -> USD)."""
    windows = list(windows)
    costs: dict[str, Decimal] = defaultdict(Decimal)
    for done, window in enumerate(windows, start=1):
        for name, cost in rollups.top_in_window(window.key, scope_prefix, limit=EVERY_SCOPE):
            costs[name] += cost
        if progress:
            progress(done, len(windows))
    return dict(costs)


def ranked(costs: dict[str, Decimal], limit: int) -> list[tuple[str, Decimal]]:
    """The ``limit`` most expensive, ties by name (a stable order for scripts)."""
    return sorted(costs.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]


def total_of(rollups: RollupStore, scope: str, windows: Iterable[WindowSpan]) -> Totals:
    return sum(rollups.rollups_for(scope, [w.key for w in windows]).values(), Totals())


def share_of(cost: Decimal, total: Decimal) -> Decimal | None:
    return cost / total if total else None


def read_top(
    rollups: RollupStore, dimension: str, now: datetime, days: int, limit: int, progress: Progress | None = None
) -> Top:
    prefix = DIMENSIONS[dimension]
    windows = days_back(now, days)
    costs = costs_in(rollups, prefix, windows, progress)
    total = total_of(rollups, GLOBAL_SCOPE, windows)
    spenders = []
    for name, _ in ranked(costs, limit):
        totals = total_of(rollups, prefix + name, windows)
        spenders.append(Spender(name, totals, share_of(totals.cost_usd, total.cost_usd)))
    # Ranked by the index, shown with the table's totals: order by what is shown (they differ only mid-update).
    spenders.sort(key=lambda s: (-s.totals.cost_usd, s.name))
    return Top(dimension, now, tuple(windows), total, tuple(spenders))
