"""Reads of settings, users and counters that the gateway and operators share, and their item conversions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.models import Model

from costbrake.dal import models as m
from costbrake.dal.tables import Tables, key, unavailable
from costbrake.dal.user_item import USER_SK, UserSpend, is_user_ref
from costbrake.pricing import ModelPrice
from costbrake.records import (
    DEFAULT_CACHE_TTL_SECONDS,
    DEFAULT_SEMANTIC_THRESHOLD,
    ApiKey,
    CacheMode,
    CounterRef,
    CounterState,
    Feature,
    GlobalBudget,
    Limits,
    OverCap,
    SettingsSnapshot,
    SwitchState,
    Tier,
    UserProfile,
)

UNREACHABLE = "The budget ledger could not be reached; the call was not made."
NO_COUNTER = CounterState(Decimal(0), Decimal(0), 0)


class LedgerReader:
    """Operator settings, a user's profile and spend counters: what budgets are checked against."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def load_settings(self) -> SettingsSnapshot:
        tiers: dict[str, Tier] = {}
        features: dict[str, Feature] = {}
        global_budget: GlobalBudget | None = None
        prices: dict[str, ModelPrice] = {}
        with unavailable(UNREACHABLE):
            for item in self.tables.query(self.tables.ledger, m.SettingsItem, m.SettingsItem.pk == m.SETTINGS_PK):
                if isinstance(item, m.TierItem):
                    name = item.sk.removeprefix("tier#")
                    tiers[name] = Tier(name, limits_of(item))
                elif isinstance(item, m.FeatureItem):
                    feature = feature_of(item)
                    features[feature.name] = feature
                elif isinstance(item, m.GlobalItem):
                    global_budget = GlobalBudget(item.month_usd, int(item.shards))
                elif isinstance(item, m.PriceItem):
                    model = item.sk.removeprefix("price#")
                    prices[model] = ModelPrice.from_spec(model, json.loads(item.spec))
        return SettingsSnapshot(tiers=tiers, features=features, global_budget=global_budget, prices=prices)

    def get_user(self, user_id: str) -> UserProfile | None:
        with unavailable(UNREACHABLE):
            item = self.tables.get(self.tables.ledger, m.UserItem, key(f"user#{user_id}", "profile"))
        return user_of(item) if item else None

    def get_user_and_counters(
        self, user_id: str, refs: Iterable[CounterRef]
    ) -> tuple[UserProfile | None, dict[CounterRef, CounterState]]:
        """The user's profile and current counters in one BatchGetItem."""
        refs = list(refs)
        keys = [(f"user#{user_id}", "profile")]
        keys += [(ref.pk, USER_SK) if is_user_ref(ref) else (ref.pk, ref.window) for ref in refs]
        with unavailable(UNREACHABLE):
            found = self.tables.batch_get(self.tables.ledger, [key(pk, sk) for pk, sk in keys])
        raws = {(raw["pk"]["S"], raw["sk"]["S"]): raw for raw in found}
        counters = {}
        for ref in refs:
            if is_user_ref(ref):
                counters[ref] = UserSpend.of(raws.get((ref.pk, USER_SK))).state(ref.window)
            else:
                raw = raws.get((ref.pk, ref.window))
                counters[ref] = counter_of(m.CounterItem.from_raw_data(raw)) if raw else NO_COUNTER
        profile = raws.get((f"user#{user_id}", "profile"))
        return (user_of(m.UserItem.from_raw_data(profile)) if profile else None), counters

    def get_counters(self, refs: Iterable[CounterRef]) -> dict[CounterRef, CounterState]:
        return self.get_user_and_counters("\x00none", refs)[1]

    def batch_get(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Model]:
        with unavailable(UNREACHABLE):
            found = self.tables.batch_get(self.tables.ledger, [key(pk, sk) for pk, sk in keys])
        return {(raw["pk"]["S"], raw["sk"]["S"]): m.model_for_item(raw).from_raw_data(raw) for raw in found}


def limits_of(item: Any) -> Limits:
    rpm = item.rpm
    return Limits(item.hour_usd, item.day_usd, item.month_usd, int(rpm) if rpm is not None else None)


def feature_of(item: m.FeatureItem) -> Feature:
    return Feature(
        name=item.sk.removeprefix("feature#"),
        state=SwitchState(item.state),
        reason=item.reason,
        default_max_output_tokens=int(item.default_max_output_tokens),
        max_output_tokens=int(item.max_output_tokens),
        over_cap=OverCap(item.over_cap),
        max_input_tokens=int(item.max_input_tokens),
        month_usd=item.month_usd,
        shards=int(item.shards),
        cache=_cache_mode(item.cache),
        cache_ttl_seconds=int(item.cache_ttl_seconds or DEFAULT_CACHE_TTL_SECONDS),
        semantic_threshold=item.semantic_threshold or DEFAULT_SEMANTIC_THRESHOLD,
        truncate=bool(item.truncate),
        cache_generation=int(item.cache_generation or 0),
    )


def _cache_mode(stored: str | None) -> CacheMode:
    """A mode this version does not know (written by a newer one) reads as off, not a failed settings load."""
    try:
        return CacheMode(stored) if stored else CacheMode.OFF
    except ValueError:
        return CacheMode.OFF


def api_key_of(item: m.KeyItem) -> ApiKey:
    return ApiKey(
        key_id=item.key_id,
        user_id=item.user_id,
        service=bool(item.service),
        default_feature=item.default_feature,
        month_usd=item.month_usd,
        revoked=bool(item.revoked),
        name=item.name,
        features=tuple(item.features or ()),
        any_feature=bool(item.any_feature),
        hour_usd=item.hour_usd,
        day_usd=item.day_usd,
    )


def user_of(item: m.UserItem) -> UserProfile:
    return UserProfile(
        user_id=item.pk.removeprefix("user#"),
        tier=item.tier,
        overrides=limits_of(item),
        blocked_until=datetime.fromisoformat(item.blocked_until) if item.blocked_until else None,
        blocked_reason=item.blocked_reason,
    )


def counter_of(item: m.CounterItem) -> CounterState:
    return CounterState(
        committed=item.committed or Decimal(0),
        spent=item.spent or Decimal(0),
        calls=int(item.calls or item.requests or 0),
    )
