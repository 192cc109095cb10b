"""The ledger: atomic reserve/settle on spend counters, keys, users and operator settings."""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from costbrake.config import Settings
from costbrake.dal import models as m
from costbrake.errors import LedgerUnavailable
from costbrake.pricing import ModelPrice
from costbrake.records import (
    DEFAULT_CACHE_TTL_SECONDS,
    DEFAULT_SEMANTIC_THRESHOLD,
    ApiKey,
    AuditEntry,
    CacheMode,
    CallRecord,
    Charge,
    CounterRef,
    CounterState,
    Feature,
    GlobalBudget,
    Limits,
    OverCap,
    RateCharge,
    SettingsSnapshot,
    SwitchState,
    Tier,
    UserProfile,
)

# Cancellation reasons worth another try: another transaction held an item, or capacity ran short.
RETRIABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
RETRIABLE_ERRORS = frozenset(
    {
        "TransactionConflictException",
        "TransactionInProgressException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
SWEEP_BUCKETS = 10
CALL_RECORD_RETENTION_SECONDS = 400 * 86_400
PRICES_PER_TRANSACTION = 50  # each price is written with its audit entry; a transaction holds 100 items
ALERT_LOG_DAYS = 35  # reports list the last 14 days' alerts; a month and a bit for looking back


class LedgerContention(LedgerUnavailable):
    """Retries ran out while other transactions kept holding these items (by transaction index)."""

    def __init__(self, message: str, contended: set[int]) -> None:
        super().__init__(message)
        self.contended = contended


class ReservationContended(LedgerUnavailable):
    def __init__(self, message: str, contended: Sequence[CounterRef]) -> None:
        super().__init__(message)
        self.contended = list(contended)


class ChargesRefused(Exception):
    """The reserve transaction was cancelled because these counters would pass their limits."""

    def __init__(self, refused: Sequence[CounterRef]) -> None:
        super().__init__(", ".join(f"{ref.pk}/{ref.window}" for ref in refused))
        self.refused = list(refused)


@dataclass
class TransactionStats:
    transactions: int = 0
    conflicts: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ReservationInfo:
    request_id: str
    user_id: str
    feature: str
    model: str
    created_at: datetime
    release_after: int  # epoch seconds


@dataclass(frozen=True)
class OpenReservation:
    request_id: str
    release_after: int
    charges: list[tuple[str, str, Decimal]]  # (pk, sk, amount)


def bind_models(settings: Settings) -> Connection:
    """Point every model at the deployment's tables and make them share one botocore client."""
    tables = {model: settings.ledger_table for model in m.LEDGER_MODELS} | {m.CallItem: settings.calls_table}
    return bind(tables, settings)


def bind(tables: Mapping[type[Model], str], settings: Settings, shared: Connection | None = None) -> Connection:
    """Point ``tables``' models at their tables on one connection: ``shared``, else the first model's.

    PynamoDB configures models per class; sharing one connection keeps it to one botocore client (cold start).
    """
    for model, table_name in tables.items():
        model.Meta.table_name = table_name
        model.Meta.region = settings.aws_region
        model.Meta.host = settings.dynamodb_endpoint_url
        model._connection = None
        table_connection = model._get_connection()
        if shared is None:
            shared = table_connection.connection
            continue
        meta_table = table_connection.get_meta_table()
        if meta_table.table_name not in shared._tables:
            shared.add_meta_table(meta_table)
        table_connection.connection = shared
    assert shared is not None
    return shared


def _limits(item: Any) -> Limits:
    rpm = item.rpm
    return Limits(item.hour_usd, item.day_usd, item.month_usd, int(rpm) if rpm is not None else None)


def _feature(item: m.FeatureItem) -> Feature:
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
    """A stored cache mode; one this version does not know (written by a newer one) reads as off, not an error in
    the gateway's settings load."""
    try:
        return CacheMode(stored) if stored else CacheMode.OFF
    except ValueError:
        return CacheMode.OFF


def _api_key(item: m.KeyItem) -> ApiKey:
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


def _user(item: m.UserItem) -> UserProfile:
    return UserProfile(
        user_id=item.pk.removeprefix("user#"),
        tier=item.tier,
        overrides=_limits(item),
        blocked_until=datetime.fromisoformat(item.blocked_until) if item.blocked_until else None,
        blocked_reason=item.blocked_reason,
    )


def _counter(item: m.CounterItem) -> CounterState:
    return CounterState(
        committed=item.committed or Decimal(0),
        spent=item.spent or Decimal(0),
        calls=int(item.calls or item.requests or 0),
    )


def is_retriable(error_code: str | None, reasons: Iterable[str | None]) -> bool:
    """Worth another try: no response at all, a busy or throttled table, or a conflicting transaction."""
    return error_code is None or error_code in RETRIABLE_ERRORS or any(r in RETRIABLE_REASONS for r in reasons)


def backoff_seconds(settings: Settings, attempt: int) -> float:
    """Full-jitter exponential backoff before retry number ``attempt + 1``."""
    ceiling = min(settings.transaction_backoff_cap_seconds, settings.transaction_backoff_base_seconds * 2**attempt)
    return random.uniform(0, ceiling)


def error_code_of(cause: BaseException | None) -> str | None:
    """The DynamoDB error code behind a PynamoDB error; None for a network failure (no response at all)."""
    response = getattr(cause, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _counter_key(ref: CounterRef) -> tuple[str, str]:
    return ref.pk, ref.window


class Ledger:
    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self._settings = settings
        self._connection = bind_models(settings)
        self._sleep = sleep
        self._stats_lock = threading.Lock()
        self.stats = TransactionStats()

    @property
    def client(self) -> Any:
        """The botocore client every model shares (for instrumentation and fault injection in tests)."""
        return self._connection.client

    @property
    def connection(self) -> Connection:
        """The connection every model shares: other stores bind to it (``ResponseCache(settings, shared=...)``),
        so a cold start builds one botocore client."""
        return self._connection

    # ---- hot path -------------------------------------------------------------------------------

    def get_key(self, key_hash: str) -> ApiKey | None:
        try:
            return _api_key(m.KeyItem.get(f"key#{key_hash}", "key"))
        except m.KeyItem.DoesNotExist:
            return None
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The budget ledger could not be reached; the call was not made.") from error

    def load_settings(self) -> SettingsSnapshot:
        tiers: dict[str, Tier] = {}
        features: dict[str, Feature] = {}
        global_budget: GlobalBudget | None = None
        prices: dict[str, ModelPrice] = {}
        try:
            for item in m.SettingsItem.query(m.SETTINGS_PK):
                if isinstance(item, m.TierItem):
                    name = item.sk.removeprefix("tier#")
                    tiers[name] = Tier(name, _limits(item))
                elif isinstance(item, m.FeatureItem):
                    feature = _feature(item)
                    features[feature.name] = feature
                elif isinstance(item, m.GlobalItem):
                    global_budget = GlobalBudget(item.month_usd, int(item.shards))
                elif isinstance(item, m.PriceItem):
                    model = item.sk.removeprefix("price#")
                    prices[model] = ModelPrice.from_spec(model, json.loads(item.spec))
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The budget ledger could not be reached; the call was not made.") from error
        return SettingsSnapshot(tiers=tiers, features=features, global_budget=global_budget, prices=prices)

    def get_user_and_counters(
        self, user_id: str, refs: Iterable[CounterRef]
    ) -> tuple[UserProfile | None, dict[CounterRef, CounterState]]:
        """The user's profile and current counters in one BatchGetItem."""
        refs = list(refs)
        keys = [(f"user#{user_id}", "profile"), *(_counter_key(ref) for ref in refs)]
        items = self._batch_get(keys)
        profile_item = items.get(keys[0])
        profile = _user(profile_item) if isinstance(profile_item, m.UserItem) else None
        counters = {}
        for ref in refs:
            item = items.get(_counter_key(ref))
            counters[ref] = (
                _counter(item) if isinstance(item, m.CounterItem) else CounterState(Decimal(0), Decimal(0), 0)
            )
        return profile, counters

    def get_counters(self, refs: Iterable[CounterRef]) -> dict[CounterRef, CounterState]:
        return self.get_user_and_counters("\x00none", refs)[1]

    def reserve(self, info: ReservationInfo, charges: Sequence[Charge], rate: RateCharge | None, attempt: int) -> None:
        """Reserve every charge (and one request of ``rate``) atomically, or raise ChargesRefused.

        ``attempt`` distinguishes differently-sharded tries of the same request, so each gets its own
        client request token (a token reused with other parameters is an error in DynamoDB).
        """
        reservation = m.ReservationItem(
            f"res#{info.request_id}",
            "res",
            charges=json.dumps([[c.counter.pk, c.counter.window, format(c.amount, "f")] for c in charges]),
            release_after=info.release_after,
            sweep_bucket=f"b#{zlib.crc32(info.request_id.encode()) % SWEEP_BUCKETS}",
            user_id=info.user_id,
            feature=info.feature,
            model=info.model,
            created_at=info.created_at.isoformat(),
        )
        # TransactWrite orders items as puts then updates; keep the refs in that order to read cancellations.
        refs: list[CounterRef | None] = [None]

        def build(tx: TransactWrite) -> None:
            tx.save(reservation, condition=m.ReservationItem.pk.does_not_exist())
            for charge in charges:
                ceiling = charge.limit - charge.amount
                tx.update(
                    m.CounterItem(charge.counter.pk, charge.counter.window),
                    actions=[
                        m.CounterItem.committed.add(charge.amount),
                        m.CounterItem.expires_at.set(charge.expires_at),
                    ],
                    condition=m.CounterItem.committed.does_not_exist() | (m.CounterItem.committed <= ceiling),
                )
                refs.append(charge.counter)
            if rate is not None:
                _count_request(tx, rate)
                refs.append(rate.counter)

        try:
            failed = self._transact(build, token=f"{info.request_id}r{attempt}")
        except LedgerContention as busy:
            contended = [ref for index, ref in enumerate(refs) if index in busy.contended and ref is not None]
            raise ReservationContended(busy.message, contended) from busy
        if 0 in failed:
            # The reservation is there already: an earlier attempt whose answer was lost went through.
            return
        if failed:
            refused = [ref for index, ref in enumerate(refs) if index in failed and ref is not None]
            raise ChargesRefused(refused)

    def count_request(self, request_id: str, rate: RateCharge) -> bool:
        """Count one request of ``rate`` alone (a call the provider does not bill); False when the limit is
        reached. The client request token makes a retried attempt count once."""
        return not self._transact(lambda tx: _count_request(tx, rate), token=f"{request_id}q")

    def record_free_call(self, record: CallRecord, rate: RateCharge | None) -> bool:
        """Write the record of a call nobody is charged for (a response-cache hit: nothing reserved, nothing
        spent) and count it as one request of ``rate``, in one transaction; False when the rate limit is
        reached (nothing written). The client request token makes a retried attempt count once."""
        call = _call_item(record)

        def build(tx: TransactWrite) -> None:
            if rate is not None:
                _count_request(tx, rate)
            tx.save(call, condition=m.CallItem.request_id.does_not_exist())

        # TransactWrite sends puts before updates: the record is item 0, the rate counter item 1.
        refused = self._transact(build, token=f"{record.request_id}f")
        return not refused or refused == {0}  # only the record exists: an earlier attempt went through

    def settle(self, request_id: str, charges: Sequence[Charge], actual: Decimal, record: CallRecord) -> None:
        """Turn the reservation into the actual cost and write the call record, in one transaction.

        ``actual`` of zero is a refund (provider error). If the sweeper already released the reservation,
        the full actual cost is charged instead; if the record exists, the call was settled already.
        """
        call = _call_item(record)

        def build(tx: TransactWrite, *, reservation_open: bool) -> None:
            if reservation_open:
                tx.delete(m.ReservationItem(f"res#{request_id}", "res"), condition=m.ReservationItem.pk.exists())
            tx.save(call, condition=m.CallItem.request_id.does_not_exist())
            for charge in charges:
                delta = actual - charge.amount if reservation_open else actual
                tx.update(
                    m.CounterItem(charge.counter.pk, charge.counter.window),
                    actions=[
                        m.CounterItem.committed.add(delta),
                        m.CounterItem.spent.add(actual),
                        m.CounterItem.calls.add(1),
                    ],
                )

        attempts = self._settings.transaction_attempts * self._settings.settle_attempt_factor
        failed = self._transact(lambda tx: build(tx, reservation_open=True), token=f"{request_id}s", attempts=attempts)
        if not failed:
            return
        if 1 in failed:  # the call record exists: an earlier attempt of this settle went through
            return
        # The reservation is gone (released by the sweeper): charge the actual cost in full.
        late_failed = self._transact(
            lambda tx: build(tx, reservation_open=False), token=f"{request_id}l", attempts=attempts
        )
        if late_failed and 0 not in late_failed:
            raise LedgerUnavailable(f"settle of {request_id} was refused: {sorted(late_failed)}")

    def _transact(self, build: Callable[[TransactWrite], None], token: str, attempts: int | None = None) -> set[int]:
        """Run a transaction with bounded, jittered retries; return the indexes refused by a condition."""
        settings = self._settings
        attempts = attempts or settings.transaction_attempts
        for attempt in range(attempts):
            with self._stats_lock:
                self.stats.transactions += 1
            try:
                with TransactWrite(connection=self._connection, client_request_token=token) as tx:
                    build(tx)
                return set()
            except TransactWriteError as error:
                reasons = [reason.code if reason else None for reason in error.cancellation_reasons]
                refused = {index for index, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
                if refused:
                    return refused
                error_code = error_code_of(error.cause)
                # No response at all (timeout, reset) is retried too: the same client request token makes a
                # transaction that did go through apply only once.
                if not is_retriable(error_code, reasons):
                    raise LedgerUnavailable(
                        f"The budget ledger refused the transaction ({error_code}: {reasons})."
                    ) from error
                if attempt + 1 == attempts:
                    contended = {index for index, code in enumerate(reasons) if code in RETRIABLE_REASONS}
                    raise LedgerContention(
                        f"The budget ledger stayed busy after {attempts} attempts ({reasons}).", contended
                    ) from error
                with self._stats_lock:
                    if "TransactionConflict" in reasons:
                        self.stats.conflicts += 1
                    self.stats.retries += 1
                self._sleep(backoff_seconds(settings, attempt))
            except (PynamoDBException, BotoCoreError, ClientError) as error:
                raise LedgerUnavailable("The budget ledger could not be reached.") from error
        raise AssertionError("unreachable")

    def _batch_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Model]:
        table = self._settings.ledger_table
        pending = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in dict.fromkeys(keys)]
        found: dict[tuple[str, str], Model] = {}
        try:
            while pending:
                batch, pending = pending[:100], pending[100:]
                response = self._connection.dispatch("BatchGetItem", {"RequestItems": {table: {"Keys": batch}}})
                for raw in response.get("Responses", {}).get(table, []):
                    model = m.model_for_item(raw)
                    found[(raw["pk"]["S"], raw["sk"]["S"])] = model.from_raw_data(raw)
                unprocessed = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                pending.extend(unprocessed)
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The budget ledger could not be reached; the call was not made.") from error
        return found

    # ---- operators (CLI) ------------------------------------------------------------------------

    def put_key(self, key_hash: str, key: ApiKey, created_at: datetime) -> None:
        m.KeyItem(
            f"key#{key_hash}",
            "key",
            key_id=key.key_id,
            user_id=key.user_id,
            service=key.service,
            default_feature=key.default_feature,
            month_usd=key.month_usd,
            revoked=key.revoked,
            name=key.name,
            created_at=created_at.isoformat(),
            features=list(key.features) or None,
            any_feature=key.any_feature or None,
            hour_usd=key.hour_usd,
            day_usd=key.day_usd,
        ).save(condition=m.KeyItem.pk.does_not_exist())

    def list_keys(self) -> list[tuple[ApiKey, str]]:
        """Every key with its creation time (a scan: operators only)."""
        keys = []
        for item in m.KeyItem.scan(m.KeyItem.pk.startswith("key#")):
            keys.append((_api_key(item), item.created_at or ""))
        return keys

    def find_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key with this id (as `keys list` shows it) and its creation time (a scan: operators only)."""
        for item in m.KeyItem.scan(m.KeyItem.key_id == key_id):
            return _api_key(item), item.created_at or ""
        return None

    def set_key_limits(self, key_id: str, limits: Limits, audit: AuditEntry) -> ApiKey | None:
        """Set the key's hour/day/month limits that ``limits`` sets (the others stay), audited in one
        transaction; None for an unknown key id."""
        item = next(iter(m.KeyItem.scan(m.KeyItem.key_id == key_id)), None)
        if item is None:
            return None
        actions = [
            attribute.set(value)
            for attribute, value in (
                (m.KeyItem.hour_usd, limits.hour_usd),
                (m.KeyItem.day_usd, limits.day_usd),
                (m.KeyItem.month_usd, limits.month_usd),
            )
            if value is not None
        ]
        with TransactWrite(connection=self._connection) as tx:
            tx.update(item, actions=actions, condition=m.KeyItem.pk.exists())
            tx.save(_audit_item(f"audit#key#{key_id}", audit))
        found = self.find_key(key_id)
        return found[0] if found else None

    def key_history(self, key_id: str) -> list[AuditEntry]:
        """The key's audited changes (its budgets), oldest first."""
        return [_audit_entry(item) for item in m.AuditItem.query(f"audit#key#{key_id}")]

    def revoke_key(self, key_id: str) -> bool:
        for item in m.KeyItem.scan(m.KeyItem.key_id == key_id):
            item.update(actions=[m.KeyItem.revoked.set(True)])
            return True
        return False

    def get_user(self, user_id: str) -> UserProfile | None:
        try:
            return _user(m.UserItem.get(f"user#{user_id}", "profile"))
        except m.UserItem.DoesNotExist:
            return None

    def put_user(self, user: UserProfile, audit: AuditEntry | None = None) -> None:
        """Save a profile; with ``audit``, its audit entry in the same transaction."""
        item = _user_item(user)
        if audit is None:
            item.save()
            return
        with TransactWrite(connection=self._connection) as tx:
            tx.save(item)
            tx.save(_audit_item(f"audit#user#{user.user_id}", audit))

    def user_history(self, user_id: str) -> list[AuditEntry]:
        """The user's audited changes (blocks, unblocks, tier moves), oldest first."""
        return [_audit_entry(item) for item in m.AuditItem.query(f"audit#user#{user_id}")]

    def put_tier(self, tier: Tier, actor: str, now: datetime) -> None:
        lim = tier.limits
        m.TierItem(
            m.SETTINGS_PK,
            f"tier#{tier.name}",
            hour_usd=lim.hour_usd,
            day_usd=lim.day_usd,
            month_usd=lim.month_usd,
            rpm=lim.rpm,
            updated_at=now.isoformat(),
            updated_by=actor,
        ).save()

    def put_feature(self, feature: Feature, actor: str, now: datetime) -> None:
        _feature_item(feature, actor, now).save()

    def put_global(self, budget: GlobalBudget, actor: str, now: datetime) -> None:
        m.GlobalItem(
            m.SETTINGS_PK,
            "global",
            month_usd=budget.month_usd,
            shards=budget.shards,
            updated_at=now.isoformat(),
            updated_by=actor,
        ).save()

    def set_switch(self, feature: Feature, state: SwitchState, reason: str, actor: str, now: datetime) -> Feature:
        """Flip a feature's switch and write its audit entry in one transaction."""
        flipped = feature.switched(state, reason)
        audit = AuditEntry(now, actor, "switch", feature.state.value, state.value, reason)
        with TransactWrite(connection=self._connection) as tx:
            tx.save(_feature_item(flipped, actor, now))
            tx.save(_audit_item(f"audit#feature#{feature.name}", audit))
        return flipped

    def switch_history(self, feature: str) -> list[dict[str, str]]:
        """The feature's switch flips, oldest first (its settings changes share the partition: see
        ``feature_history``)."""
        return _history_rows(item for item in m.AuditItem.query(f"audit#feature#{feature}") if item.action == "switch")

    def feature_history(self, feature: str) -> list[AuditEntry]:
        """Every audited change of the feature (switch flips and settings), oldest first."""
        try:
            return [_audit_entry(item) for item in m.AuditItem.query(f"audit#feature#{feature}")]
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not be reached.") from error

    def update_feature_settings(self, feature: Feature, audit: AuditEntry, *, create: bool) -> bool:
        """Store the feature's caps and cost-reducer settings with their audit entry, in one transaction.

        ``create``: the feature must not exist yet and is written whole. Otherwise it must exist and only those
        settings are set, so a switch flip or budget change made meanwhile stays. False when the condition
        failed (created or removed by someone else in the meantime): nothing was written.
        """
        now = audit.at
        try:
            with TransactWrite(connection=self._connection) as tx:
                if create:
                    tx.save(_feature_item(feature, audit.actor, now), condition=m.FeatureItem.sk.does_not_exist())
                else:
                    item = m.FeatureItem(m.SETTINGS_PK, f"feature#{feature.name}")
                    tx.update(
                        item,
                        actions=_feature_settings_actions(feature, audit.actor, now),
                        condition=m.FeatureItem.sk.exists(),
                    )
                tx.save(_audit_item(f"audit#feature#{feature.name}", audit))
        except TransactWriteError as error:
            if any(r and r.code == "ConditionalCheckFailed" for r in error.cancellation_reasons):
                return False
            raise LedgerUnavailable("The ledger could not store the feature's settings.") from error
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not store the feature's settings.") from error
        return True

    def put_prices(self, prices: Iterable[ModelPrice], actor: str, now: datetime, reason: str = "") -> None:
        """Store operators' prices, each replacing its model's override, with an audit entry per model."""
        by_model = {price.model: price for price in prices}
        old_specs = self._price_specs()
        pending = sorted(by_model)
        try:
            for start in range(0, len(pending), PRICES_PER_TRANSACTION):
                with TransactWrite(connection=self._connection) as tx:
                    for model in pending[start : start + PRICES_PER_TRANSACTION]:
                        spec = json.dumps(by_model[model].to_spec(), sort_keys=True)
                        tx.save(
                            m.PriceItem(
                                m.SETTINGS_PK, f"price#{model}", spec=spec, updated_at=now.isoformat(), updated_by=actor
                            )
                        )
                        tx.save(_price_audit(model, actor, now, old_specs.get(model, ""), spec, reason))
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not store the prices.") from error

    def delete_price(self, model: str, actor: str, now: datetime, reason: str = "") -> bool:
        """Remove a model's override (the packaged price applies again); False when it had none."""
        old_spec = self._price_specs(model).get(model)
        if old_spec is None:
            return False
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.delete(m.PriceItem(m.SETTINGS_PK, f"price#{model}"), condition=m.PriceItem.sk.exists())
                tx.save(_price_audit(model, actor, now, old_spec, "", reason))
        except TransactWriteError as error:
            if any(r and r.code == "ConditionalCheckFailed" for r in error.cancellation_reasons):
                return False  # removed by someone else in the meantime
            raise LedgerUnavailable("The ledger could not remove the price.") from error
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not remove the price.") from error
        return True

    def price_history(self, model: str) -> list[dict[str, str]]:
        """Changes to a model's override, oldest first; ``from``/``to`` are specs as JSON ("" = none)."""
        return _history_rows(m.AuditItem.query(f"audit#price#{model}"))

    def _price_specs(self, model: str = "") -> dict[str, str]:
        """Stored override specs by model: every one, or (with ``model``) that model's, if any."""
        prefix = f"price#{model}"
        condition = m.SettingsItem.sk == prefix if model else m.SettingsItem.sk.startswith(prefix)
        try:
            return {
                item.sk.removeprefix("price#"): item.spec
                for item in m.SettingsItem.query(m.SETTINGS_PK, condition)
                if isinstance(item, m.PriceItem)
            }
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not be reached.") from error

    # ---- pipeline -------------------------------------------------------------------------------

    def first_time(self, key: str, expires_at: int, now: datetime) -> bool:
        """True once per key (until ``expires_at``): alert deduplication by a conditional put."""
        try:
            m.AlertItem(f"alert#{key}", "alert", created_at=now.isoformat(), expires_at=expires_at).save(
                condition=m.AlertItem.pk.does_not_exist()
            )
            return True
        except PutError as error:
            if error_code_of(error.cause) == "ConditionalCheckFailedException":
                return False
            raise LedgerUnavailable("The ledger could not record the alert.") from error

    def forget(self, key: str) -> None:
        """Undo ``first_time`` (an alert that could not be sent must be sent by the retry)."""
        try:
            m.AlertItem(f"alert#{key}", "alert").delete()
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not forget the alert.") from error

    def log_alert(self, message: Mapping[str, Any], generated_at: datetime) -> None:
        """Keep a published alert for ALERT_LOG_DAYS, for reports ("anomalies of the last 14 days")."""
        day = generated_at.astimezone(UTC)
        item = m.AlertLogItem(
            f"alertlog#{day.date().isoformat()}",
            f"{day.isoformat()}#{message.get('alert_id', '')}",
            message=json.dumps(message, sort_keys=True),
            expires_at=int(day.timestamp()) + ALERT_LOG_DAYS * 86_400,
        )
        try:
            item.save()
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not log the alert.") from error

    def alerts_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Logged alert messages generated in [start, end), newest first (one Query per day)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        found: list[dict[str, Any]] = []
        day = start.date()
        try:
            while day <= end.date():
                condition = m.AlertLogItem.sk.between(start.isoformat(), end.isoformat())
                found += [json.loads(item.message) for item in m.AlertLogItem.query(f"alertlog#{day}", condition)]
                day += timedelta(days=1)
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The ledger could not be reached.") from error
        in_range = [a for a in found if start <= datetime.fromisoformat(a["generated_at"]) < end]
        return sorted(in_range, key=lambda a: a["generated_at"], reverse=True)

    # ---- inspection (CLI, tests, sweeper) -------------------------------------------------------

    def open_reservations(self) -> list[OpenReservation]:
        return [_open_reservation(item) for item in m.ReservationItem.scan(m.ReservationItem.pk.startswith("res#"))]

    def expired_reservations(self, now_epoch: int, limit: int = 500) -> list[OpenReservation]:
        """Reservations whose release time has passed (their Lambda can no longer be running)."""
        keys: list[tuple[str, str]] = []
        for bucket in range(SWEEP_BUCKETS):
            query = m.ReservationItem.by_expiry.query(
                f"b#{bucket}", m.ReservationItem.release_after <= now_epoch, limit=limit
            )
            keys.extend((item.pk, item.sk) for item in query)
        found = self._batch_get(keys[:limit])
        return [_open_reservation(item) for item in found.values() if isinstance(item, m.ReservationItem)]

    def release(self, reservation: OpenReservation) -> bool:
        """Give an expired reservation's amounts back to its counters and delete it, atomically.

        False when the call settled in the meantime (the reservation is gone): nothing is changed then.
        """

        def build(tx: TransactWrite) -> None:
            tx.delete(
                m.ReservationItem(f"res#{reservation.request_id}", "res"), condition=m.ReservationItem.pk.exists()
            )
            for pk, sk, amount in reservation.charges:
                tx.update(m.CounterItem(pk, sk), actions=[m.CounterItem.committed.add(-amount)])

        return not self._transact(build, token=f"{reservation.request_id}x")

    def get_call(self, request_id: str) -> CallRecord | None:
        try:
            return _call_record(m.CallItem.get(request_id))
        except m.CallItem.DoesNotExist:
            return None

    def calls_between(self, start: datetime, end: datetime) -> Iterator[CallRecord]:
        """Every call record with ``start <= timestamp < end``, by day and bucket."""
        first, last = int(start.timestamp()), int(end.timestamp())  # whole seconds; exact bounds below
        day = start.astimezone(UTC).date()
        try:
            while day <= end.astimezone(UTC).date():
                for bucket in range(m.CALL_DAY_BUCKETS):
                    condition = m.CallItem.epoch.between(first, last)
                    for item in m.CallItem.by_day.query(f"{day.isoformat()}#{bucket}", condition):
                        record = _call_record(item)
                        if start <= record.timestamp < end:
                            yield record
                day += timedelta(days=1)
        except (PynamoDBException, BotoCoreError, ClientError) as error:
            raise LedgerUnavailable("The calls table could not be reached.") from error

    def scan_calls(self) -> list[CallRecord]:
        return [_call_record(item) for item in m.CallItem.scan()]


def _count_request(tx: TransactWrite, rate: RateCharge) -> None:
    tx.update(
        m.CounterItem(rate.counter.pk, rate.counter.window),
        actions=[m.CounterItem.requests.add(1), m.CounterItem.expires_at.set(rate.expires_at)],
        # A limit of 0 refuses even the minute's first request (whose counter does not exist yet).
        condition=(m.CounterItem.requests < rate.limit)
        if rate.limit < 1
        else m.CounterItem.requests.does_not_exist() | (m.CounterItem.requests < rate.limit),
    )


def _open_reservation(item: m.ReservationItem) -> OpenReservation:
    return OpenReservation(
        request_id=item.pk.removeprefix("res#"),
        release_after=int(item.release_after),
        charges=[(pk, sk, Decimal(amount)) for pk, sk, amount in json.loads(item.charges)],
    )


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


_CALL_FIELDS = [name for name in CallRecord.__dataclass_fields__ if name not in ("request_id", "timestamp")]


def call_day_bucket(day: date, request_id: str) -> str:
    """The calls-by-day key of a call: its UTC day and a bucket that follows from the request id."""
    bucket = zlib.crc32(request_id.encode()) % m.CALL_DAY_BUCKETS
    return f"{day.isoformat()}#{bucket}"


def _call_item(record: CallRecord) -> m.CallItem:
    epoch = int(record.timestamp.timestamp())
    return m.CallItem(
        record.request_id,
        timestamp=record.timestamp.isoformat(),
        epoch=epoch,
        day_bucket=call_day_bucket(record.timestamp.astimezone(UTC).date(), record.request_id),
        expires_at=epoch + CALL_RECORD_RETENTION_SECONDS,
        **{name: getattr(record, name) for name in _CALL_FIELDS},
    )


# Call record fields added after records were first written: an old item reads as their default.
_CALL_DEFAULTS = {"cache_hit": False, "saved_usd": Decimal(0), "truncated_messages": 0}


def _call_record(item: m.CallItem) -> CallRecord:
    values = {name: getattr(item, name) for name in _CALL_FIELDS}
    for name, default in _CALL_DEFAULTS.items():
        if values[name] is None:
            values[name] = default
    values["truncated_messages"] = int(values["truncated_messages"])
    return CallRecord(request_id=item.request_id, timestamp=datetime.fromisoformat(item.timestamp), **values)


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
