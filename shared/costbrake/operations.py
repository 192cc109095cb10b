"""Operator actions shared by the CLI and the local stack: keys, budgets, switches, users, defaults."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal import Ledger
from costbrake.keys import hash_key
from costbrake.names import InvalidName, canonical_feature, canonical_user_id
from costbrake.pipeline.alerts import SWITCH_FLIP, USER_BLOCK, Alert, SnsPublisher, alert_id
from costbrake.pipeline.anomaly import FEATURE_PREFIX, USER_PREFIX, Severity
from costbrake.policy import DEFAULT_FEATURE, DEFAULT_TIER, feature_config
from costbrake.records import (
    ApiKey,
    AuditEntry,
    CounterRef,
    Feature,
    GlobalBudget,
    Limits,
    SettingsSnapshot,
    SwitchState,
    Tier,
    UserProfile,
)
from costbrake.windows import Window, span

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


def feature_names(names: Sequence[str]) -> tuple[str, ...]:
    """Feature names in their canonical spelling, first-seen order, duplicates dropped; InvalidName for a name
    that has none."""
    return tuple(dict.fromkeys(canonical_feature(name) for name in names))


def feature_key(name: str) -> str:
    """A feature as switches and budgets know it: its canonical spelling, or, for a configured name from before
    names were canonical, the name as it is."""
    try:
        return canonical_feature(name)
    except InvalidName:
        return name


def user_id_of(ledger: Ledger, raw: str) -> str:
    """The end user an operator means by ``raw``: its canonical id (what the gateway charges service keys' users
    under); for a profile made before ids were canonical, that exact spelling when only it exists."""
    canonical = canonical_user_id(raw)
    legacy = raw.strip()
    if legacy != canonical and ledger.get_user(canonical) is None and ledger.get_user(legacy) is not None:
        return legacy
    return canonical


class UnconfiguredFeatures(LookupError):
    def __init__(self, names: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(
            f"feature(s) {', '.join(names)} not configured (configured: {', '.join(known) or 'none'}); "
            "pass --create-features to configure them with the deployment's defaults"
        )
        self.names = tuple(names)


def create_key(
    ledger: Ledger,
    clock: Clock,
    *,
    user_id: str | None,
    tier: str | None,
    service: bool,
    feature: str | None = None,
    features: Sequence[str] = (),
    any_feature: bool = False,
    limits: Limits | None = None,
    name: str = "",
    secret: str | None = None,
) -> NewKey:
    """A new key. It may charge ``feature`` and ``features`` (the first is its default, charged when a request
    names none); with ``any_feature`` any configured feature (or "default"). A key naming no feature and not
    any-feature may charge only "default". ``limits``: the key's own hour/day/month budgets (all its users
    together). Names are canonical or refused (InvalidName, a ValueError)."""
    if not service and not user_id:
        raise ValueError("a user key needs --user (or create a --service key)")
    if limits is not None and limits.rpm is not None:
        raise ValueError("a key's budgets are --hour, --day and --month (requests per minute are per user)")
    allowed = feature_names([*([feature] if feature else []), *features])
    user = user_id_of(ledger, user_id) if user_id else None
    secret = secret or KEY_PREFIX + secrets.token_urlsafe(32)
    digest = hash_key(secret)
    own = limits or Limits()
    key = ApiKey(
        key_id=digest[:12],
        user_id=None if service else user,
        service=service,
        default_feature=allowed[0] if allowed else None,
        name=name,
        features=allowed,
        any_feature=any_feature,
        hour_usd=own.hour_usd,
        day_usd=own.day_usd,
        month_usd=own.month_usd,
    )
    existing = ledger.get_user(user) if user else None
    if existing is not None and tier is not None and tier != existing.tier:
        # A key is no place to move a user between tiers: that is `users set-tier`, audited.
        raise ValueError(f"user {user} is on tier {existing.tier}; move them with `users set-tier` first")
    ledger.put_key(digest, key, clock.now())
    if user and existing is None:
        ledger.put_user(UserProfile(user_id=user, tier=tier or "free"))
    return NewKey(secret, key)


def unconfigured_features(ledger: Ledger, names: Sequence[str]) -> list[str]:
    """Which of these (canonical) feature names have no configuration ("default" needs none)."""
    known = ledger.load_settings().features
    return [name for name in names if name not in known and name != DEFAULT_FEATURE]


def configure_features(ledger: Ledger, clock: Clock, settings: Settings, names: Sequence[str], actor: str) -> None:
    """Configure features with the deployment's defaults (what an unconfigured feature gets anyway)."""
    for name in names:
        ledger.put_feature(default_feature(settings, canonical_feature(name)), actor, clock.now())


class UnknownKey(LookupError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"unknown key id {key_id!r} (`costbrake keys list` shows them)")
        self.key_id = key_id


