"""Operators' changes to a feature's caps and cost reducers (`costbrake features set`), validated and audited.

Only the settings named change; the feature's switch, reason, budget and shards are left as the ledger holds
them (an UpdateItem of those attributes, so a switch flip made meanwhile stays). Each change writes an audit
entry (action ``settings``: the changed settings before and after, who, when, why) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal.admin import AdminStore
from costbrake.names import canonical_feature
from costbrake.operations.features import UnknownFeature, default_feature, feature_key
from costbrake.records import AuditEntry, CacheMode, Feature, OverCap

SETTINGS_ACTION = "settings"
MIN_CACHE_TTL_SECONDS = 60
MAX_CACHE_TTL_SECONDS = 365 * 86_400
MAX_TOKENS = 10_000_000  # above every model's context window: a cap beyond it is a typo
LOW_THRESHOLD = Decimal("0.9")  # below this a semantic cache serves wrong answers too often (said, not refused)
# Changing any of these retires the answers the response cache holds for the feature.
CACHE_SETTINGS = frozenset({"cache", "cache_ttl_seconds", "semantic_threshold"})
_ATTEMPTS = 3  # a feature created or removed by someone else meanwhile: read again and retry


@dataclass(frozen=True)
class FeatureChanges:
    """The settings an operator names; None leaves one as it is."""

    cache: CacheMode | None = None
    cache_ttl_seconds: int | None = None
    semantic_threshold: Decimal | None = None
    truncate: bool | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    over_cap: OverCap | None = None

    def named(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


class FeatureChanged(RuntimeError):
    """The feature kept being created or removed by someone else while this change was written."""


def validate(changes: FeatureChanges) -> None:
    """ValueError naming the first setting out of range."""
    ttl = changes.cache_ttl_seconds
    if ttl is not None and not MIN_CACHE_TTL_SECONDS <= ttl <= MAX_CACHE_TTL_SECONDS:
        raise ValueError(f"--cache-ttl must be {MIN_CACHE_TTL_SECONDS} to {MAX_CACHE_TTL_SECONDS} seconds, not {ttl}")
    threshold = changes.semantic_threshold
    if threshold is not None and not (threshold.is_finite() and Decimal(0) < threshold <= Decimal(1)):
        raise ValueError(f"--semantic-threshold is a cosine similarity in (0, 1], not {threshold}")
    for name in ("max_input_tokens", "max_output_tokens"):
        value = getattr(changes, name)
        if value is not None and not 1 <= value <= MAX_TOKENS:
            raise ValueError(f"--{name.replace('_', '-')} must be 1 to {MAX_TOKENS:,}, not {value}")


def settings_text(feature: Feature, names: list[str]) -> str:
    """``name=value`` of the named settings, as audit entries record them."""
    return ", ".join(f"{name}={_shown(getattr(feature, name))}" for name in names)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, CacheMode | OverCap):
        return value.value
    return str(value)


def set_feature_settings(
    admin: AdminStore,
    clock: Clock,
    settings: Settings,
    name: str,
    changes: FeatureChanges,
    actor: str,
    reason: str = "",
    *,
    create: bool = False,
    flush_cache: bool = False,
) -> tuple[Feature, Feature]:
    """Apply ``changes`` to the feature ``name``; returns (before, after). ``before`` equals ``after`` when
    nothing changed (no write, no audit entry). A feature without configuration is configured (with the
    deployment's defaults for the rest) only with ``create``: a typo must not make a new feature.
    ValueError for an invalid setting or name, UnknownFeature, FeatureChanged."""
    validate(changes)
    named = changes.named()
    if not named and not flush_cache:
        raise ValueError("name at least one setting to change (see `costbrake features set --help`)")
    for _ in range(_ATTEMPTS):
        features = admin.load_settings().features
        key = feature_key(name)
        current = features.get(key)
        if current is None:
            if not create:
                raise UnknownFeature(key, sorted(features), action="configure")
            current = default_feature(settings, canonical_feature(name))
        updated = replace(current, **named)
        changed = [field for field in named if getattr(current, field) != getattr(updated, field)]
        if flush_cache or (key in features and set(changed) & CACHE_SETTINGS):
            # Answers stored under the old settings (a longer TTL, a looser threshold) are not served again.
            updated = replace(updated, cache_generation=current.cache_generation + 1)
            changed.append("cache_generation")
        if not changed and key in features:
            return current, current
        now = clock.now()
        creating = key not in features
        shown = [f.name for f in fields(FeatureChanges)] if creating else changed
        audit = AuditEntry(
            now,
            actor,
            SETTINGS_ACTION,
            "" if creating else settings_text(current, shown),
            settings_text(updated, shown),
            reason,
        )
        if admin.update_feature_settings(updated, audit, create=creating):
            return current, updated
    raise FeatureChanged(f"feature {name!r} kept changing while its settings were written; run the command again")
