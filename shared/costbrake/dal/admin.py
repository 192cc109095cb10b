"""Operators' writes (keys, users, tiers, features, switches, prices), each audited change with its audit entry."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from costbrake.dal import models as m
from costbrake.dal.reads import LedgerReader, api_key_of
from costbrake.dal.tables import condition_failed, delete_entry, key, put_entry, unavailable, update_entry
from costbrake.pricing import ModelPrice
from costbrake.records import ApiKey, AuditEntry, Feature, GlobalBudget, Limits, SwitchState, Tier, UserProfile

PRICES_PER_TRANSACTION = 50  # each price is written with its audit entry; a transaction holds 100 items
UNREACHABLE = "The ledger could not be reached."


class AdminStore(LedgerReader):
    # ---- keys -----------------------------------------------------------------------------------

    def put_key(self, key_hash: str, api_key: ApiKey, created_at: datetime) -> None:
        item = m.KeyItem(
            f"key#{key_hash}",
            "key",
            key_id=api_key.key_id,
            user_id=api_key.user_id,
            service=api_key.service,
            default_feature=api_key.default_feature,
            month_usd=api_key.month_usd,
            revoked=api_key.revoked,
            name=api_key.name,
            created_at=created_at.isoformat(),
            features=list(api_key.features) or None,
            any_feature=api_key.any_feature or None,
            hour_usd=api_key.hour_usd,
            day_usd=api_key.day_usd,
        )
        with unavailable("The ledger could not store the key."):
            self.tables.put(self.tables.ledger, item, m.KeyItem.pk.does_not_exist())

    def list_keys(self) -> list[tuple[ApiKey, str]]:
        """Every key with its creation time (a scan: operators only)."""
        with unavailable(UNREACHABLE):
            return [(api_key_of(item), item.created_at or "") for item in self._keys(m.KeyItem.pk.startswith("key#"))]

    def find_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key with this id (as `keys list` shows it) and its creation time (a scan: operators only)."""
        with unavailable(UNREACHABLE):
            item = next(self._keys(m.KeyItem.key_id == key_id), None)
        return (api_key_of(item), item.created_at or "") if item else None

    def set_key_limits(self, key_id: str, limits: Limits, audit: AuditEntry) -> ApiKey | None:
        """Set the key's hour/day/month limits that ``limits`` sets (the others stay), audited in one
        transaction; None for an unknown key id."""
        with unavailable("The ledger could not store the key's limits."):
            item = next(self._keys(m.KeyItem.key_id == key_id), None)
            if item is None:
                return None
            k = m.KeyItem
            pairs = ((k.hour_usd, limits.hour_usd), (k.day_usd, limits.day_usd), (k.month_usd, limits.month_usd))
            actions = [attribute.set(value) for attribute, value in pairs if value is not None]
            ledger = self.tables.ledger
            self.tables.transact(
                [
                    update_entry(ledger, key(item.pk, item.sk), actions, m.KeyItem.pk.exists()),
                    put_entry(ledger, _audit_item(f"audit#key#{key_id}", audit)),
                ]
            )
        found = self.find_key(key_id)
        return found[0] if found else None

    def key_history(self, key_id: str) -> list[AuditEntry]:
        """The key's audited changes (its budgets), oldest first."""
        return [_audit_entry(item) for item in self._audit(f"audit#key#{key_id}")]

    def revoke_key(self, key_id: str) -> bool:
        with unavailable("The ledger could not revoke the key."):
            item = next(self._keys(m.KeyItem.key_id == key_id), None)
            if item is None:
                return False
            self.tables.update(self.tables.ledger, key(item.pk, item.sk), [m.KeyItem.revoked.set(True)])
        return True

    def _keys(self, condition: Any) -> Iterator[m.KeyItem]:
        return self.tables.scan(self.tables.ledger, m.KeyItem, condition)

    # ---- users ----------------------------------------------------------------------------------

    def put_user(self, user: UserProfile, audit: AuditEntry | None = None) -> None:
        """Save a profile; with ``audit``, its audit entry in the same transaction."""
        item = _user_item(user)
        with unavailable("The ledger could not store the user."):
            if audit is None:
                self.tables.put(self.tables.ledger, item)
                return
            audit_item = _audit_item(f"audit#user#{user.user_id}", audit)
            self.tables.transact([put_entry(self.tables.ledger, item), put_entry(self.tables.ledger, audit_item)])

    def user_history(self, user_id: str) -> list[AuditEntry]:
        """The user's audited changes (blocks, unblocks, tier moves), oldest first."""
        return [_audit_entry(item) for item in self._audit(f"audit#user#{user_id}")]

    # ---- tiers, features, switches, the global budget -------------------------------------------

    def put_tier(self, tier: Tier, actor: str, now: datetime) -> None:
        lim = tier.limits
        item = m.TierItem(
            m.SETTINGS_PK,
            f"tier#{tier.name}",
            hour_usd=lim.hour_usd,
            day_usd=lim.day_usd,
            month_usd=lim.month_usd,
            rpm=lim.rpm,
            updated_at=now.isoformat(),
            updated_by=actor,
        )
        with unavailable("The ledger could not store the tier."):
            self.tables.put(self.tables.ledger, item)

    def put_feature(self, feature: Feature, actor: str, now: datetime) -> None:
        with unavailable("The ledger could not store the feature."):
            self.tables.put(self.tables.ledger, _feature_item(feature, actor, now))

    def put_global(self, budget: GlobalBudget, actor: str, now: datetime) -> None:
        item = m.GlobalItem(
            m.SETTINGS_PK,
            "global",
            month_usd=budget.month_usd,
            shards=budget.shards,
            updated_at=now.isoformat(),
            updated_by=actor,
        )
        with unavailable("The ledger could not store the global budget."):
            self.tables.put(self.tables.ledger, item)

    def set_switch(self, feature: Feature, state: SwitchState, reason: str, actor: str, now: datetime) -> Feature:
        """Flip a feature's switch and write its audit entry in one transaction."""
        flipped = feature.switched(state, reason)
        audit = AuditEntry(now, actor, "switch", feature.state.value, state.value, reason)
        ledger = self.tables.ledger
        with unavailable("The ledger could not flip the switch."):
            self.tables.transact(
                [
                    put_entry(ledger, _feature_item(flipped, actor, now)),
                    put_entry(ledger, _audit_item(f"audit#feature#{feature.name}", audit)),
                ]
            )
        return flipped

    def switch_history(self, feature: str) -> list[dict[str, str]]:
        """The feature's switch flips, oldest first (its settings changes share the partition: see
        ``feature_history``)."""
        return _history_rows(item for item in self._audit(f"audit#feature#{feature}") if item.action == "switch")

    def feature_history(self, feature: str) -> list[AuditEntry]:
        """Every audited change of the feature (switch flips and settings), oldest first."""
        return [_audit_entry(item) for item in self._audit(f"audit#feature#{feature}")]

    def update_feature_settings(self, feature: Feature, audit: AuditEntry, *, create: bool) -> bool:
        """Store the feature's caps and cost-reducer settings with their audit entry, in one transaction.

        ``create``: the feature must not exist yet and is written whole. Otherwise it must exist and only those
        settings are set, so a switch flip or budget change made meanwhile stays. False when the condition
        failed (created or removed by someone else in the meantime): nothing was written.
        """
        ledger, now = self.tables.ledger, audit.at
        if create:
            write = put_entry(ledger, _feature_item(feature, audit.actor, now), m.FeatureItem.sk.does_not_exist())
        else:
            actions = _feature_settings_actions(feature, audit.actor, now)
            item_key = key(m.SETTINGS_PK, f"feature#{feature.name}")
            write = update_entry(ledger, item_key, actions, m.FeatureItem.sk.exists())
        return self._audited(write, put_entry(ledger, _audit_item(f"audit#feature#{feature.name}", audit)))

    # ---- prices ---------------------------------------------------------------------------------

    def put_prices(self, prices: Iterable[ModelPrice], actor: str, now: datetime, reason: str = "") -> None:
        """Store operators' prices, each replacing its model's override, with an audit entry per model."""
        by_model = {price.model: price for price in prices}
        old_specs = self._price_specs()
        pending = sorted(by_model)
        ledger = self.tables.ledger
        with unavailable("The ledger could not store the prices."):
            for start in range(0, len(pending), PRICES_PER_TRANSACTION):
                items = []
                for model in pending[start : start + PRICES_PER_TRANSACTION]:
                    spec = json.dumps(by_model[model].to_spec(), sort_keys=True)
                    item = m.PriceItem(
                        m.SETTINGS_PK, f"price#{model}", spec=spec, updated_at=now.isoformat(), updated_by=actor
                    )
                    items.append(put_entry(ledger, item))
                    items.append(
                        put_entry(ledger, _price_audit(model, actor, now, old_specs.get(model, ""), spec, reason))
                    )
                self.tables.transact(items)

    def delete_price(self, model: str, actor: str, now: datetime, reason: str = "") -> bool:
        """Remove a model's override (the packaged price applies again); False when it had none."""
        old_spec = self._price_specs(model).get(model)
        if old_spec is None:
            return False
        ledger = self.tables.ledger
        delete = delete_entry(ledger, key(m.SETTINGS_PK, f"price#{model}"), m.PriceItem.sk.exists())
        # False: removed by someone else in the meantime
        return self._audited(delete, put_entry(ledger, _price_audit(model, actor, now, old_spec, "", reason)))

    def price_history(self, model: str) -> list[dict[str, str]]:
        """Changes to a model's override, oldest first; ``from``/``to`` are specs as JSON ("" = none)."""
        return _history_rows(self._audit(f"audit#price#{model}"))

    def _price_specs(self, model: str = "") -> dict[str, str]:
        """Stored override specs by model: every one, or (with ``model``) that model's, if any."""
        prefix = f"price#{model}"
        sort_key = m.SettingsItem.sk == prefix if model else m.SettingsItem.sk.startswith(prefix)
        with unavailable(UNREACHABLE):
            items = list(
                self.tables.query(self.tables.ledger, m.SettingsItem, (m.SettingsItem.pk == m.SETTINGS_PK) & sort_key)
            )
        return {item.sk.removeprefix("price#"): item.spec for item in items if isinstance(item, m.PriceItem)}

    # ---- shared ---------------------------------------------------------------------------------

    def _audited(self, write: dict[str, Any], audit: dict[str, Any]) -> bool:
        """A conditional write and its audit entry in one transaction; False when the condition failed."""
        with unavailable("The ledger could not store the change."):
            try:
                self.tables.transact([write, audit])
            except ClientError as error:
                if condition_failed(error):
                    return False
                raise
        return True

    def _audit(self, pk: str) -> list[m.AuditItem]:
        with unavailable(UNREACHABLE):
            return list(self.tables.query(self.tables.ledger, m.AuditItem, m.AuditItem.pk == pk))


