"""Operators' actions on end users: find one, limits, tiers, blocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from costbrake.clock import Clock
from costbrake.dal.admin import AdminStore
from costbrake.names import canonical_user_id
from costbrake.operations.announce import operator_alert
from costbrake.pipeline.alerts import USER_BLOCK, Alert
from costbrake.pipeline.anomaly import Severity
from costbrake.policy import DEFAULT_TIER
from costbrake.records import AuditEntry, CounterRef, Limits, Tier, UserProfile
from costbrake.scopes import USER_PREFIX
from costbrake.windows import Window, span


def user_id_of(admin: AdminStore, raw: str) -> str:
    """The end user an operator means by ``raw``: its canonical id (what the gateway charges service keys' users
    under); for a profile made before ids were canonical, that exact spelling when only it exists."""
    canonical = canonical_user_id(raw)
    legacy = raw.strip()
    if legacy != canonical and admin.get_user(canonical) is None and admin.get_user(legacy) is not None:
        return legacy
    return canonical


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


def find_user(admin: AdminStore, user_id: str, now: datetime) -> UserProfile:
    """The user's profile; a user without one who spent this month (named by a service key) gets the
    default tier's profile (what the gateway applies to them). UnknownUser otherwise: most likely a typo.
    ``user_id`` in any spelling: it is looked up canonical (see ``user_id_of``)."""
    user_id = user_id_of(admin, user_id)
    month = CounterRef(f"{USER_PREFIX}{user_id}", span(Window.MONTH, now).key)
    profile, counters = admin.get_user_and_counters(user_id, [month])
    if profile is not None:
        return profile
    if counters[month].committed or counters[month].calls:
        return new_profile(user_id)
    raise UnknownUser(user_id)


def require_tier(admin: AdminStore, tier: str) -> Tier:
    tiers = admin.load_settings().tiers
    if tier not in tiers:
        raise UnknownTier(tier, sorted(tiers))
    return tiers[tier]


def set_user_limits(admin: AdminStore, clock: Clock, user_id: str, limits: Limits, actor: str) -> UserProfile:
    """The user's own limits over their tier's (a user without a profile gets one on the default tier)."""
    user_id = user_id_of(admin, user_id)
    profile = admin.get_user(user_id) or new_profile(user_id)
    updated = replace(profile, overrides=profile.overrides.overridden_by(limits))
    audit = AuditEntry(
        clock.now(), actor, "limits", limits_audit_text(profile.overrides), limits_audit_text(updated.overrides)
    )
    admin.put_user(updated, audit)
    return updated


def set_user_tier(
    admin: AdminStore, clock: Clock, user_id: str, tier: str, actor: str, *, create: bool = False
) -> UserProfile:
    """Move a known user (or, with ``create``, a new one) to an existing tier; their overrides stay."""
    require_tier(admin, tier)
    user_id = user_id_of(admin, user_id)
    now = clock.now()
    try:
        profile = find_user(admin, user_id, now)
        previous = profile.tier
    except UnknownUser:
        if not create:
            raise
        profile, previous = new_profile(user_id, tier), ""
    updated = replace(profile, tier=tier)
    admin.put_user(updated, AuditEntry(now, actor, "tier", previous, tier))
    return updated


def block_user(
    admin: AdminStore, clock: Clock, user_id: str, until: datetime, reason: str, actor: str, *, create: bool = False
) -> tuple[UserProfile, Alert]:
    """Refuse the user's calls until ``until`` (the reason, with who, is what their refusals say).

    A user the ledger does not know is blocked only with ``create`` (the pipeline, which saw them spend: a spike
    in a month's last hour leaves no spend in the new month); for an operator it is most likely a typo.
    """
    now = clock.now()
    if until <= now:
        raise ValueError(f"a block must end in the future (it would end {until.isoformat()})")
    try:
        profile = find_user(admin, user_id, now)
    except UnknownUser:
        if not create:
            raise
        profile = new_profile(user_id_of(admin, user_id))
    user_id = profile.user_id
    updated = replace(profile, blocked_until=until, blocked_reason=f"{reason} ({actor})")
    admin.put_user(updated, AuditEntry(now, actor, "block", _blocked_text(profile, now), until.isoformat(), reason))
    details = {"actor": actor, "reason": reason, "blocked_until": until.isoformat()}
    if is_blocked(profile, now):
        details["previous_blocked_until"] = profile.blocked_until.isoformat() if profile.blocked_until else ""
    summary = f"user {user_id} blocked until {until:%Y-%m-%d %H:%M} UTC by {actor}: {reason}"
    return updated, operator_alert(USER_BLOCK, Severity.WARNING, f"{USER_PREFIX}{user_id}", now, summary, details)


def unblock_user(
    admin: AdminStore, clock: Clock, user_id: str, reason: str, actor: str
) -> tuple[UserProfile, Alert | None]:
    """Lift a block; no alert when the user was not blocked."""
    now = clock.now()
    profile = find_user(admin, user_id, now)
    user_id = profile.user_id
    if not is_blocked(profile, now):
        return profile, None
    updated = replace(profile, blocked_until=None, blocked_reason="")
    admin.put_user(updated, AuditEntry(now, actor, "unblock", _blocked_text(profile, now), "", reason))
    previous = profile.blocked_until.isoformat() if profile.blocked_until else ""
    details = {"actor": actor, "reason": reason, "blocked_until": "", "previous_blocked_until": previous}
    summary = f"user {user_id} unblocked by {actor}: {reason}"
    return updated, operator_alert(USER_BLOCK, Severity.INFO, f"{USER_PREFIX}{user_id}", now, summary, details)


def is_blocked(profile: UserProfile, now: datetime) -> bool:
    return profile.blocked_until is not None and profile.blocked_until > now


def _blocked_text(profile: UserProfile, now: datetime) -> str:
    return profile.blocked_until.isoformat() if profile.blocked_until and is_blocked(profile, now) else ""


def new_profile(user_id: str, tier: str | None = None) -> UserProfile:
    """The profile of a user the ledger does not know yet: on ``tier``, else the tier the gateway applies to users
    without a profile."""
    return UserProfile(user_id=user_id, tier=tier or DEFAULT_TIER)


def limits_audit_text(limits: Limits) -> str:
    values = {"hour_usd": limits.hour_usd, "day_usd": limits.day_usd, "month_usd": limits.month_usd, "rpm": limits.rpm}
    return ", ".join(f"{name}={value}" for name, value in values.items() if value is not None)
