"""Which limits and feature settings apply: operator settings first, then the deployment's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.budgets import budget_lines, feature_month_line, global_month_line
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.decimals import plain_decimal
from costbrake.records import ApiKey, Feature, GlobalBudget, Limits, SettingsSnapshot, UserProfile
from costbrake.windows import Window, span

DEFAULT_FEATURE = "default"
DEFAULT_TIER = "default"
FEATURE_HEADER = "x-costbrake-feature"  # lower-case: request headers are looked up lower-cased


def feature_of(headers: Mapping[str, str], key: ApiKey) -> str:
    """The feature a request is charged to: its header, else its key's default feature, else "default"."""
    return headers.get(FEATURE_HEADER) or key.default_feature or DEFAULT_FEATURE


def feature_config(settings: Settings, snapshot: SettingsSnapshot, name: str) -> Feature:
    configured = snapshot.features.get(name)
    if configured is not None:
        return configured
    return Feature(
        name=name,
        default_max_output_tokens=settings.default_max_output_tokens,
        max_output_tokens=settings.default_max_output_tokens,
        max_input_tokens=settings.default_max_input_tokens,
    )


def user_limits(settings: Settings, snapshot: SettingsSnapshot, profile: UserProfile | None) -> Limits:
    s = settings
    defaults = Limits(s.default_user_hour_usd, s.default_user_day_usd, s.default_user_month_usd, s.default_user_rpm)
    tier = snapshot.tiers.get(profile.tier if profile else DEFAULT_TIER) or snapshot.tiers.get(DEFAULT_TIER)
    limits = defaults.overridden_by(tier.limits) if tier else defaults
    return limits.overridden_by(profile.overrides) if profile else limits


def global_budget(settings: Settings, snapshot: SettingsSnapshot) -> GlobalBudget:
    return snapshot.global_budget or GlobalBudget(settings.global_month_usd, settings.global_shards)


def budget_status(
    ledger: Ledger, settings: Settings, now: datetime, user_id: str, feature_name: str, key: ApiKey | None
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
        states = [counters[ref] for ref in line.counters() if ref in counters]
        committed = sum((s.committed for s in states), Decimal(0))
        spent = sum((s.spent for s in states), Decimal(0))
        windows.append(
            {
                "scope": line.label.rsplit(",", 1)[0],
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
    ledger: Ledger, settings: Settings, now: datetime, snapshot: SettingsSnapshot | None = None
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
        states = [counters[ref] for ref in line.counters() if ref in counters]
        result.append(
            ScopeBudget(
                scope=line.scope,
                month_usd=line.limit,
                spent_usd=sum((s.spent for s in states), Decimal(0)),
                committed_usd=sum((s.committed for s in states), Decimal(0)),
            )
        )
    return result