def _price_audit(model: str, actor: str, now: datetime, old_spec: str, new_spec: str, reason: str) -> m.AuditItem:
    action = "price" if new_spec else "price-reset"
    return _audit_item(f"audit#price#{model}", AuditEntry(now, actor, action, old_spec, new_spec, reason))


def _history_rows(items: Iterable[m.AuditItem]) -> list[dict[str, str]]:
    return [
        {"at": item.sk.split("#", 1)[0], "actor": item.actor, "from": item.old_value, "to": item.new_value}
        | {"reason": item.reason}
        for item in items
    ]


def _feature_item(feature: Feature, actor: str, now: datetime) -> m.FeatureItem:
    return m.FeatureItem(
        m.SETTINGS_PK,
        f"feature#{feature.name}",
        state=feature.state.value,
        reason=feature.reason,
        default_max_output_tokens=feature.default_max_output_tokens,
        max_output_tokens=feature.max_output_tokens,
        over_cap=feature.over_cap.value,
        max_input_tokens=feature.max_input_tokens,
        month_usd=feature.month_usd,
        shards=feature.shards,
        cache=feature.cache.value,
        cache_ttl_seconds=feature.cache_ttl_seconds,
        semantic_threshold=feature.semantic_threshold,
        truncate=feature.truncate,
        cache_generation=feature.cache_generation,
        updated_at=now.isoformat(),
        updated_by=actor,
    )


