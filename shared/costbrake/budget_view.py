"""What a caller's and the deployment's budgets stand at now, read from the ledger's counters (the rules that decide
them are ``costbrake.policy``'s, which reads nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.budgets import budget_lines, feature_month_line, global_month_line
from costbrake.config import Settings
from costbrake.dal.reads import LedgerReader
from costbrake.formatting import plain_decimal
from costbrake.policy import DEFAULT_TIER, feature_config, global_budget, user_limits
from costbrake.records import ApiKey, SettingsSnapshot
from costbrake.windows import Window, span


def budget_status(
    ledger: LedgerReader, settings: Settings, now: datetime, user_id: str, feature_name: str, key: ApiKey | None
) -> dict[str, Any]:
    """Exact spent / reserved / remaining per window for a user (read from the counters, not a cache)."""
    snapshot = ledger.load_settings()
    feature = feature_config(settings, snapshot, feature_name)
    profile = ledger.get_user(user_id)
    limits = user_limits(settings, snapshot, profile)
    lines = budget_lines(
        user_id=user_id,
        user_limits=limits,
        feature=feature,
        key=key,
        global_budget=global_budget(settings, snapshot),
        now=now,
    )
    counters = ledger.get_counters([ref for line in lines for ref in line.counters()])
    windows = []
    for line in lines:
        state = line.state(counters)
        committed, spent = state.committed, state.spent
        windows.append(
            {
                "scope": line.scope.label,
                "window": line.span.window.value,
                "limit_usd": plain_decimal(line.limit),
                "spent_usd": plain_decimal(spent),
                "reserved_usd": plain_decimal(committed - spent),
                "remaining_usd": plain_decimal(max(Decimal(0), line.limit - committed)),
                "resets_at": line.span.end.isoformat(),
            }
        )
    return {
        "object": "costbrake.budget",
        "user": user_id,
        "tier": profile.tier if profile else DEFAULT_TIER,
        "blocked_until": profile.blocked_until.isoformat() if profile and profile.blocked_until else None,
        "feature": feature.name,
        "feature_state": feature.state.value,
        "requests_per_minute": limits.rpm,
        "windows": windows,
    }


@dataclass(frozen=True)
class ScopeBudget:
    scope: str  # "global" or "feature#<name>"
    month_usd: Decimal
    spent_usd: Decimal  # settled this month
    committed_usd: Decimal  # settled + open reservations

    @property
    def utilization(self) -> Decimal:
        return self.spent_usd / self.month_usd if self.month_usd else Decimal(0)


def monthly_budgets(
    ledger: LedgerReader, settings: Settings, now: datetime, snapshot: SettingsSnapshot | None = None
) -> list[ScopeBudget]:
    """This month's spend against the global budget and every feature budget (all shards summed)."""
    snapshot = snapshot or ledger.load_settings()
    month = span(Window.MONTH, now)
    lines = [global_month_line(global_budget(settings, snapshot), month)]
    lines += [
        feature_month_line(feature, feature.month_usd, month)
        for feature in snapshot.features.values()
        if feature.month_usd is not None
    ]
    counters = ledger.get_counters([ref for line in lines for ref in line.counters()])
    result = []
    for line in lines:
        state = line.state(counters)
        result.append(ScopeBudget(line.scope.counter_key, line.limit, state.spent, state.committed))
    return result
