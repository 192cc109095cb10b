"""``PriceTable``: model → price, with dated snapshots priced as their base model; the packaged table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from costbrake.errors import UnknownModel
from costbrake.pricing.model_price import ModelPrice
from costbrake.pricing.rates import PriceDataError

_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


class PriceTable:
    """Immutable model → price map."""

    def __init__(self, prices: Iterable[ModelPrice]) -> None:
        self._prices = {price.model: price for price in prices}

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped in the package, parsed once per process."""
        return _packaged_table()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceTable:
        """Build from ``{model: LiteLLM-style entry}``; any unusable entry rejects the whole table."""
        prices = []
        for model, spec in data.items():
            if not isinstance(spec, Mapping):
                raise PriceDataError(f"{model}: entry must be an object, got {type(spec).__name__}")
            prices.append(ModelPrice.from_spec(model, spec))
        return cls(prices)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {price.model: price.to_spec() for price in self.models()}

    def get(self, model: str) -> ModelPrice:
        """The model's price; a dated snapshot (``gpt-4o-2024-08-06``) falls back to its base model
        unless the snapshot has its own entry (``gpt-4o-2024-05-13`` is priced differently)."""
        price = self._prices.get(model)
        if price is not None:
            return price
        dated = _DATED_SNAPSHOT.match(model)
        if dated:
            price = self._prices.get(dated.group("base"))
            if price is not None:
                return price
        raise UnknownModel(model)

    def base_model(self, model: str) -> str:
        """The family name of ``model``: a dated snapshot's base when the table prices it, else ``model``.

        ``gpt-4o-2024-05-13`` → ``gpt-4o`` (although the snapshot has a price of its own).
        """
        dated = _DATED_SNAPSHOT.match(model)
        if dated and dated.group("base") in self:
            return dated.group("base")
        return model

    def __contains__(self, model: object) -> bool:
        if not isinstance(model, str):
            return False
        try:
            self.get(model)
        except UnknownModel:
            return False
        return True

    def models(self) -> list[ModelPrice]:
        return [self._prices[name] for name in sorted(self._prices)]

    def with_overrides(self, prices: Iterable[ModelPrice]) -> PriceTable:
        """A new table where each given price replaces (or adds) its model's entry.

        An override of a base model (``gpt-4o``) also replaces the entries of its dated snapshots
        (``gpt-4o-2024-08-06``) that are priced exactly as the base, unless they are overridden themselves:
        the snapshot of a model bills as the model does. A snapshot priced otherwise (``gpt-4o-2024-05-13``)
        keeps its own price.
        """
        overrides = {price.model: price for price in prices}
        merged = dict(self._prices)
        for name, price in self._prices.items():
            dated = _DATED_SNAPSHOT.match(name)
            if dated is None or name in overrides or dated.group("base") not in overrides:
                continue
            base = self._prices.get(dated.group("base"))
            if base is not None and replace(price, model=base.model) == base:
                merged[name] = replace(overrides[base.model], model=name)
        merged.update(overrides)
        return PriceTable(merged.values())


def downgrade_target(downgrade_map: Mapping[str, str], model: str) -> str | None:
    """The cheaper model ``downgrade_map`` names for ``model``, or None.

    A dated snapshot (``gpt-4o-2024-05-13``, ``claude-sonnet-4-5-20250929``) that the map does not name
    itself is downgraded as its base model is; so is an alias ending in ``-latest``.
    """
    if model in downgrade_map:
        return downgrade_map[model]
    dated = _DATED_SNAPSHOT.match(model)
    if dated and dated.group("base") in downgrade_map:
        return downgrade_map[dated.group("base")]
    latest = model.removesuffix("-latest")
    if latest != model and latest in downgrade_map:
        return downgrade_map[latest]
    return None


@cache
def _packaged_table() -> PriceTable:
    raw = (Path(__file__).parents[1] / "data" / "prices.json").read_text(encoding="utf-8")
    return PriceTable.from_dict(json.loads(raw))