def set_key_limits(ledger: Ledger, clock: Clock, key_id: str, limits: Limits, actor: str) -> ApiKey:
    """The key's own hour/day/month budgets (the ones ``limits`` sets; the others stay), audited."""
    if limits.rpm is not None:
        raise ValueError("a key's budgets are --hour, --day and --month (requests per minute are per user)")
    found = ledger.find_key(key_id)
    if found is None:
        raise UnknownKey(key_id)
    current = found[0].limits
    merged = current.overridden_by(limits)
    audit = AuditEntry(clock.now(), actor, "limits", _limits_text(current), _limits_text(merged))
    updated = ledger.set_key_limits(key_id, limits, audit)
    if updated is None:
        raise UnknownKey(key_id)
    return updated


def set_user_limits(ledger: Ledger, clock: Clock, user_id: str, limits: Limits, actor: str) -> UserProfile:
    """The user's own limits over their tier's (a user without a profile gets one on the default tier)."""
    user_id = user_id_of(ledger, user_id)
    profile = ledger.get_user(user_id) or UserProfile(user_id=user_id, tier=DEFAULT_TIER)
    updated = replace(profile, overrides=profile.overrides.overridden_by(limits))
    audit = AuditEntry(clock.now(), actor, "limits", _limits_text(profile.overrides), _limits_text(updated.overrides))
    ledger.put_user(updated, audit)
    return updated


def _limits_text(limits: Limits) -> str:
    values = {"hour_usd": limits.hour_usd, "day_usd": limits.day_usd, "month_usd": limits.month_usd, "rpm": limits.rpm}
    return ", ".join(f"{name}={value}" for name, value in values.items() if value is not None)


def set_tier_limits(ledger: Ledger, clock: Clock, tier: str, limits: Limits, actor: str) -> Tier:
    current = ledger.load_settings().tiers.get(tier)
    merged = Tier(tier, (current.limits if current else Limits()).overridden_by(limits))
    ledger.put_tier(merged, actor, clock.now())
    return merged


def set_feature_budget(
    ledger: Ledger, clock: Clock, settings: Settings, name: str, month_usd: Decimal, actor: str
) -> Feature:
    name = canonical_feature(name)
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
    """Flip a feature's switch (the anomaly pipeline's automatic flips): the canonical name's, so that every
    spelling a caller could send is switched."""
    features = ledger.load_settings().features
    name = feature_key(name)
    if name not in features:
        name = canonical_feature(name)  # an unconfigured feature is created only under a canonical name
    feature = features.get(name) or default_feature(settings, name)
    return ledger.set_switch(feature, state, reason, actor, clock.now())


class UnknownFeature(LookupError):
    def __init__(self, name: str, known: list[str], action: str = "switch") -> None:
        super().__init__(
            f"unknown feature {name!r} (configured: {', '.join(known) or 'none'}); "
            f"pass --create to {action} a feature that has no configuration yet"
        )


def switch_by_operator(
    ledger: Ledger,
    clock: Clock,
    settings: Settings,
    name: str,
    state: SwitchState,
    reason: str,
    actor: str,
    *,
    create: bool = False,
) -> tuple[Feature, Alert]:
    """Flip a feature's switch (audited by the ledger) and the alert that announces it (see ``announce``).

    A feature without configuration is switched only with ``create``: a typo must not make a new feature.
    """
    if not name.strip():
        raise ValueError("a feature name cannot be empty")
    now = clock.now()
    features = ledger.load_settings().features
    name = feature_key(name)
    if name not in features:
        if not create:
            raise UnknownFeature(name, sorted(features))
        name = canonical_feature(name)  # an unconfigured feature is created only under a canonical name
    feature = features.get(name) or default_feature(settings, name)
    flipped = ledger.set_switch(feature, state, reason, actor, now)
    severity = {SwitchState.ON: Severity.INFO, SwitchState.DOWNGRADE: Severity.WARNING}.get(state, Severity.CRITICAL)
    alert = operator_alert(
        SWITCH_FLIP,
        severity,
        f"{FEATURE_PREFIX}{name}",
        now,
        f"feature {name} switched {feature.state.value} -> {state.value} by {actor}: {reason}",
        {"actor": actor, "reason": reason, "previous_state": feature.state.value, "state": state.value},
    )
    return flipped, alert


# ---- users --------------------------------------------------------------------------------------


class UnknownUser(LookupError):
    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"unknown user {user_id!r}: no profile and no spend this month "
            "(`costbrake keys create --user` creates a profile)"
        )
        self.user_id = user_id


class UnknownTier(LookupError):
    def __init__(self, tier: str, known: list[str]) -> None:
        super().__init__(
            f"unknown tier {tier!r}; tiers: {', '.join(known) or 'none'} (`costbrake budgets set --tier` adds one)"
        )
        self.tier = tier


def find_user(ledger: Ledger, user_id: str, now: datetime) -> UserProfile:
    """The user's profile; a user without one who spent this month (named by a service key) gets the
    default tier's profile (what the gateway applies to them). UnknownUser otherwise: most likely a typo.
    ``user_id`` in any spelling: it is looked up canonical (see ``user_id_of``)."""
    user_id = user_id_of(ledger, user_id)
    month = CounterRef(f"{USER_PREFIX}{user_id}", span(Window.MONTH, now).key)
    profile, counters = ledger.get_user_and_counters(user_id, [month])
    if profile is not None:
        return profile
    if counters[month].committed or counters[month].calls:
        return UserProfile(user_id=user_id, tier=DEFAULT_TIER)
    raise UnknownUser(user_id)


