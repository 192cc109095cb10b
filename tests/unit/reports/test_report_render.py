"""The text and HTML renderings: key figures present, user-supplied names made harmless, nothing fetched."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from costbrake.formatting import usd
from costbrake.reports.html import render_html
from costbrake.reports.model import build_report
from costbrake.reports.source import collect_inputs
from costbrake.reports.text import render_text
from report_data import NOW, budget, zscore_alert

EMAIL_WIDTH = 125  # the widest table (budgets with long feature names) stays readable in a plain-text e-mail


def test_given_a_week_when_rendered_as_text_then_the_key_figures_are_there(busy_week):
    report = build_report(busy_week)

    text = render_text(report)

    g = report.global_budget
    assert g is not None
    assert text.startswith("costbrake cost report: 2026-11-17 10:30 to 2026-11-24 10:30 UTC (7 days)\n")
    assert f"{usd(report.totals.cost_usd)} over 2,948 calls (0 errors)" in text
    assert f"projected month  {usd(g.projected_usd)} (114.9% of the budget)" in text
    assert "runs out on 2026-11-28 16:36 UTC" in text
    assert re.search(r"^  deep-analysis +484 +0 +\$864\.15 +95\.5% ", text, re.MULTILINE)
    assert re.search(r"^  power-user +\$864\.15 +484 +95\.5%$", text, re.MULTILINE)
    assert re.search(r"^  gpt-4o-mini +1,848 +\$3\.68 ", text, re.MULTILINE)
    assert "9.1 sigma above its 336-hour mean" in text
    assert max(len(line) for line in text.splitlines()) <= EMAIL_WIDTH


def test_given_advice_when_rendered_as_text_then_every_advice_is_listed(make_call, make_inputs):
    calls = [make_call(truncated=n < 6, finish_reason="length", cache_write_tokens=900) for n in range(100)]

    text = render_text(build_report(make_inputs(calls)))

    advice = text.split("\nAdvice\n------\n")[1]
    assert advice.startswith("  * 6.0% of answers were cut off at max_tokens (6 of 100; above 5.0%): raise")
    assert "  * Caching is not helping: 0.0% cache hits over 100 calls" in advice


def test_given_a_hostile_user_id_when_rendered_as_text_then_no_control_character_reaches_the_terminal(hostile_week):
    text = render_text(build_report(hostile_week))

    assert "\x1b" not in text
    assert all(ch.isprintable() for line in text.splitlines() for ch in line)
    assert '"><img src=x onerror=alert(1)>?[31m' in text  # shown as it is, the escape character replaced


def test_given_hostile_names_when_rendered_as_html_then_they_are_escaped_everywhere(hostile_week):
    page = render_html(build_report(hostile_week))

    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;feature&#x27;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("&lt;script&gt;") >= 8  # tables, legend, tooltips, budget chart, anomaly


def test_given_a_report_when_rendered_as_html_then_it_is_self_contained(busy_week):
    page = render_html(build_report(busy_week))

    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|<script|<link|<iframe|<object", page, re.IGNORECASE)
    assert "default-src 'none'" in page  # the browser refuses anything external even if a name got through
    assert page.count("<svg") == 4  # cost over time, budgets, cost by feature over time, top users
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


@pytest.mark.parametrize("days", [1, 7])
def test_given_no_calls_when_rendered_then_text_and_html_say_so(make_inputs, days):
    report = build_report(make_inputs([], days=days, budgets=[budget("global", "1000", "250")]))

    text, page = render_text(report), render_html(report)

    assert "  cost             $0.00 over 0 calls (0 errors)" in text
    assert "  no calls" in text and "nothing to change" in text
    assert "projected month  $250.00 (25.0% of the budget)" in text
    assert "<svg" in page and "no calls" in page


def test_given_no_budgets_and_no_calls_when_rendered_then_no_error(make_inputs):
    report = build_report(make_inputs([]))

    assert "no budgets" in render_text(report)
    assert "No global budget." in render_html(report)


def test_given_calls_and_an_alert_in_the_tables_when_reported_then_the_text_shows_them(stores, settings, make_call):
    for hours_ago, cost in ((2, "1.25"), (30, "0.75")):
        call = make_call(timestamp=NOW - timedelta(hours=hours_ago), cost_usd=Decimal(cost), feature="chat")
        stores.spend.settle(call.request_id, [], call.cost_usd, call)
    alert = zscore_alert("feature#chat")
    stores.alerts.log_alert(alert, datetime.fromisoformat(alert["generated_at"]))

    report = build_report(collect_inputs(stores, settings, NOW, days=7))

    text = render_text(report)
    assert "  cost             $2.00 over 2 calls (0 errors)" in text
    # No charges were settled, so the month's counters are empty: $0 spent. The first call came 30 h ago, late in
    # the 7 days: $2 / 30 h = $1.60/day, x 6.5625 days to the month's end = $10.50 (1.05%, rounded half-even).
    assert re.search(r"^  global +\$1,000\.00 +\$0\.00 +0\.0% +\$1\.60 +\$10\.50 +1\.0% +-$", text, re.MULTILINE)
    assert "$1.60/day (since the first call, 2026-11-23 04:30)" in text
    assert "feature#chat cost $40.25 in h#2026-11-24T08" in text
