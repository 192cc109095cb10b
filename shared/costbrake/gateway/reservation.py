"""Reserving a call's worst case on every budget line at once, and telling a spent budget from a busy one.

A reservation is one conditional DynamoDB transaction (``SpendStore.reserve``). When it is refused, the refusing
counters are read once to tell why:
- spend already settled leaves no room for even the smallest call: the budget is spent (429
  ``insufficient_quota``, do not retry);
- room is free now but less than the worst case, and the feature clamps: the call is admitted with its output
  bound lowered to what the room pays for;
- only other calls' open reservations hold the room: wait briefly (they settle in seconds, mostly below their
  worst case), then answer a retryable 429 with a short ``Retry-After``.
Hot shards are rotated before any of this (a full shard sends the call to the next one).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costbrake.budgets import BudgetLine
from costbrake.clock import Clock
from costbrake.dal.spend import ChargesRefused, ReservationContended, ReservationInfo, SpendStore
from costbrake.errors import BudgetBusy, BudgetExceeded, LedgerUnavailable, RateLimited
from costbrake.records import Charge, RateCharge
from costbrake.scopes import Scope
from costbrake.windows import WindowSpan

MAX_SHARD_HOPS = 3  # a reservation kept busy on a hot shard moves to another shard at most this often
MAX_ATTEMPTS = 64  # reserve transactions of one call at most (refusals, waits, hops): then 503, nothing held
_WAIT_MIN_SECONDS = 0.02
_WAIT_MAX_SECONDS = 0.08


@dataclass(frozen=True)
class Admission:
    charges: list[Charge]
    amount: Decimal
    max_output_tokens: int  # per choice; below the request's when the budget's room clamped it


@dataclass(frozen=True)
class CallCost:
    """The call's worst case as a function of its output bound (per choice), and how far that bound may go."""

    of_output: Callable[[int], Decimal]
    max_output_tokens: int
    min_output_tokens: int  # the floor when clamping; clamping off: equal to max_output_tokens

    def largest_output_within(self, room: Decimal) -> int | None:
        """The largest output bound whose worst case fits ``room``, or None if not even the floor does."""
        if self.of_output(self.min_output_tokens) > room:
            return None
        base = self.of_output(0)
        per_token = self.of_output(1) - base
        tokens = self.max_output_tokens if per_token <= 0 else int((room - base) / per_token)
        tokens = max(self.min_output_tokens, min(self.max_output_tokens, tokens))
        while tokens > self.min_output_tokens and self.of_output(tokens) > room:
            tokens -= 1  # exact Decimal arithmetic; guards the division's rounding
        return tokens


def _charge_limit(line: BudgetLine) -> Decimal:
    return line.shard_limit if line.sharded else line.limit


