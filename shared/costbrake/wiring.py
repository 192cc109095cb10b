"""The composition root: the one place that builds the stores and the gateway from validated settings.

Lambdas, the local stack, the replay, the bench and the tests all build them here, so that wiring is written
once and no module holds a store or a gateway of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from costbrake.clock import Clock, SystemClock
from costbrake.config import Settings, load_settings
from costbrake.dal.admin import AdminStore
from costbrake.dal.alert_log import AlertLog
from costbrake.dal.calls import CallStore
from costbrake.dal.reservations import ReservationStore
from costbrake.dal.rollups import RollupStore
from costbrake.dal.spend import SpendStore
from costbrake.dal.tables import Tables

if TYPE_CHECKING:  # the pipeline Lambdas never load the gateway
    from costbrake.gateway.service import Gateway


@dataclass(frozen=True)
class Stores:
    """One deployment's stores, all on one botocore client (one connection pool, one cold-start client)."""

    tables: Tables
    spend: SpendStore
    admin: AdminStore
    alerts: AlertLog
    calls: CallStore
    reservations: ReservationStore
    rollups: RollupStore


def stores_from_settings(
    settings: Settings | None = None, sleep: Callable[[float], None] = time.sleep, tables: Tables | None = None
) -> Stores:
    settings = settings or load_settings()
    tables = tables or Tables.connect(settings)
    return Stores(
        tables=tables,
        spend=SpendStore.of(tables, settings, sleep),
        admin=AdminStore(tables),
        alerts=AlertLog(tables),
        calls=CallStore(tables),
        reservations=ReservationStore.of(tables, settings, sleep),
        rollups=RollupStore.of(tables, settings, sleep),
    )


def gateway_from_settings(
    settings: Settings | None = None, clock: Clock | None = None, stores: Stores | None = None
) -> Gateway:
    from costbrake.dal.cache import ResponseCache
    from costbrake.gateway.provider_keys import ProviderKeys
    from costbrake.gateway.service import Gateway
    from costbrake.pricing import PriceTable

    settings = settings or load_settings()
    stores = stores or stores_from_settings(settings)
    # The response cache (issue 12) shares the ledger's client: one client, one connection pool.
    cache = ResponseCache(stores.tables, settings.cache_semantic_entries) if settings.cache_table else None
    return Gateway(
        settings,
        stores.spend,
        stores.calls,
        PriceTable.default(),
        clock or SystemClock(),
        ProviderKeys(settings),
        response_cache=cache,
    )
