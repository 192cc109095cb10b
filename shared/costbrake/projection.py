"""Where spend is heading: a run rate, the month's projected total, when a budget runs out (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

SECONDS_PER_DAY = Decimal(86_400)


def run_rate_per_day(cost: Decimal, elapsed: timedelta) -> Decimal:
    """USD per day of ``cost`` spent over ``elapsed`` (at least an hour, so minutes of history do not project
    wild rates)."""
    seconds = max(Decimal(int(elapsed.total_seconds())), Decimal(3600))
    return cost * SECONDS_PER_DAY / seconds


@dataclass(frozen=True)
class Projection:
    spent_usd: Decimal  # committed so far in the window (settled, plus open reservations where known)
    limit_usd: Decimal | None
    rate_usd_per_day: Decimal
    projected_usd: Decimal  # at the window's end, at the run rate
    exhausted_at: datetime | None  # when the limit is reached at the run rate; None if it lasts the window

    @property
    def utilization(self) -> Decimal | None:
        return self.spent_usd / self.limit_usd if self.limit_usd else None

    @property
    def projected_utilization(self) -> Decimal | None:
        return self.projected_usd / self.limit_usd if self.limit_usd else None


def project(
    spent: Decimal, limit: Decimal | None, rate_per_day: Decimal, now: datetime, window_end: datetime
) -> Projection:
    """Spend ``spent`` growing at ``rate_per_day`` until ``window_end``; an exhausted budget ran out ``now``."""
    days_left = max(Decimal(int((window_end - now).total_seconds())), Decimal(0)) / SECONDS_PER_DAY
    projected = spent + rate_per_day * days_left
    exhausted_at: datetime | None = None
    if limit is not None:
        if spent >= limit:
            exhausted_at = now
        elif rate_per_day > 0 and projected >= limit:
            days = (limit - spent) / rate_per_day
            exhausted_at = now + timedelta(seconds=float(days * SECONDS_PER_DAY))  # a date to show
    return Projection(spent, limit, rate_per_day, projected, exhausted_at)
