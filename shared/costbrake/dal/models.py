"""PynamoDB models of the ledger and calls tables (template.yaml is the schema's source of truth).

Private to ``costbrake.dal``: everything outside it works with ``costbrake.records``. The models are the schema
and the (de)serialisation only; which table an item goes to is the ``Tables`` of the store that sends it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import NUMBER
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

SETTINGS_PK = "settings"


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB Number kept exact (PynamoDB's NumberAttribute round-trips through float)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return format(value, "f")

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class _LedgerMeta:
    table_name = "ledger"  # never used for requests


class _LedgerModel(Model):
    """Base of every item in the ledger table (pk/sk)."""

    TEMPLATE_TABLE = "LedgerTable"

    class Meta(_LedgerMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class SettingsItem(_LedgerModel):
    """Tiers, features and the global budget share one partition so a warm gateway loads them in one Query."""

    class Meta(_LedgerMeta):
        pass

    kind = DiscriminatorAttribute()
    updated_at = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)


class TierItem(SettingsItem, discriminator="tier"):
    hour_usd = DecimalAttribute(null=True)
    day_usd = DecimalAttribute(null=True)
    month_usd = DecimalAttribute(null=True)
    rpm = NumberAttribute(null=True)


class FeatureItem(SettingsItem, discriminator="feature"):
    state = UnicodeAttribute()
    reason = UnicodeAttribute(default="")
    default_max_output_tokens = NumberAttribute()
    max_output_tokens = NumberAttribute()
    over_cap = UnicodeAttribute()
    max_input_tokens = NumberAttribute()
    month_usd = DecimalAttribute(null=True)
    shards = NumberAttribute(default=1)
    # Cost reducers; absent on features stored before them (read as off / the defaults).
    cache = UnicodeAttribute(null=True)  # CacheMode
    cache_ttl_seconds = NumberAttribute(null=True)
    semantic_threshold = DecimalAttribute(null=True)
    cache_generation = NumberAttribute(null=True)
    truncate = BooleanAttribute(null=True)


class GlobalItem(SettingsItem, discriminator="global"):
    month_usd = DecimalAttribute()
    shards = NumberAttribute()


class PriceItem(SettingsItem, discriminator="price"):
    """An operator's price for one model (sk ``price#<model>``), replacing or adding to the packaged table."""

    spec = UnicodeAttribute()  # JSON of ModelPrice.to_spec(): rates as strings, exact


class KeyItem(_LedgerModel):
    class Meta(_LedgerMeta):
        pass

    key_id = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)
    service = BooleanAttribute(default=False)
    default_feature = UnicodeAttribute(null=True)
    month_usd = DecimalAttribute(null=True)
    revoked = BooleanAttribute(default=False)
    name = UnicodeAttribute(default="")
    created_at = UnicodeAttribute(null=True)
    # Absent on keys made before keys listed their features (they may charge only their default feature).
    features = ListAttribute(of=UnicodeAttribute, null=True)
    any_feature = BooleanAttribute(null=True)
    hour_usd = DecimalAttribute(null=True)
    day_usd = DecimalAttribute(null=True)


class UserItem(_LedgerModel):
    class Meta(_LedgerMeta):
        pass

    tier = UnicodeAttribute()
    hour_usd = DecimalAttribute(null=True)
    day_usd = DecimalAttribute(null=True)
    month_usd = DecimalAttribute(null=True)
    rpm = NumberAttribute(null=True)
    blocked_until = UnicodeAttribute(null=True)  # ISO-8601 UTC
    blocked_reason = UnicodeAttribute(default="")


class CounterItem(_LedgerModel):
    class Meta(_LedgerMeta):
        pass

    committed = DecimalAttribute(null=True)  # settled spend + open reservations
    spent = DecimalAttribute(null=True)  # settled spend
    calls = NumberAttribute(null=True)
    requests = NumberAttribute(null=True)  # request-rate counters only
    expires_at = NumberAttribute(null=True)  # TTL


RESERVATIONS_BY_EXPIRY = "reservations-by-expiry"


class ReservationsByExpiry(GlobalSecondaryIndex["UserSpendItem"]):
    class Meta:
        index_name = RESERVATIONS_BY_EXPIRY
        projection = KeysOnlyProjection()

    sweep_bucket = UnicodeAttribute(hash_key=True)
    release_after = NumberAttribute(range_key=True)


class UserSpendItem(_LedgerModel):
    """A user's windows, request rate and open reservations (``ctr#user#<id>`` / ``w``): its attributes are
    named by window and request id, so ``dal.user_item`` reads and writes it; the model is its index schema."""

    class Meta(_LedgerMeta):
        pass

    release_after = NumberAttribute(null=True)  # epoch seconds; not a TTL: expiry must release counters
    sweep_bucket = UnicodeAttribute(null=True)
    by_expiry = ReservationsByExpiry()
    expires_at = NumberAttribute(null=True)  # TTL


