"""The composition root: the one place that builds the gateway from validated settings.

Lambdas, the local stack, the replay and the bench all build their gateway here, so that wiring is written
once and no module holds a gateway of its own.
"""

from __future__ import annotations

from costbrake.clock import Clock, SystemClock
from costbrake.config import Settings, load_settings
from costbrake.dal import Ledger
from costbrake.dal.cache import ResponseCache
from costbrake.gateway.provider_keys import ProviderKeys
from costbrake.gateway.service import Gateway
from costbrake.pricing import PriceTable


def gateway_from_settings(
    settings: Settings | None = None, clock: Clock | None = None, ledger: Ledger | None = None
) -> Gateway:
    settings = settings or load_settings()
    ledger = ledger or Ledger(settings)
    # The response cache (issue 12) shares the ledger's connection: one client, one connection pool.
    cache = ResponseCache(settings, shared=ledger.connection) if settings.cache_table else None
    return Gateway(
        settings,
        ledger,
        PriceTable.default(),
        clock or SystemClock(),
        ProviderKeys(settings),
        response_cache=cache,
    )
