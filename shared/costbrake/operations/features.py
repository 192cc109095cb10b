"""Operators' actions on features: names, configuration, budgets and kill switches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from costbrake.clock import Clock
from costbrake.config import Settings
from costbrake.dal.admin import AdminStore
from costbrake.names import InvalidName, canonical_feature
from costbrake.operations.announce import operator_alert
from costbrake.pipeline.alerts import SWITCH_FLIP, Alert
from costbrake.pipeline.anomaly import Severity
from costbrake.policy import DEFAULT_FEATURE, feature_config
from costbrake.records import Feature, SettingsSnapshot, SwitchState
from costbrake.scopes import FEATURE_PREFIX

EMPTY_SNAPSHOT = SettingsSnapshot(tiers={}, features={}, global_budget=None)


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


class UnconfiguredFeatures(LookupError):
    def __init__(self, names: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(
            f"feature(s) {', '.join(names)} not configured (configured: {', '.join(known) or 'none'}); "
            "pass --create-features to configure them with the deployment's defaults"
        )
        self.names = tuple(names)


def unconfigured_features(admin: AdminStore, names: Sequence[str]) -> list[str]:
    """Which of these (canonical) feature names have no configuration ("default" needs none)."""
    known = admin.load_settings().features
    return [name for name in names if name not in known and name != DEFAULT_FEATURE]


def configure_features(admin: AdminStore, clock: Clock, settings: Settings, names: Sequence[str], actor: str) -> None:
    """Configure features with the deployment's defaults (what an unconfigured feature gets anyway)."""
    for name in names:
        admin.put_feature(default_feature(settings, canonical_feature(name)), actor, clock.now())


def default_feature(settings: Settings, name: str) -> Feature:
    return replace(feature_config(settings, EMPTY_SNAPSHOT, name), shards=settings.default_feature_shards)


def set_feature_budget(
    admin: AdminStore, clock: Clock, settings: Settings, name: str, month_usd: Decimal, actor: str
) -> Feature:
    name = canonical_feature(name)
    feature = admin.load_settings().features.get(name) or default_feature(settings, name)
    updated = replace(feature, month_usd=month_usd)
    admin.put_feature(updated, actor, clock.now())
    return updated


class UnknownFeature(LookupError):
    def __init__(self, name: str, known: list[str], action: str = "switch") -> None:
        super().__init__(
            f"unknown feature {name!r} (configured: {', '.join(known) or 'none'}); "
            f"pass --create to {action} a feature that has no configuration yet"
        )


def switch_feature(
    admin: AdminStore,
    clock: Clock,
    settings: Settings,
    name: str,
    state: SwitchState,
    reason: str,
    actor: str,
    *,
    create: bool = False,
) -> tuple[Feature, Alert]:
    """Flip a feature's switch (audited by the ledger) and the alert that announces it (see ``announce``), by
    operators and by the anomaly pipeline alike: the canonical name's switch, so that every spelling a caller
    could send is switched.

    A feature without configuration is switched only with ``create``: a typo must not make a new feature (the
    pipeline passes it: it switches features by their spend, configured or not).
    """
    if not name.strip():
        raise ValueError("a feature name cannot be empty")
    now = clock.now()
    features = admin.load_settings().features
    name = feature_key(name)
    if name not in features:
        if not create:
            raise UnknownFeature(name, sorted(features))
        name = canonical_feature(name)  # an unconfigured feature is created only under a canonical name
    feature = features.get(name) or default_feature(settings, name)
    flipped = admin.set_switch(feature, state, reason, actor, now)
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
