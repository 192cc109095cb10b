"""Numbers as text (``costbrake.formatting``) and spend scopes (``costbrake.scopes``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from costbrake.budgets import BudgetLine
from costbrake.formatting import percent, plain_decimal, usd, usd_exact
from costbrake.scopes import GLOBAL, Scope, ScopeKind
from costbrake.windows import Window, span

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (Decimal("300"), None, "300"),
        (Decimal("300.00"), None, "300"),
        (Decimal("0.000150"), None, "0.00015"),
        (Decimal("1E+3"), None, "1000"),
        (Decimal("-0.00"), None, "0"),
        (Decimal("0.1234567"), 6, "0.123457"),
        (Decimal("2.5000004"), 6, "2.5"),
    ],
)
def test_given_a_decimal_when_plain_then_exact_without_exponent_or_trailing_zeros(value, places, text):
    assert plain_decimal(value, places) == text


def test_given_none_when_plain_then_none():
    assert plain_decimal(None) is None


@pytest.mark.parametrize(
    ("value", "with_symbol", "plain"),
    [
        (Decimal("12345"), "$12,345.00", "12345.00"),
        (Decimal("0.01"), "$0.01", "0.01"),
        (Decimal("0.00015"), "$0.00015", "0.00015"),
        (Decimal("2.50000"), "$2.50", "2.50"),
    ],
)
def test_given_an_exact_amount_when_usd_exact_then_at_least_cents_and_nothing_rounded(value, with_symbol, plain):
    assert usd_exact(value) == with_symbol
    assert usd_exact(value, symbol=False) == plain


@pytest.mark.parametrize(
    ("value", "options", "text"),
    [
        (None, {}, "-"),
        (Decimal(0), {}, "$0.00"),
        (Decimal("1234.5"), {}, "$1,234.50"),
        (Decimal("0.00123456"), {}, "$0.00123"),  # three significant digits below $1
        (Decimal("0.5"), {}, "$0.500"),
        (Decimal("0.004"), {"places": 2}, "$0.00"),  # alerts: always cents
        (Decimal("0.00123456"), {"places": 4}, "$0.0012"),  # chart notes
        (Decimal("1234.5"), {"places": 4, "whole_from": 1000}, "$1,234"),  # table cells
        (Decimal("12.346"), {"places": 4, "whole_from": 1000}, "$12.35"),
        (Decimal(0), {"places": 4, "whole_from": 1000}, "$0"),
        (25.0, {"places": 2, "whole_from": 10}, "$25"),  # chart ticks
        (2.5, {"places": 2, "whole_from": 10}, "$2.50"),
        (0.0, {"places": 2, "whole_from": 10}, "$0"),
    ],
)
def test_given_an_amount_when_usd_then_rounded_for_reading(value, options, text):
    assert usd(value, **options) == text


def test_given_fractions_when_percent_then_one_decimal_signed_if_asked_and_a_dash_for_none():
    assert percent(Decimal("0.125")) == "12.5%"
    assert percent(Decimal("-0.0314"), signed=True) == "-3.1%"
    assert percent(Decimal("0.2"), signed=True) == "+20.0%"
    assert percent(0.456, places=0) == "46%"
    assert percent(None) == "-"


@pytest.mark.parametrize(
    ("key", "scope", "label"),
    [
        ("global", GLOBAL, "global"),
        ("user#alice", Scope.user("alice"), "user alice"),
        ("feature#chat", Scope.feature("chat"), "feature chat"),
        ("key#3f2a9c", Scope.key("3f2a9c"), "key 3f2a9c"),
        ("user#a#b", Scope.user("a#b"), "user a#b"),  # a name may hold the separator
        ("model#gpt-4o", Scope(ScopeKind.MODEL, "gpt-4o"), "model gpt-4o"),
        ("provider#openai", Scope(ScopeKind.PROVIDER, "openai"), "provider openai"),
    ],
)
def test_given_a_counter_key_when_parsed_then_the_scope_it_names_and_back(key, scope, label):
    assert Scope.parse(key) == scope
    assert scope.counter_key == key
    assert scope.label == label


@pytest.mark.parametrize("key", ["", "bogus", "team#a", "global#x"])
def test_given_no_scope_key_when_parsed_then_refused(key):
    with pytest.raises(ValueError):
        Scope.parse(key)


def test_given_a_non_ascii_user_when_labelled_then_header_safe_and_the_counter_key_exact():
    scope = Scope.user("josé")

    assert (scope.label, scope.counter_key) == ("user jos%C3%A9", "user#josé")


def test_given_a_budget_line_when_labelled_then_scope_label_and_window():
    line = BudgetLine(Scope.feature("chat"), Decimal(10), span(Window.MONTH, NOW), shards=2)

    assert line.label == "feature chat, month"
    assert line.window is Window.MONTH
    assert {ref.scope for ref in line.counters()} == {"feature#chat"}