def require_tier(ledger: Ledger, tier: str) -> Tier:
    tiers = ledger.load_settings().tiers
    if tier not in tiers:
        raise UnknownTier(tier, sorted(tiers))
    return tiers[tier]


def set_user_tier(
    ledger: Ledger, clock: Clock, user_id: str, tier: str, actor: str, *, create: bool = False
) -> UserProfile:
    """Move a known user (or, with ``create``, a new one) to an existing tier; their overrides stay."""
    require_tier(ledger, tier)
    user_id = user_id_of(ledger, user_id)
    now = clock.now()
    try:
        profile = find_user(ledger, user_id, now)
        previous = profile.tier
    except UnknownUser:
        if not create:
            raise
        profile, previous = UserProfile(user_id=user_id, tier=tier), ""
    updated = replace(profile, tier=tier)
    ledger.put_user(updated, AuditEntry(now, actor, "tier", previous, tier))
    return updated


def block_user(
    ledger: Ledger, clock: Clock, user_id: str, until: datetime, reason: str, actor: str
) -> tuple[UserProfile, Alert]:
    """Refuse the user's calls until ``until`` (the reason, with who, is what their refusals say)."""
    now = clock.now()
    if until <= now:
        raise ValueError(f"a block must end in the future (it would end {until.isoformat()})")
    profile = find_user(ledger, user_id, now)
    user_id = profile.user_id
    updated = replace(profile, blocked_until=until, blocked_reason=f"{reason} ({actor})")
    ledger.put_user(updated, AuditEntry(now, actor, "block", _blocked_text(profile, now), until.isoformat(), reason))
    details = {"actor": actor, "reason": reason, "blocked_until": until.isoformat()}
    if is_blocked(profile, now):
        details["previous_blocked_until"] = profile.blocked_until.isoformat() if profile.blocked_until else ""
    summary = f"user {user_id} blocked until {until:%Y-%m-%d %H:%M} UTC by {actor}: {reason}"
    return updated, operator_alert(USER_BLOCK, Severity.WARNING, f"{USER_PREFIX}{user_id}", now, summary, details)


def unblock_user(
    ledger: Ledger, clock: Clock, user_id: str, reason: str, actor: str
) -> tuple[UserProfile, Alert | None]:
    """Lift a block; no alert when the user was not blocked."""
    now = clock.now()
    profile = find_user(ledger, user_id, now)
    user_id = profile.user_id
    if not is_blocked(profile, now):
        return profile, None
    updated = replace(profile, blocked_until=None, blocked_reason="")
    ledger.put_user(updated, AuditEntry(now, actor, "unblock", _blocked_text(profile, now), "", reason))
    previous = profile.blocked_until.isoformat() if profile.blocked_until else ""
    details = {"actor": actor, "reason": reason, "blocked_until": "", "previous_blocked_until": previous}
    summary = f"user {user_id} unblocked by {actor}: {reason}"
    return updated, operator_alert(USER_BLOCK, Severity.INFO, f"{USER_PREFIX}{user_id}", now, summary, details)


def is_blocked(profile: UserProfile, now: datetime) -> bool:
    return profile.blocked_until is not None and profile.blocked_until > now


def _blocked_text(profile: UserProfile, now: datetime) -> str:
    return profile.blocked_until.isoformat() if profile.blocked_until and is_blocked(profile, now) else ""


# ---- announcements --------------------------------------------------------------------------------


def operator_alert(
    type_: str, severity: Severity, scope: str, now: datetime, summary: str, details: dict[str, str]
) -> Alert:
    """The alert announcing an operator's action (who/why in ``details``, when in ``generated_at``)."""
    return Alert(
        alert_id=alert_id(f"operator#{type_}#{scope}#{now.isoformat()}"),
        type=type_,
        severity=severity,
        scope=scope,
        window=span(Window.HOUR, now),
        generated_at=now,
        summary=summary,
        details={**details, "at": now.isoformat(), "source": "operator"},
    )


def announce(settings: Settings, ledger: Ledger, alert: Alert, sns: Any = None) -> str:
    """Publish ``alert`` on the deployment's topic, if it has one, and keep it in the ledger's alert log (what
    reports list). Returns where it went, for the operator."""
    if settings.alert_topic_arn:
        if sns is None:
            import boto3  # only operators' commands publish: no boto3 client at import time

            sns = boto3.client("sns", region_name=settings.aws_region)
        SnsPublisher(sns, settings.alert_topic_arn).publish(alert)
        where = f"alert published to {settings.alert_topic_arn}"
    else:
        where = (
            "no alert topic configured (--stack NAME or COSTBRAKE_ALERT_TOPIC_ARN): "
            "the alert was only kept in the ledger's alert log"
        )
    ledger.log_alert(alert.to_message(), alert.generated_at)
    return where


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
