"""Decimals as text: exact for JSON (no exponent, no trailing zeros), readable dollars for people."""

from __future__ import annotations

from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")


def usd_text(value: Decimal) -> str:
    """Dollars: cents from $1 up, three significant digits below (a call can cost a fraction of a cent)."""
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    places = max(2, 2 - value.adjusted())
    return f"${value:,.{places}f}"
