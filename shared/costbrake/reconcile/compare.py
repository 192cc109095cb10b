"""The comparison itself, pure: a provider's report and the ledger's calls → one ``DayReconciliation`` per day.

Everything is exact ``Decimal``; the time is passed in (``now``), never read. Model names are compared by family
(``PriceTable.base_model``: a dated snapshot the table prices under its base name counts as the base), so a
provider that reports ``gpt-4o-2024-08-06`` lines up with calls recorded as ``gpt-4o``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from costbrake.errors import UnknownModel
from costbrake.pricing import PriceTable
from costbrake.reconcile.figures import (
    DayReconciliation,
    DayStatus,
    Explanation,
    Finding,
    ModelLine,
    ProviderReport,
    Tokens,
)
from costbrake.records import CallRecord

MICRO = Decimal("0.000001")  # dollars derived by division are kept to a millionth of a dollar
FACTOR = Decimal("0.0001")


@dataclass(frozen=True)
class VariancePolicy:
    """When a difference is worth an alert (docs/reconciliation.md)."""

    threshold_fraction: Decimal = Decimal("0.01")  # 1 % of the day's larger figure ...
    floor_usd: Decimal = Decimal("1")  # ... and at least this many dollars
    unguarded_floor_usd: Decimal = Decimal("1")  # spend costbrake never saw, alerted from this amount
    final_after: timedelta = timedelta(hours=24)  # a day is final this long after it ends (UTC)
    drift_tolerance_fraction: Decimal = Decimal("0.005")  # rounding of the provider's figures is not drift
    drift_tolerance_usd: Decimal = Decimal("0.000001")

    def passes(self, variance: Decimal, ledger_usd: Decimal, provider_usd: Decimal) -> bool:
        size = abs(variance)
        return size >= self.floor_usd and size >= self.threshold_fraction * max(ledger_usd, provider_usd)


@dataclass(frozen=True)
class LedgerUsage:
    """The ledger's calls of one UTC day, provider and model, summed."""

    day: date
    provider: str
    model: str
    tokens: Tokens
    usd: Decimal
    calls: int
    estimated_calls: int = 0
    web_searches: int = 0


@dataclass
class _Side:
    tokens: Tokens = field(default_factory=Tokens)
    usd: Decimal | None = None
    calls: int = 0
    estimated: int = 0
    web_searches: int = 0
    keys: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()


def ledger_usage(calls: Iterable[CallRecord]) -> list[LedgerUsage]:
    """The call records summed per UTC day x provider x model (as recorded: the model that served)."""
    sums: dict[tuple[date, str, str], _Side] = defaultdict(_Side)
    for call in calls:
        side = sums[(call.timestamp.astimezone(UTC).date(), call.provider, call.model)]
        side.tokens += Tokens(call.input_tokens, call.cache_read_tokens, call.cache_write_tokens, call.output_tokens)
        side.usd = (side.usd or Decimal(0)) + call.cost_usd
        side.calls += 1
        side.estimated += 1 if call.usage_estimated else 0
        side.web_searches += call.web_search_requests
    return [
        LedgerUsage(
            day, provider, model, side.tokens, side.usd or Decimal(0), side.calls, side.estimated, side.web_searches
        )
        for (day, provider, model), side in sorted(sums.items())
    ]