class Reserver:
    def __init__(
        self,
        spend: SpendStore,
        clock: Clock,
        wait_seconds: float,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
    ) -> None:
        self._spend = spend
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    def reserve(
        self,
        info: ReservationInfo,
        lines: list[BudgetLine],
        cost: CallCost,
        rate: tuple[RateCharge, WindowSpan] | None,
        now: datetime,
    ) -> Admission:
        output = self._fit_whole_limits(lines, cost, now)
        shard_order = {line.scope.counter_key: _shard_order(line.shards) for line in lines if line.sharded}
        deadline = self._monotonic() + self._wait_seconds
        attempt = 0
        while True:
            if attempt >= MAX_ATTEMPTS:
                raise LedgerUnavailable(f"The reservation was refused {attempt} times; retry shortly.")
            amount = cost.of_output(output)
            shard = {scope: order[0] for scope, order in shard_order.items()}
            charges = [line.charge(amount, shard.get(line.scope.counter_key)) for line in lines]
            try:
                self._spend.reserve(info, charges, rate[0] if rate else None, attempt)
                return Admission(charges, amount, output)
            except ReservationContended as busy:
                attempt += 1
                self._hop_busy_shards(busy, shard_order, attempt, info.user_id)
            except ChargesRefused as refused:
                attempt += 1
                if rate is not None and rate[0].counter in refused.refused:
                    raise RateLimited(
                        f"Rate limit reached: {rate[0].limit} requests per minute for this user.",
                        retry_after=rate[1].seconds_left(self._clock.now()),
                        scope="user",
                        window="minute",
                    ) from None
                if _next_shard(refused, lines, shard_order):
                    continue
                output = self._after_refusal(refused, charges, lines, cost, output, deadline)

    def _fit_whole_limits(self, lines: list[BudgetLine], cost: CallCost, now: datetime) -> int:
        """The output bound that fits every line's whole limit (clamped), or BudgetExceeded."""
        output = cost.max_output_tokens
        for line in lines:
            limit = _charge_limit(line)
            if cost.of_output(output) <= limit:
                continue
            fitted = cost.largest_output_within(limit)
            if fitted is None:
                raise BudgetExceeded(
                    f"This call may cost up to ${cost.of_output(cost.min_output_tokens)}, more than the whole "
                    f"{line.label} budget of ${line.limit}.",
                    retry_after=line.span.seconds_left(now),
                    scope=line.scope.label,
                    window=line.span.window.value,
                )
            output = fitted
        return output

    def _hop_busy_shards(
        self, busy: ReservationContended, shard_order: dict[str, list[int]], attempt: int, user_id: str
    ) -> None:
        busy_shards = {ref.scope for ref in busy.contended if ref.shard is not None}
        if busy_shards and attempt <= MAX_SHARD_HOPS:
            for scope in busy_shards:  # a hot shard: carry on with another one
                order = shard_order[scope]
                order.append(order.pop(0))
            return
        if busy.contended and all(ref.scope == Scope.user(user_id).counter_key for ref in busy.contended):
            # Only this user's own counters stayed busy: the user sends more at once than they can take.
            raise RateLimited(
                f"Too many concurrent requests for user '{user_id}'; retry shortly.",
                retry_after=1,
                scope="user",
                window="concurrency",
                should_retry=True,
            ) from busy
        raise busy

    def _after_refusal(
        self,
        refused: ChargesRefused,
        charges: list[Charge],
        lines: list[BudgetLine],
        cost: CallCost,
        output: int,
        deadline: float,
    ) -> int:
        """The output bound to try next, after a wait if other calls hold the room; or raise the refusal."""
        refused_refs = set(refused.refused)
        states = self._spend.get_counters(refused_refs)
        now = self._clock.now()
        tightest: tuple[Decimal, BudgetLine] | None = None
        for charge, line in zip(charges, lines, strict=True):
            if charge.counter not in refused_refs:
                continue
            state = states.get(charge.counter)
            committed = state.committed if state else Decimal(0)
            spent = state.spent if state else Decimal(0)
            if cost.of_output(cost.min_output_tokens) > charge.limit - spent:
                raise BudgetExceeded(
                    f"Budget exceeded: {line.label} limit of ${line.limit} is spent "
                    f"(${spent} settled; this call may cost up to ${cost.of_output(cost.min_output_tokens)}).",
                    retry_after=line.span.seconds_left(now),
                    scope=line.scope.label,
                    window=line.span.window.value,
                )
            room = charge.limit - committed
            if tightest is None or room < tightest[0]:
                tightest = (room, line)
        if tightest is None:
            return output  # the refusing counters are not this call's lines: retry as is
        room_now, busy_line = tightest
        if cost.of_output(output) <= room_now:
            return output  # room came free between the refusal and the read
        fitted = cost.largest_output_within(room_now)
        if fitted is not None:
            return fitted
        if self._monotonic() < deadline:
            # Open reservations of calls in flight hold the room; they settle within seconds.
            self._sleep(random.uniform(_WAIT_MIN_SECONDS, _WAIT_MAX_SECONDS))
            return output
        raise BudgetBusy(
            f"Budget busy: the {busy_line.label} budget of ${busy_line.limit} is held by calls in flight; "
            "retry shortly.",
            retry_after=1,
            scope=busy_line.scope.label,
            window=busy_line.span.window.value,
        )


def _next_shard(refused: ChargesRefused, lines: list[BudgetLine], shard_order: dict[str, list[int]]) -> bool:
    """Drop a full shard from a refused sharded line whose other shards remain untried; True if one was dropped."""
    dropped = False
    for line in lines:
        order = shard_order.get(line.scope.counter_key)
        if order is None or len(order) < 2:
            continue
        if any(ref.scope == line.scope.counter_key and ref.window == line.span.key for ref in refused.refused):
            order.pop(0)  # this shard is full; try the next one before refusing
            dropped = True
    return dropped


def _shard_order(shards: int) -> list[int]:
    order = list(range(shards))
    random.shuffle(order)  # spread calls over the shards; a full shard sends the call to the next
    return order
