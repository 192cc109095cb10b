"""Operators' actions on budgets that are not a key's, user's or feature's own: tiers, the global budget, the
deployment's defaults."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal.admin import AdminStore
from costbrake.operations.features import default_feature
from costbrake.policy import DEFAULT_TIER
from costbrake.records import GlobalBudget, Limits, Tier

# DESIGN's per-user defaults per tier and the feature shares of the global monthly budget.
DEFAULT_TIERS = {
    "free": Limits(Decimal("1"), Decimal("5"), Decimal("50"), 20),
    "pro": Limits(Decimal("5"), Decimal("25"), Decimal("250"), 60),
    "enterprise": Limits(Decimal("20"), Decimal("100"), Decimal("1000"), 200),
}


DEFAULT_FEATURE_SHARES = {
    "chat": Decimal("0.40"),
    "code-generation": Decimal("0.30"),
    "data-analysis": Decimal("0.20"),
    "admin": Decimal("0.10"),
}


def set_tier_limits(admin: AdminStore, clock: Clock, tier: str, limits: Limits, actor: str) -> Tier:
    current = admin.load_settings().tiers.get(tier)
    merged = Tier(tier, (current.limits if current else Limits()).overridden_by(limits))
    admin.put_tier(merged, actor, clock.now())
    return merged


def set_global_budget(
    admin: AdminStore, clock: Clock, settings: Settings, month_usd: Decimal, actor: str
) -> GlobalBudget:
    budget = GlobalBudget(month_usd, settings.global_shards)
    admin.put_global(budget, actor, clock.now())
    return budget


def seed_defaults(admin: AdminStore, clock: Clock, settings: Settings, actor: str = "costbrake-local") -> None:
    """DESIGN's defaults: tiers, feature shares of the global budget, the global budget itself."""
    now = clock.now()
    for name, limits in DEFAULT_TIERS.items():
        admin.put_tier(Tier(name, limits), actor, now)
    admin.put_tier(Tier(DEFAULT_TIER, DEFAULT_TIERS["free"]), actor, now)
    for name, share in DEFAULT_FEATURE_SHARES.items():
        feature = replace(default_feature(settings, name), month_usd=settings.global_month_usd * share)
        admin.put_feature(feature, actor, now)
    admin.put_global(GlobalBudget(settings.global_month_usd, settings.global_shards), actor, now)
