"""Numbers as text, in one place: exact decimals for JSON, dollars and percentages for people.

- ``plain_decimal``: an exact decimal for JSON and headers (no exponent, no trailing zeros).
- ``usd_exact``: an exact amount for people (a limit, a price, an estimate): grouped, at least cents, nothing
  rounded away.
- ``usd``: an amount rounded for reading (reports, tables, alerts, charts); its parameters say how it rounds,
  since a table cell, a chart tick and a report line read best at different precisions.
- ``percent``: a fraction as a percentage with one decimal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import overload

DASH = "-"  # what a missing figure reads as
_CENT = Decimal("0.01")


@overload
def plain_decimal(value: Decimal, places: int | None = None) -> str: ...
@overload
def plain_decimal(value: Decimal | None, places: int | None = None) -> str | None: ...
def plain_decimal(value: Decimal | None, places: int | None = None) -> str | None:
    """``value`` exactly (or rounded to ``places`` decimals), without exponent or trailing zeros; None stays None."""
    if value is None:
        return None
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    return "0" if value == 0 else format(value.normalize(), "f")  # never "-0"


def usd_exact(value: Decimal, *, symbol: bool = True) -> str:
    """An exact amount with at least cents: ``$12,345.00``, ``$0.01``, ``$0.00015``.

    Without ``symbol``: the plain number for JSON (``12345.00``), no dollar sign and no grouping.
    """
    exact = value.normalize()
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        exact = exact.quantize(_CENT)
    return f"${exact:,f}" if symbol else format(exact, "f")


def usd(
    value: Decimal | float | None,
    *,
    places: int | None = None,
    whole_from: float | None = None,
) -> str:
    """Dollars rounded for reading (the exact amount is in the JSON); ``-`` for a missing amount.

    From $1 up: cents. Below $1: ``places`` decimals, or by default three significant digits (a call can cost a
    fraction of a cent). From ``whole_from`` up, if given: whole dollars (wide table cells, chart ticks). Zero is
    exact at any precision, so it reads at the coarsest one: ``$0`` with ``whole_from``, else ``$0.00``.
    """
    if value is None:
        return DASH
    size = -value if value < 0 else value
    if whole_from is not None and (size >= whole_from or value == 0):
        return f"${value:,.0f}"
    if value == 0 or size >= 1:
        return f"${value:,.2f}"
    if places is None:
        exact = value if isinstance(value, Decimal) else Decimal(repr(value))
        places = max(2, 2 - exact.adjusted())
    return f"${value:,.{places}f}"


def percent(fraction: Decimal | float | None, *, signed: bool = False, places: int = 1) -> str:
    """``0.125`` as ``12.5%`` (``+12.5%`` if ``signed``; ``places`` decimals); ``-`` for a missing fraction."""
    if fraction is None:
        return DASH
    return f"{fraction * 100:{'+' if signed else ''}.{places}f}%"
