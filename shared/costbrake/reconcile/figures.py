"""Plain records of a reconciliation: what a provider reported, what the ledger holds, and how they compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Tokens:
    """Tokens by how they are billed: uncached input, cache reads, cache writes (any TTL), output."""

    input: int = 0
    cached: int = 0
    cache_write: int = 0
    output: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(
            self.input + other.input,
            self.cached + other.cached,
            self.cache_write + other.cache_write,
            self.output + other.output,
        )

    def __sub__(self, other: Tokens) -> Tokens:
        return Tokens(
            self.input - other.input,
            self.cached - other.cached,
            self.cache_write - other.cache_write,
            self.output - other.output,
        )

    def clamped(self) -> Tokens:
        """Each count at least 0 (the part of a difference that is an excess)."""
        return Tokens(max(self.input, 0), max(self.cached, 0), max(self.cache_write, 0), max(self.output, 0))

    @property
    def total(self) -> int:
        return self.input + self.cached + self.cache_write + self.output

    def as_dict(self) -> dict[str, int]:
        return {"input": self.input, "cached": self.cached, "cache_write": self.cache_write, "output": self.output}


@dataclass(frozen=True)
class ProviderUsage:
    """One row of a provider's usage report: a UTC day, a model (as the provider names it), a key, tokens."""

    day: date
    provider: str
    model: str
    tokens: Tokens
    api_key_id: str | None = None
    service_tier: str | None = None
    requests: int | None = None  # OpenAI reports num_model_requests; Anthropic does not


@dataclass(frozen=True)
class ProviderCost:
    """One row of a provider's cost report in USD. ``model`` is None for costs not tied to a model's tokens
    (web search, code execution, a line item costbrake cannot attribute); ``item`` says what it is."""

    day: date
    provider: str
    usd: Decimal
    model: str | None = None
    item: str = "tokens"


@dataclass(frozen=True)
class ProviderReport:
    """What one provider's admin API returned for a period."""

    provider: str
    usage: tuple[ProviderUsage, ...] = ()
    costs: tuple[ProviderCost, ...] = ()
    # Anthropic's cost report leaves out Priority Tier costs: days with priority usage say so.
    excluded_tiers: frozenset[str] = frozenset()


class Explanation(StrEnum):
    UNGUARDED_SPEND = "unguarded_spend"  # usage the ledger does not have
    PRICE_DRIFT = "price_drift"  # same tokens, different dollars: the price table is stale for the model
    REPORTING_DELAY = "reporting_delay"  # the day is not final: the provider may still add usage
    LEDGER_ABOVE_PROVIDER = "ledger_above_provider"  # costbrake charged usage the provider does not report
    ESTIMATED_USAGE = "estimated_usage"  # calls whose usage never arrived were charged their bound
    NON_TOKEN_COST = "non_token_cost"  # web search, code execution...: priced inside the calls by costbrake
    TIER_NOT_IN_COST_REPORT = "tier_not_in_cost_report"  # e.g. Anthropic Priority Tier


class DayStatus(StrEnum):
    OK = "ok"
    PENDING = "pending"  # not final yet and nothing costbrake never saw
    VARIANCE = "variance"  # final, and the dollar variance passes the threshold and the floor
    UNGUARDED = "unguarded"  # the provider reports spend costbrake never saw
    UNCHECKED = "unchecked"  # no admin key for the provider: nothing to compare with


@dataclass(frozen=True)
class Finding:
    """One explanation of (part of) a variance, with the model it concerns and its dollars where computable."""

    kind: Explanation
    model: str | None = None
    usd: Decimal | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "model": self.model, "usd": self.usd, "detail": self.detail}


@dataclass(frozen=True)
class ModelLine:
    """A day x provider x model, side by side."""

    model: str
    provider_tokens: Tokens
    ledger_tokens: Tokens
    provider_usd: Decimal | None  # None: the provider's cost report has nothing for this model (yet)
    ledger_usd: Decimal
    ledger_calls: int
    estimated_calls: int = 0
    unguarded_usd: Decimal = Decimal(0)
    drift_usd: Decimal | None = None  # the provider's dollars minus costbrake's for the tokens both saw
    price_factor: Decimal | None = None  # provider / costbrake price for the tokens both saw
    api_key_ids: tuple[str, ...] = ()  # keys the provider reports this model's usage on

    @property
    def token_variance(self) -> Tokens:
        return self.provider_tokens - self.ledger_tokens

    @property
    def usd_variance(self) -> Decimal | None:
        return None if self.provider_usd is None else self.provider_usd - self.ledger_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider_tokens": self.provider_tokens.as_dict(),
            "ledger_tokens": self.ledger_tokens.as_dict(),
            "token_variance": self.token_variance.as_dict(),
            "provider_usd": self.provider_usd,
            "ledger_usd": self.ledger_usd,
            "variance_usd": self.usd_variance,
            "ledger_calls": self.ledger_calls,
            "estimated_calls": self.estimated_calls,
            "unguarded_usd": self.unguarded_usd,
            "drift_usd": self.drift_usd,
            "price_factor": self.price_factor,
            "api_key_ids": list(self.api_key_ids),
        }


@dataclass(frozen=True)
class DayReconciliation:
    """A UTC day x provider: totals, status, model lines and what explains the difference."""

    day: date
    provider: str
    final: bool
    status: DayStatus
    provider_usd: Decimal
    ledger_usd: Decimal
    unguarded_usd: Decimal
    checked_at: datetime
    lines: tuple[ModelLine, ...] = ()
    findings: tuple[Finding, ...] = field(default=())
    over_threshold: bool = False  # |variance| passes the threshold and the floor (alerted only when final)

    @property
    def variance_usd(self) -> Decimal:
        return self.provider_usd - self.ledger_usd

    @property
    def variance_fraction(self) -> Decimal | None:
        """Variance relative to costbrake's figure (None when costbrake saw nothing)."""
        return None if self.ledger_usd == 0 else self.variance_usd / self.ledger_usd

    @property
    def drift_models(self) -> tuple[str, ...]:
        return tuple(f.model for f in self.findings if f.kind is Explanation.PRICE_DRIFT and f.model)

    def as_dict(self) -> dict[str, Any]:
        fraction = self.variance_fraction
        return {
            "day": self.day.isoformat(),
            "provider": self.provider,
            "final": self.final,
            "status": self.status.value,
            "provider_usd": self.provider_usd,
            "ledger_usd": self.ledger_usd,
            "variance_usd": self.variance_usd,
            "variance_pct": None if fraction is None else (fraction * 100).quantize(Decimal("0.01")),
            "unguarded_usd": self.unguarded_usd,
            "over_threshold": self.over_threshold,
            "drift_models": list(self.drift_models),
            "findings": [f.as_dict() for f in self.findings],
            "models": [line.as_dict() for line in self.lines],
            "checked_at": self.checked_at,
        }
