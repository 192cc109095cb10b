"""Spend scopes, shared by counters, rollups, anomalies, alerts and reports: defined once.

A ``Scope`` is what a budget, a counter, a rollup or an alert is about: the whole deployment, a feature, a user,
an API key (and, in rollups only, a model; in alerts only, a provider). Its ``counter_key`` (``user#alice``) is
how the ledger, the rollups and the alerts name it; its ``label`` (``user alice``) is how people and response
headers read it. A stored key is turned back into a ``Scope`` by ``Scope.parse`` only; nothing parses a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from costbrake.names import header_safe

GLOBAL_SCOPE = "global"
FEATURE_PREFIX = "feature#"
USER_PREFIX = "user#"
MODEL_PREFIX = "model#"
KEY_PREFIX = "key#"
PROVIDER_PREFIX = "provider#"

_SEPARATOR = "#"


class ScopeKind(StrEnum):
    GLOBAL = "global"
    FEATURE = "feature"
    USER = "user"
    KEY = "key"
    MODEL = "model"  # rollups only: no budget is per model
    PROVIDER = "provider"  # alerts only: a provider's own bill (reconciliation)


_KINDS = frozenset(kind.value for kind in ScopeKind)


@dataclass(frozen=True)
class Scope:
    """The global scope (no name), or a feature, user, key, model or provider by name (checked where names
    enter: ``costbrake.names``)."""

    kind: ScopeKind
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind is ScopeKind.GLOBAL and self.name:
            raise ValueError(f"the global scope has no name, not {self.name!r}")

    @classmethod
    def feature(cls, name: str) -> Scope:
        return cls(ScopeKind.FEATURE, name)

    @classmethod
    def user(cls, user_id: str) -> Scope:
        return cls(ScopeKind.USER, user_id)

    @classmethod
    def key(cls, key_id: str) -> Scope:
        return cls(ScopeKind.KEY, key_id)

    @classmethod
    def parse(cls, counter_key: str) -> Scope:
        """The scope a counter or rollup key names: ``global``, ``user#alice`` (a name may contain ``#``)."""
        if counter_key == GLOBAL_SCOPE:
            return GLOBAL
        kind, separator, name = counter_key.partition(_SEPARATOR)
        if not separator or kind not in _KINDS:
            raise ValueError(f"not a scope: {counter_key!r}")
        return cls(ScopeKind(kind), name)

    @property
    def counter_key(self) -> str:
        """How the ledger's counters and the rollups name the scope: ``global``, ``user#alice``."""
        return GLOBAL_SCOPE if self.kind is ScopeKind.GLOBAL else f"{self.kind.value}{_SEPARATOR}{self.name}"

    @property
    def label(self) -> str:
        """What a client or an operator reads (``global``, ``user alice``); header-safe, as it goes out in
        response headers."""
        return GLOBAL_SCOPE if self.kind is ScopeKind.GLOBAL else f"{self.kind.value} {header_safe(self.name)}"


GLOBAL = Scope(ScopeKind.GLOBAL)
