"""Authentication: the costbrake key a request carries, looked up by its hash (keys are stored hashed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from costbrake.errors import AuthenticationFailed
from costbrake.keys import hash_key, key_from_headers
from costbrake.records import ApiKey


def authenticate(headers: Mapping[str, str], key_by_hash: Callable[[str], ApiKey | None]) -> ApiKey:
    """The request's key (``Authorization: Bearer`` or ``x-api-key``); a 401 when it has none, or an unknown or
    revoked one."""
    secret = key_from_headers(headers)
    if secret is None:
        raise AuthenticationFailed(
            "No API key: send 'Authorization: Bearer <costbrake key>' or 'x-api-key: <costbrake key>'."
        )
    key = key_by_hash(hash_key(secret))
    if key is None or key.revoked:
        raise AuthenticationFailed("Incorrect or revoked costbrake API key.")
    return key