def days_back(now: datetime, days: int) -> list[date]:
    """The ``days`` UTC days ending with today, oldest first."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def reconcile(
    report: ProviderReport,
    ledger: Iterable[LedgerUsage],
    days: Sequence[date],
    now: datetime,
    policy: VariancePolicy,
    prices: PriceTable,
    gateway_key_ids: frozenset[str] = frozenset(),
) -> list[DayReconciliation]:
    """One reconciliation per day of ``days`` for ``report.provider`` (ledger rows of other providers ignored)."""
    provider = report.provider
    wanted = set(days)
    own = [row for row in ledger if row.provider == provider and row.day in wanted]
    return [
        _day(day, report, [row for row in own if row.day == day], now, policy, prices, gateway_key_ids) for day in days
    ]


def _day(
    day: date,
    report: ProviderReport,
    ledger: Sequence[LedgerUsage],
    now: datetime,
    policy: VariancePolicy,
    prices: PriceTable,
    gateway_key_ids: frozenset[str],
) -> DayReconciliation:
    theirs: dict[str, _Side] = defaultdict(_Side)
    ours: dict[str, _Side] = defaultdict(_Side)
    for usage in report.usage:
        if usage.day == day:
            side = theirs[prices.base_model(usage.model)]
            side.tokens = side.tokens + usage.tokens
            side.keys |= {usage.api_key_id} if usage.api_key_id else set()
            side.tiers |= {usage.service_tier} if usage.service_tier else set()
    other_costs: list[Finding] = []
    provider_total = Decimal(0)
    for cost in report.costs:
        if cost.day != day:
            continue
        provider_total += cost.usd
        if cost.model is None:
            other_costs.append(Finding(Explanation.NON_TOKEN_COST, None, cost.usd, cost.item))
            continue
        side = theirs[prices.base_model(cost.model)]
        side.usd = (side.usd or Decimal(0)) + cost.usd
    for row in ledger:
        side = ours[prices.base_model(row.model)]
        side.tokens = side.tokens + row.tokens
        side.usd = (side.usd or Decimal(0)) + row.usd
        side.calls += row.calls
        side.estimated += row.estimated_calls
        side.web_searches += row.web_searches

    _, day_end = day_bounds(day)
    final = now >= day_end + policy.final_after
    lines = [
        _line(model, theirs.get(model, _Side()), ours.get(model, _Side()), policy, prices)
        for model in sorted(theirs.keys() | ours.keys())
    ]
    findings = [f for line in lines for f in _line_findings(line, final, gateway_key_ids)] + other_costs
    excluded = {tier for side in theirs.values() for tier in side.tiers} & report.excluded_tiers
    if excluded:
        detail = f"the cost report leaves out the {', '.join(sorted(excluded))} tier: its usage is not in its dollars"
        findings.append(Finding(Explanation.TIER_NOT_IN_COST_REPORT, None, None, detail))
    if not final:
        until = (day_end + policy.final_after).isoformat()
        findings.append(Finding(Explanation.REPORTING_DELAY, None, None, f"not final until {until}"))

    ledger_total = sum((line.ledger_usd for line in lines), Decimal(0))
    unguarded = sum((line.unguarded_usd for line in lines), Decimal(0))
    over = policy.passes(provider_total - ledger_total, ledger_total, provider_total)
    if unguarded >= policy.unguarded_floor_usd and unguarded > 0:
        status = DayStatus.UNGUARDED
    elif final and over:
        status = DayStatus.VARIANCE
    elif not final:
        status = DayStatus.PENDING
    else:
        status = DayStatus.OK
    return DayReconciliation(
        day=day,
        provider=report.provider,
        final=final,
        status=status,
        provider_usd=provider_total,
        ledger_usd=ledger_total,
        unguarded_usd=unguarded,
        checked_at=now,
        lines=tuple(lines),
        findings=tuple(findings),
        over_threshold=over,
    )


def _line(model: str, theirs: _Side, ours: _Side, policy: VariancePolicy, prices: PriceTable) -> ModelLine:
    ledger_usd = ours.usd or Decimal(0)
    excess = (theirs.tokens - ours.tokens).clamped()
    deficit = (ours.tokens - theirs.tokens).clamped()
    unguarded = _unguarded(model, theirs, ours, excess, prices)
    drift: Decimal | None = None
    factor: Decimal | None = None
    # Web search fees are in the ledger's cost of the call, but on a line of their own at the provider (no model).
    token_usd = ledger_usd - _search_fees(model, ours.web_searches, prices)
    if theirs.usd is not None and token_usd > 0 and deficit.total == 0:
        matched = theirs.usd - unguarded  # the provider's dollars for the tokens costbrake saw too
        difference = matched - token_usd
        tolerance = max(policy.drift_tolerance_usd, policy.drift_tolerance_fraction * token_usd)
        if abs(difference) > tolerance:
            drift, factor = difference, (matched / token_usd).quantize(FACTOR)
    return ModelLine(
        model=model,
        provider_tokens=theirs.tokens,
        ledger_tokens=ours.tokens,
        provider_usd=theirs.usd,
        ledger_usd=ledger_usd,
        ledger_calls=ours.calls,
        estimated_calls=ours.estimated,
        unguarded_usd=unguarded,
        drift_usd=drift,
        price_factor=factor,
        api_key_ids=tuple(sorted(theirs.keys)),
    )


def _search_fees(model: str, searches: int, prices: PriceTable) -> Decimal:
    if not searches:
        return Decimal(0)
    try:
        return searches * prices.get(model).web_search_price
    except UnknownModel:
        return Decimal(0)


def _unguarded(model: str, theirs: _Side, ours: _Side, excess: Tokens, prices: PriceTable) -> Decimal:
    """The provider's dollars for the tokens the ledger does not have.

    All of the model's cost when costbrake saw none of it; otherwise the excess's share of the provider's cost,
    the share weighed by costbrake's price table (so a price change does not hide or inflate it). Without a
    provider cost (not reported yet) the excess is priced by the table; an unpriced model counts 0 dollars (its
    tokens are still listed).
    """
    if excess.total == 0:
        return Decimal(0)
    if ours.calls == 0 and ours.tokens.total == 0 and theirs.usd is not None:
        return theirs.usd
    if ours.estimated:
        # Calls charged an estimate (a client that left mid-stream: the input bound, the output it saw) differ
        # from the bill by type and by amount; outside spend cannot be told apart from them on this line. The
        # dollar variance stays, explained as estimated usage (and alerted as a variance above the threshold).
        return Decimal(0)
    excess_value = table_value(prices, model, excess)
    if excess_value is None:
        return Decimal(0)
    whole_value = table_value(prices, model, theirs.tokens)
    if theirs.usd is not None and whole_value:
        return (theirs.usd * excess_value / whole_value).quantize(MICRO)
    return excess_value.quantize(MICRO)


def table_value(prices: PriceTable, model: str, tokens: Tokens) -> Decimal | None:
    """``tokens`` at the table's standard rates (no long-context tier: they are a day's sum, not one call)."""
    try:
        rates = prices.get(model).rates
    except UnknownModel:
        return None
    return (
        tokens.input * rates.input
        + tokens.cached * rates.cache_read
        + tokens.cache_write * rates.cache_write_5m
        + tokens.output * rates.billed_output
    )


def _line_findings(line: ModelLine, final: bool, gateway_key_ids: frozenset[str]) -> list[Finding]:
    found: list[Finding] = []
    excess = line.token_variance.clamped()
    if line.unguarded_usd > 0 or (excess.total > 0 and line.ledger_calls == 0):
        detail = _unguarded_detail(line, gateway_key_ids)
        found.append(Finding(Explanation.UNGUARDED_SPEND, line.model, line.unguarded_usd, detail))
    if line.drift_usd is not None:
        detail = f"the provider charges {line.price_factor}x costbrake's price for the same tokens"
        found.append(Finding(Explanation.PRICE_DRIFT, line.model, line.drift_usd, detail))
    if line.estimated_calls:
        detail = f"{line.estimated_calls} call(s) without reported usage were charged their bound"
        found.append(Finding(Explanation.ESTIMATED_USAGE, line.model, None, detail))
    deficit = (line.ledger_tokens - line.provider_tokens).clamped()
    if deficit.total > 0:
        kind = Explanation.LEDGER_ABOVE_PROVIDER if final else Explanation.REPORTING_DELAY
        found.append(Finding(kind, line.model, None, f"the ledger has {_tokens_text(deficit)} more"))
    return found


def _unguarded_detail(line: ModelLine, gateway_key_ids: frozenset[str]) -> str:
    excess = line.token_variance.clamped()
    text = f"{_tokens_text(excess)} the ledger does not have"
    keys = set(line.api_key_ids)
    if keys and gateway_key_ids:
        on_gateway, others = sorted(keys & gateway_key_ids), sorted(keys - gateway_key_ids)
        if on_gateway:
            text += "; usage on the gateway's own provider key outside costbrake"
        if others:
            text += f"; usage on other keys: {', '.join(others)}"
    elif keys:
        text += f" (keys: {', '.join(sorted(keys))})"
    return text


def _tokens_text(tokens: Tokens) -> str:
    parts = [(tokens.input, "input"), (tokens.cached, "cached"), (tokens.cache_write, "cache-write")]
    parts.append((tokens.output, "output"))
    return ", ".join(f"{count:,} {name}" for count, name in parts if count) + " tokens"
