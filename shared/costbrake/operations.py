"""Operator actions shared by the CLI and the local stack: keys, budgets, switches, defaults."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from decimal import Decimal

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.gateway.service import hash_key
from costbrake.policy import feature_config
from costbrake.records import (
    ApiKey,
    Feature,
    GlobalBudget,
    Limits,
    SettingsSnapshot,
    SwitchState,
    Tier,
    UserProfile,
)

KEY_PREFIX = "cb-"
EMPTY_SNAPSHOT = SettingsSnapshot(tiers={}, features={}, global_budget=None)

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


@dataclass(frozen=True)
class NewKey:
    secret: str
    key: ApiKey


def create_key(
    ledger: Ledger,
    clock: Clock,
    *,
    user_id: str | None,
    tier: str | None,
    service: bool,
    feature: str | None,
    name: str = "",
    secret: str | None = None,
) -> NewKey:
    if not service and not user_id:
        raise ValueError("a user key needs --user (or create a --service key)")
    secret = secret or KEY_PREFIX + secrets.token_urlsafe(32)
    digest = hash_key(secret)
    key = ApiKey(
        key_id=digest[:12],
        user_id=None if service else user_id,
        service=service,
        default_feature=feature,
        name=name,
    )
    ledger.put_key(digest, key, clock.now())
    if user_id and (tier or ledger.get_user(user_id) is None):
        existing = ledger.get_user(user_id)
        profile = replace(existing, tier=tier) if existing and tier else existing
        ledger.put_user(profile or UserProfile(user_id=user_id, tier=tier or "free"))
    return NewKey(secret, key)


def set_user_limits(ledger: Ledger, user_id: str, limits: Limits) -> UserProfile:
    profile = ledger.get_user(user_id) or UserProfile(user_id=user_id, tier="free")
    updated = replace(profile, overrides=profile.overrides.overridden_by(limits))
    ledger.put_user(updated)
    return updated


def set_tier_limits(ledger: Ledger, clock: Clock, tier: str, limits: Limits, actor: str) -> Tier:
    current = ledger.load_settings().tiers.get(tier)
    merged = Tier(tier, (current.limits if current else Limits()).overridden_by(limits))
    ledger.put_tier(merged, actor, clock.now())
    return merged


def set_feature_budget(
    ledger: Ledger, clock: Clock, settings: Settings, name: str, month_usd: Decimal, actor: str
) -> Feature:
    feature = ledger.load_settings().features.get(name) or default_feature(settings, name)
    updated = replace(feature, month_usd=month_usd)
    ledger.put_feature(updated, actor, clock.now())
    return updated


def set_global_budget(ledger: Ledger, clock: Clock, settings: Settings, month_usd: Decimal, actor: str) -> GlobalBudget:
    budget = GlobalBudget(month_usd, settings.global_shards)
    ledger.put_global(budget, actor, clock.now())
    return budget


def set_switch(
    ledger: Ledger, clock: Clock, settings: Settings, name: str, state: SwitchState, reason: str, actor: str
) -> Feature:
    feature = ledger.load_settings().features.get(name) or default_feature(settings, name)
    return ledger.set_switch(feature, state, reason, actor, clock.now())


def default_feature(settings: Settings, name: str) -> Feature:
    return replace(feature_config(settings, EMPTY_SNAPSHOT, name), shards=settings.default_feature_shards)


def seed_defaults(ledger: Ledger, clock: Clock, settings: Settings, actor: str = "costbrake-local") -> None:
    """DESIGN's defaults: tiers, feature shares of the global budget, the global budget itself."""
    now = clock.now()
    for name, limits in DEFAULT_TIERS.items():
        ledger.put_tier(Tier(name, limits), actor, now)
    ledger.put_tier(Tier("default", DEFAULT_TIERS["free"]), actor, now)
    for name, share in DEFAULT_FEATURE_SHARES.items():
        feature = replace(default_feature(settings, name), month_usd=settings.global_month_usd * share)
        ledger.put_feature(feature, actor, now)
    ledger.put_global(GlobalBudget(settings.global_month_usd, settings.global_shards), actor, now)
