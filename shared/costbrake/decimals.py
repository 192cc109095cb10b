"""Exact decimals as text for JSON and messages: no exponent, no trailing zeros (0E-7 -> "0", 1E+3 -> "1000")."""

from __future__ import annotations

from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")