def _feature_settings_actions(feature: Feature, actor: str, now: datetime) -> list[Any]:
    """SET actions of a feature's caps and cost-reducer settings (not its switch, budget or shards)."""
    f = m.FeatureItem
    return [
        f.default_max_output_tokens.set(feature.default_max_output_tokens),
        f.max_output_tokens.set(feature.max_output_tokens),
        f.over_cap.set(feature.over_cap.value),
        f.max_input_tokens.set(feature.max_input_tokens),
        f.cache.set(feature.cache.value),
        f.cache_ttl_seconds.set(feature.cache_ttl_seconds),
        f.semantic_threshold.set(feature.semantic_threshold),
        f.truncate.set(feature.truncate),
        f.cache_generation.set(feature.cache_generation),
        f.updated_at.set(now.isoformat()),
        f.updated_by.set(actor),
    ]


def _user_item(user: UserProfile) -> m.UserItem:
    o = user.overrides
    return m.UserItem(
        f"user#{user.user_id}",
        "profile",
        tier=user.tier,
        hour_usd=o.hour_usd,
        day_usd=o.day_usd,
        month_usd=o.month_usd,
        rpm=o.rpm,
        blocked_until=user.blocked_until.isoformat() if user.blocked_until else None,
        blocked_reason=user.blocked_reason,
    )


def _audit_item(pk: str, entry: AuditEntry) -> m.AuditItem:
    # The sort key orders entries by time; the hash keeps two changes in the same microsecond apart.
    token = zlib.crc32(f"{entry.action}{entry.new_value}{entry.reason}".encode())
    return m.AuditItem(
        pk,
        f"{entry.at.isoformat()}#{token:08x}",
        actor=entry.actor,
        action=entry.action,
        old_value=entry.old_value,
        new_value=entry.new_value,
        reason=entry.reason,
    )


def _audit_entry(item: m.AuditItem) -> AuditEntry:
    return AuditEntry(
        at=datetime.fromisoformat(item.sk.split("#", 1)[0]),
        actor=item.actor,
        action=item.action,
        old_value=item.old_value,
        new_value=item.new_value,
        reason=item.reason,
    )
