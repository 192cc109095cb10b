"""The one retry policy of ledger transactions (the spend and sweeper transactions, the rollups' writes)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from costbrake.config import Settings
from costbrake.dal.tables import Tables, cancellation_codes, error_code
from costbrake.errors import LedgerUnavailable

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


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    base_seconds: float
    cap_seconds: float
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def of(cls, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
        return cls(
            settings.transaction_attempts,
            settings.transaction_backoff_base_seconds,
            settings.transaction_backoff_cap_seconds,
            sleep,
        )

    def retriable(self, code: str | None, reasons: Iterable[str | None]) -> bool:
        """No response at all, a busy or throttled table, or a conflicting transaction."""
        return code is None or code in RETRIABLE_ERRORS or any(r in RETRIABLE_REASONS for r in reasons)

    def backoff(self, attempt: int) -> None:
        """Full-jitter exponential backoff before retry number ``attempt + 1``."""
        self.sleep(random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt)))


def failure(error: BotoCoreError | ClientError) -> tuple[str | None, list[str | None]]:
    """A failed write's error code (None: no response) and its per-item cancellation reasons."""
    if isinstance(error, ClientError):
        return error_code(error), cancellation_codes(error)
    return None, []


def parameter_token(request_id: str, kind: str, items: Sequence[Mapping[str, Any]]) -> str:
    """A client request token that follows from the transaction's items: a retry of the same transaction applies
    once, and another one (a later sweep that saw the item changed) is never refused as a token reused with
    other parameters. At most 36 characters, as DynamoDB requires."""
    digest = hashlib.blake2b(json.dumps(items, sort_keys=True).encode(), digest_size=6).hexdigest()
    return f"{request_id[:23]}{kind}{digest}"


def refused_items(error: BotoCoreError | ClientError, reasons: list[str | None]) -> dict[int, dict[str, Any] | None]:
    details = getattr(error, "response", {}).get("CancellationReasons") or []
    return {
        index: (details[index].get("Item") if index < len(details) else None)
        for index, reason in enumerate(reasons)
        if reason == "ConditionalCheckFailed"
    }


@dataclass
class TransactionStats:
    transactions: int = 0
    conflicts: int = 0
    retries: int = 0


class LedgerContention(LedgerUnavailable):
    """Retries ran out while other transactions kept holding these items (by transaction index)."""

    def __init__(self, message: str, contended: set[int]) -> None:
        super().__init__(message)
        self.contended = contended


class Transactor:
    """Sends conditional transactions with a client request token, retrying conflicts under the policy."""

    def __init__(self, tables: Tables, policy: RetryPolicy) -> None:
        self._tables = tables
        self.policy = policy
        self.stats = TransactionStats()
        self._lock = threading.Lock()

    def run(self, items: Sequence[Mapping[str, Any]], token: str, attempts: int | None = None) -> set[int]:
        """The indexes of the items refused by their condition (empty: applied)."""
        return set(self.run_detailed(items, token, attempts))

    def run_detailed(
        self, items: Sequence[Mapping[str, Any]], token: str, attempts: int | None = None
    ) -> dict[int, dict[str, Any] | None]:
        """The items refused by their condition, by index, with the old image each one asked for (empty:
        applied)."""
        policy = self.policy
        attempts = attempts or policy.attempts
        for attempt in range(attempts):
            with self._lock:
                self.stats.transactions += 1
            try:
                self._tables.client.transact_write_items(TransactItems=items, ClientRequestToken=token)
                return {}
            except (BotoCoreError, ClientError) as error:
                code, reasons = failure(error)
                if "ConditionalCheckFailed" in reasons:
                    return refused_items(error, reasons)
                # No response at all (timeout, reset) is retried too: the same client request token makes a
                # transaction that did go through apply only once.
                if not policy.retriable(code, reasons):
                    raise LedgerUnavailable(
                        f"The budget ledger refused the transaction ({code}: {reasons})."
                    ) from error
                if attempt + 1 == attempts:
                    contended = {index for index, reason in enumerate(reasons) if reason in RETRIABLE_REASONS}
                    raise LedgerContention(
                        f"The budget ledger stayed busy after {attempts} attempts ({reasons}).", contended
                    ) from error
                with self._lock:
                    self.stats.conflicts += "TransactionConflict" in reasons
                    self.stats.retries += 1
                policy.backoff(attempt)
        raise AssertionError("unreachable")