class AuditItem(_LedgerModel):
    class Meta(_LedgerMeta):
        pass

    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    old_value = UnicodeAttribute(default="")
    new_value = UnicodeAttribute()
    reason = UnicodeAttribute(default="")


class AlertItem(_LedgerModel):
    """Marks an alert as sent for its type/scope/window, so a repeat within the window is suppressed."""

    class Meta(_LedgerMeta):
        pass

    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()  # TTL: the marker only needs to outlive its window


class AlertLogItem(_LedgerModel):
    """One published alert, kept for reports: pk ``alertlog#<UTC day>``, sk ``<generated_at>#<alert_id>``."""

    class Meta(_LedgerMeta):
        pass

    message = UnicodeAttribute()  # the alert's JSON message, as published
    expires_at = NumberAttribute()  # TTL


# A day's calls are spread over this many index partitions; changing it needs a backfill of day_bucket.
CALL_DAY_BUCKETS = 8


class CallsByDay(GlobalSecondaryIndex["CallItem"]):
    """A period's calls for reports: one Query per (day, bucket), sorted by time."""

    class Meta:
        index_name = "calls-by-day"
        projection = AllProjection()

    day_bucket = UnicodeAttribute(hash_key=True)
    epoch = NumberAttribute(range_key=True)


class CallItem(Model):
    TEMPLATE_TABLE = "CallsTable"

    class Meta:
        table_name = "calls"  # never used for requests

    request_id = UnicodeAttribute(hash_key=True)
    timestamp = UnicodeAttribute()
    epoch = NumberAttribute()
    day_bucket = UnicodeAttribute(null=True)  # "<UTC day>#<bucket>": key of the calls-by-day index
    user_id = UnicodeAttribute()
    feature = UnicodeAttribute()
    key_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    model_requested = UnicodeAttribute()
    model = UnicodeAttribute()
    status = UnicodeAttribute()
    http_status = NumberAttribute()
    cost_usd = DecimalAttribute()
    reserved_usd = DecimalAttribute()
    input_tokens = NumberAttribute()
    output_tokens = NumberAttribute()
    cache_read_tokens = NumberAttribute()
    cache_write_tokens = NumberAttribute()
    reasoning_tokens = NumberAttribute()
    estimated_input_tokens = NumberAttribute()
    max_output_tokens = NumberAttribute()
    usage_estimated = BooleanAttribute()
    finish_reason = UnicodeAttribute(null=True)
    truncated = BooleanAttribute()
    stream = BooleanAttribute()
    downgraded_from = UnicodeAttribute(null=True)
    system_prompt_sha256 = UnicodeAttribute(null=True)
    latency_ms = NumberAttribute()
    error = UnicodeAttribute(null=True)
    # Cost reducers (issue 12): absent on records written before them (read as their defaults).
    cache_hit = BooleanAttribute(null=True)
    saved_usd = DecimalAttribute(null=True)
    truncated_messages = NumberAttribute(null=True)
    cache_status = UnicodeAttribute(null=True)
    cache_similarity = DecimalAttribute(null=True)
    web_search_requests = NumberAttribute(null=True)
    # The shared counters (feature, key, global) the call's reservation charged, as JSON [[pk, sk], ...], and what
    # they are owed (actual - reserved, or actual once released): the aggregator settles them from the stream.
    shared_counters = UnicodeAttribute(null=True)
    shared_delta = DecimalAttribute(null=True)
    expires_at = NumberAttribute()
    by_day = CallsByDay()


LEDGER_MODELS: tuple[type[Model], ...] = (
    UserSpendItem,
    SettingsItem,
    TierItem,
    FeatureItem,
    GlobalItem,
    PriceItem,
    KeyItem,
    UserItem,
    CounterItem,
    AuditItem,
    AlertItem,
    AlertLogItem,
)
ALL_MODELS: tuple[type[Model], ...] = (*LEDGER_MODELS, CallItem)


def model_for_item(raw: dict[str, Any]) -> type[Model]:
    """The model class of a raw ledger item, by its key layout."""
    pk = raw["pk"]["S"]
    if pk.startswith("ctr#user#") and raw["sk"]["S"] == "w":
        return UserSpendItem
    if pk.startswith("ctr#"):
        return CounterItem
    if pk.startswith("user#"):
        return UserItem
    if pk.startswith("key#"):
        return KeyItem
    if pk == SETTINGS_PK:
        return SettingsItem
    if pk.startswith("alert#"):
        return AlertItem
    if pk.startswith("alertlog#"):
        return AlertLogItem
    return AuditItem
