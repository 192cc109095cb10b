"""Which limits and feature settings apply: operator settings first, then the deployment's defaults."""

from __future__ import annotations

from collections.abc import Mapping

from costbrake.config import Settings
from costbrake.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from costbrake.names import InvalidName, canonical_feature, canonical_user_id, same_user_id
from costbrake.records import ApiKey, Feature, GlobalBudget, Limits, SettingsSnapshot, UserProfile

DEFAULT_FEATURE = "default"
DEFAULT_TIER = "default"
FEATURE_HEADER = "x-costbrake-feature"  # lower-case: request headers are looked up lower-cased
FEATURE_HEADER_NAME = "X-Costbrake-Feature"  # as messages name it
OPENAI_USER_FIELD = "user"
ANTHROPIC_USER_FIELD = "metadata.user_id"


def key_features(key: ApiKey) -> tuple[str, ...]:
    """The features a key may charge, its default first. A key made before keys listed features may charge only
    its default feature (or "default"): what it was charged when its requests named none."""
    return key.features or (key.default_feature or DEFAULT_FEATURE,)


def default_feature_of(key: ApiKey) -> str:
    """What a request that names no feature is charged to."""
    return key.default_feature or (key.features[0] if key.features else DEFAULT_FEATURE)


def requested_feature(headers: Mapping[str, str], key: ApiKey) -> str:
    """The feature a request asks to be charged to, canonical: its header (`` Chat `` is ``chat``), else its key's
    default feature. InvalidRequest for a header that names no feature even after normalising."""
    raw = headers.get(FEATURE_HEADER)
    if raw is None or not raw.strip():
        return default_feature_of(key)
    try:
        return canonical_feature(raw, FEATURE_HEADER_NAME)
    except InvalidName as error:
        raise InvalidRequest(error.message) from None


def permitted_features(key: ApiKey, snapshot: SettingsSnapshot) -> set[str]:
    """Every feature the key may charge: its list, or for an any-feature key every configured feature, "default"
    and its own default."""
    if key.any_feature:
        return {*snapshot.features, DEFAULT_FEATURE, default_feature_of(key)}
    return set(key_features(key))


def authorize_feature(key: ApiKey, snapshot: SettingsSnapshot, name: str) -> None:
    """PermissionDenied unless the key may charge the (canonical) feature ``name``.

    The operator decides what a key charges: the caller can only choose among the key's features. An any-feature
    key still cannot invent one: a name nobody configured would escape every switch and budget of the real one.
    """
    if name in permitted_features(key, snapshot):
        return
    if key.any_feature:
        known = ", ".join(sorted(snapshot.features)) or "none"
        raise PermissionDenied(
            f"Unknown feature '{name}': it is not configured in this deployment (configured: {known}).",
            param=FEATURE_HEADER_NAME,
        )
    allowed = ", ".join(f"'{feature}'" for feature in key_features(key))
    raise PermissionDenied(
        f"This costbrake key may not charge feature '{name}'; it may charge {allowed} "
        f"(name one in {FEATURE_HEADER_NAME}, or none for '{default_feature_of(key)}').",
        param=FEATURE_HEADER_NAME,
    )


def resolve_feature(settings: Settings, snapshot: SettingsSnapshot, headers: Mapping[str, str], key: ApiKey) -> Feature:
    """The configuration of the feature a request is charged to, after checking the key may charge it."""
    name = requested_feature(headers, key)
    authorize_feature(key, snapshot, name)
    return feature_config(settings, snapshot, name)


def feature_of(headers: Mapping[str, str], key: ApiKey, snapshot: SettingsSnapshot | None = None) -> str:
    """The feature a request is charged to, for labels (metrics of refusals): "" when the request names a feature
    it may not charge, so that callers cannot mint label values. Without ``snapshot`` an any-feature key's
    names are told only when they are the key's own."""
    try:
        name = requested_feature(headers, key)
    except InvalidRequest:
        return ""
    if snapshot is not None:
        return name if name in permitted_features(key, snapshot) else ""
    return name if name in key_features(key) or name == default_feature_of(key) else ""


def caller_user_id(key: ApiKey, named_user: str | None) -> str:
    """Whose budgets a call spends. A service key's end user is the one the request names (canonical, see
    ``end_user``), else the key's own bucket; a user key's is its bound user, and it may name no other."""
    if key.service:
        return named_user or f"key:{key.key_id}"
    if key.user_id is None:
        raise AuthenticationFailed("This costbrake key is bound to no user.")
    if named_user is not None and named_user != same_user_id(key.user_id):
        raise PermissionDenied("A user key may only act for its own user; use a service key to name end users.")
    return key.user_id


def end_user(raw: str | None, field: str) -> str | None:
    """The canonical end-user id a request names in ``field`` (None if it names none); InvalidRequest naming the
    field when it is not a usable id (unprintable, too long). A blank one names none: the key's own bucket."""
    if raw is None or not raw.strip():
        return None
    try:
        return canonical_user_id(raw, field)
    except InvalidName as error:
        raise InvalidRequest(error.message, param=field) from None


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
