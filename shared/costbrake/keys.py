"""costbrake API keys as clients send them: read from the request headers, stored and looked up hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return headers.get("x-api-key") or None
