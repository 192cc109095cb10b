"""Operators' actions on API keys: create one, set its own budgets."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from costbrake.clock import Clock
from costbrake.dal.admin import AdminStore
from costbrake.keys import hash_key
from costbrake.operations.features import feature_names
from costbrake.operations.users import limits_audit_text, new_profile, user_id_of
from costbrake.records import ApiKey, AuditEntry, Limits

KEY_PREFIX = "cb-"


@dataclass(frozen=True)
class NewKey:
    secret: str
    key: ApiKey


def create_key(
    admin: AdminStore,
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
    user = user_id_of(admin, user_id) if user_id else None
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
    existing = admin.get_user(user) if user else None
    if existing is not None and tier is not None and tier != existing.tier:
        # A key is no place to move a user between tiers: that is `users set-tier`, audited.
        raise ValueError(f"user {user} is on tier {existing.tier}; move them with `users set-tier` first")
    admin.put_key(digest, key, clock.now())
    if user and existing is None:
        admin.put_user(new_profile(user, tier))
    return NewKey(secret, key)


class UnknownKey(LookupError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"unknown key id {key_id!r} (`costbrake keys list` shows them)")
        self.key_id = key_id


def set_key_limits(admin: AdminStore, clock: Clock, key_id: str, limits: Limits, actor: str) -> ApiKey:
    """The key's own hour/day/month budgets (the ones ``limits`` sets; the others stay), audited."""
    if limits.rpm is not None:
        raise ValueError("a key's budgets are --hour, --day and --month (requests per minute are per user)")
    found = admin.find_key(key_id)
    if found is None:
        raise UnknownKey(key_id)
    current = found[0].limits
    merged = current.overridden_by(limits)
    audit = AuditEntry(clock.now(), actor, "limits", limits_audit_text(current), limits_audit_text(merged))
    updated = admin.set_key_limits(key_id, limits, audit)
    if updated is None:
        raise UnknownKey(key_id)
    return updated
