"""Domain errors. The API layer maps each to an HTTP status and a provider-shaped body in one place."""

from __future__ import annotations


class CostbrakeError(Exception):
    """Base of every refusal the gateway returns to a client."""

    status = 400
    # OpenAI error "type" / Anthropic error "type" used in the provider-shaped body.
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    @property
    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(CostbrakeError):
    code = "invalid_request"


class NotFound(CostbrakeError):
    """No such route, or no such call for this key."""

    status = 404
    anthropic_type = "not_found_error"
    code = "not_found"


class UnknownModel(InvalidRequest):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' has no price in costbrake's price table; it is refused rather than "
            "recorded as free. Add a price (costbrake pricing) or use a priced model.",
            param="model",
        )
        self.model = model


class AuthenticationFailed(CostbrakeError):
    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(CostbrakeError):
    status = 403
    openai_type = "permission_denied"
    anthropic_type = "permission_error"
    code = "permission_denied"


class FeatureOff(PermissionDenied):
    code = "feature_disabled"


class UserBlocked(PermissionDenied):
    code = "user_blocked"


class InputTooLarge(CostbrakeError):
    status = 413
    anthropic_type = "request_too_large"
    code = "input_too_large"


class LimitExceeded(CostbrakeError):
    """429 that a retry cannot fix before ``retry_after`` seconds pass."""

    status = 429
    anthropic_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int, scope: str, window: str, should_retry: bool = False) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.scope = scope
        self.window = window
        self.should_retry = should_retry

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(self.retry_after),
            # The SDKs retry 429s by default; a spent budget does not come back in seconds.
            "x-should-retry": "true" if self.should_retry else "false",
            "x-costbrake-limit-scope": self.scope,
            "x-costbrake-limit-window": self.window,
        }


class BudgetExceeded(LimitExceeded):
    openai_type = "insufficient_quota"
    code = "insufficient_quota"


class RateLimited(LimitExceeded):
    openai_type = "requests"
    code = "rate_limit_exceeded"


class BudgetBusy(LimitExceeded):
    """The budget has room, but calls in flight hold it (their reservations settle within seconds)."""

    openai_type = "requests"
    code = "budget_busy"

    def __init__(self, message: str, *, retry_after: int, scope: str, window: str) -> None:
        super().__init__(message, retry_after=retry_after, scope=scope, window=window, should_retry=True)


class ProviderFailed(CostbrakeError):
    """The provider gave no usable answer. ``request_sent``: the request body may have reached it, so it may have
    generated (and billed) tokens; such a failure is charged, never refunded, and must not be retried blindly."""

    status = 502
    openai_type = "api_error"
    anthropic_type = "api_error"
    code = "upstream_error"

    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.request_sent = request_sent

    @property
    def headers(self) -> dict[str, str]:
        # The SDKs retry 5xx by default: each retry of a call the provider may have billed would be billed again.
        return {"x-should-retry": "false"} if self.request_sent else {}


class ProviderTimeout(ProviderFailed):
    status = 504
    code = "upstream_timeout"


class ProviderKeyUnavailable(CostbrakeError):
    """The gateway has no usable key for the provider (none configured, or its secret cannot be read)."""

    status = 503
    openai_type = "api_error"
    anthropic_type = "api_error"
    code = "provider_key_unavailable"


class LedgerUnavailable(CostbrakeError):
    status = 503
    openai_type = "api_error"
    anthropic_type = "overloaded_error"
    code = "ledger_unavailable"
