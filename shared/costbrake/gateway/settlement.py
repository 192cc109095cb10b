"""Settling an admitted call exactly once: its actual cost and its call record, in one ledger transaction.

Which amount is charged follows guarantee 5: the provider's usage when it reported it; nothing for a failure
the provider does not bill (no connection, its 4xx/5xx); the reserved worst case for a failure after the
request was sent without usage; and for a stream cut short (client gone, upstream broken) what it carried:
the input bound and at most one token per byte of streamed output, never more than the reservation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from aws_lambda_powertools import Logger

from costbrake.dal.spend import SpendStore
from costbrake.errors import LedgerUnavailable, ProviderFailed
from costbrake.gateway import telemetry
from costbrake.gateway.bounds import hides_reasoning
from costbrake.gateway.calls import AdmittedCall, Reservation
from costbrake.pricing import ModelPrice, cost_of, worst_case_cost
from costbrake.providers.base import ProviderAdapter, UpstreamResult
from costbrake.records import CallRecord
from costbrake.usage import Usage

logger = Logger(child=True)

# Chat completions, Messages, Responses (``incomplete_details.reason``).
TRUNCATION_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})
CLIENT_DISCONNECTED = "client_disconnected"  # costbrake's finish reason for a stream its client left


class Settler:
    def __init__(self, spend: SpendStore, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._spend = spend
        self._monotonic = monotonic

    def answered(self, call: AdmittedCall, result: UpstreamResult) -> dict[str, str]:
        """A complete answer: its usage priced (the worst case, flagged, if it reported none); the cost headers."""
        usage = result.usage or call.worst_usage
        price = served_price(call, result)
        cost = cost_of(price, usage) if result.usage else call.worst_case
        self._settle(call, result, cost, result.status, None, usage)
        headers = {
            "x-costbrake-request-id": call.request_id,
            "x-costbrake-cost-usd": format(cost, "f"),
            "x-costbrake-model": result.served_model or price.model,
            **tightest_remaining(call.reservation, cost),
        }
        return headers

    def refunded(self, call: AdmittedCall, result: UpstreamResult | None, status: int, error: str) -> None:
        """The provider billed nothing: its own error answer, or no connection at all."""
        self._settle(call, result, Decimal(0), status, error, Usage())

    def failed(self, call: AdmittedCall, failure: ProviderFailed) -> None:
        if failure.request_sent:
            self._settle(call, None, call.worst_case, failure.status, str(failure), call.worst_usage)
        else:
            self.refunded(call, None, failure.status, str(failure))

    def crashed(self, call: AdmittedCall, crash: BaseException) -> ProviderFailed:
        """The gateway's own failure: charged the worst case once the request may have been sent."""
        error = f"gateway error: {type(crash).__name__}"
        if call.sent:
            self._settle(call, None, call.worst_case, 502, error, call.worst_usage)
        else:
            self._settle(call, None, Decimal(0), 502, error, Usage())
        return ProviderFailed(
            f"The gateway failed during the call ({type(crash).__name__}); it was "
            + ("charged at its reserved worst case." if call.sent else "not charged."),
            request_sent=call.sent,
        )

    def cut_short(
        self, call: AdmittedCall, adapter: ProviderAdapter, streamed: bytes, reason: str, error: str | None
    ) -> Decimal:
        """A stream its client left before the usage arrived: charged the input bound plus what it carried (the
        whole output bound for a reasoning model), at the rates it was reserved at, and the server-side web
        searches it may have made; never more than the reservation."""
        bounds = call.bounds
        # Reasoning models think in tokens the stream never shows: all of the output bound may be spent.
        streamed_output = adapter.streamed_output_bytes(streamed)
        hidden = hides_reasoning(call.plan.api, call.plan.body)
        output = bounds.output_tokens if hidden else min(bounds.output_tokens, streamed_output)
        usage = Usage(
            input_tokens=bounds.input_tokens,
            output_tokens=output,
            estimated=True,
            web_search_requests=bounds.web_search_uses,
        )
        # Priced as the reservation is (requested tier, cache-write rate, searches): never below the bill.
        cost = min(
            worst_case_cost(
                call.plan.price,
                bounds.input_tokens,
                output,
                service_tier=bounds.service_tier,
                cache_write_ttl=bounds.cache_write_ttl,
                web_search_uses=bounds.web_search_uses,
            ),
            call.worst_case,
        )
        result = UpstreamResult(200, b"", "text/event-stream", usage, None, reason, None)
        self._settle(call, result, cost, 200 if error is None else 502, error, usage)
        return cost

    def _settle(
        self,
        call: AdmittedCall,
        result: UpstreamResult | None,
        cost: Decimal,
        http_status: int,
        error: str | None,
        usage: Usage,
    ) -> None:
        if call.settled:
            return
        call.settled = True
        plan, context, bounds = call.plan, call.context, call.bounds
        finish = result.finish_reason if result else None
        record = CallRecord(
            request_id=context.request_id,
            timestamp=context.received_at,
            user_id=plan.caller.user_id,
            feature=plan.feature.name,
            key_id=plan.caller.key.key_id,
            provider=plan.provider,
            model_requested=plan.model_requested,
            model=(result.served_model if result and result.served_model else plan.price.model),
            status="error" if error else "ok",
            http_status=http_status,
            cost_usd=cost,
            reserved_usd=call.reservation.amount,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            estimated_input_tokens=bounds.input_tokens,
            max_output_tokens=bounds.max_output_tokens,
            usage_estimated=usage.estimated,
            finish_reason=finish,
            truncated=finish in TRUNCATION_REASONS,
            stream=plan.stream,
            downgraded_from=plan.downgraded_from,
            system_prompt_sha256=plan.system_prompt_sha256,
            latency_ms=int((self._monotonic() - context.started) * 1000),
            error=error,
            truncated_messages=plan.truncated_messages,
            cache_status=call.cache_status,
            web_search_requests=usage.web_search_requests,
        )
        try:
            self._spend.settle(context.request_id, call.reservation.charges, cost, record)
        except LedgerUnavailable:
            # The provider already answered (and billed): keep the answer, leave a complete trail in the logs.
            logger.exception("settle failed", extra={"request_id": context.request_id, "cost_usd": str(cost)})
            return
        telemetry.call_settled(record)
        above = cost > record.reserved_usd
        (logger.error if above else logger.info)(
            "call settled above its reservation" if above else "call settled",
            extra={
                "request_id": context.request_id,
                "user": record.user_id,
                "feature": record.feature,
                "model": record.model,
                "cost_usd": str(cost),
                "reserved_usd": str(record.reserved_usd),
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "usage_estimated": record.usage_estimated,
                "finish_reason": finish,
                "status": record.status,
            },
        )


def served_price(call: AdmittedCall, result: UpstreamResult) -> ModelPrice:
    served = result.served_model
    if served and served in call.plan.prices:
        return call.plan.prices.get(served)
    return call.plan.price


def tightest_remaining(reservation: Reservation, cost: Decimal) -> dict[str, str]:
    """Remaining budget of the tightest window after this call, from the counters read with the user's profile.

    That snapshot is at most ``settings_cache_seconds`` old; GET /v1/budget reads the counters exactly.
    """
    counters = reservation.view.counters
    remaining, line = min(
        ((max(Decimal(0), line.remaining(counters) - cost), line) for line in reservation.lines),
        key=lambda pair: pair[0],
    )
    return {"x-costbrake-budget-remaining-usd": format(remaining, "f"), "x-costbrake-budget-window": line.label}
