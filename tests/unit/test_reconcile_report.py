"""The reconciliation status in `costbrake report`: kept by the reconciler in the ledger, shown in text/JSON/HTML."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from costbrake.dal.reconciliations import ReconciliationStore
from costbrake.pricing import PriceTable
from costbrake.reconcile.compare import LedgerUsage, VariancePolicy, reconcile
from costbrake.reconcile.figures import ProviderCost, ProviderReport, ProviderUsage, Tokens
from costbrake.reports.html import render_html
from costbrake.reports.inputs import ReportInputs
from costbrake.reports.model import build_report
from costbrake.reports.source import collect_inputs
from costbrake.reports.text import render_text

NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)
DAY = date(2026, 11, 22)


def _days():
    tokens = Tokens(input=1_000_000)
    report = ProviderReport(
        "openai",
        (ProviderUsage(DAY, "openai", "gpt-4.1", tokens), ProviderUsage(DAY, "openai", "o4-mini", tokens)),
        (ProviderCost(DAY, "openai", Decimal(3), "gpt-4.1"), ProviderCost(DAY, "openai", Decimal("1.1"), "o4-mini")),
    )
    usage = [LedgerUsage(DAY, "openai", "gpt-4.1", tokens, Decimal(2), 5)]
    return reconcile(report, usage, [DAY, date(2026, 11, 23)], NOW, VariancePolicy(), PriceTable.default())


def test_given_reconciled_days_in_the_ledger_when_the_report_is_built_then_text_json_and_html_show_them(
    settings, stores
):
    ReconciliationStore(stores.tables).save(_days())

    report = build_report(collect_inputs(stores, settings, NOW, 7))

    rec = report.reconciliation
    assert rec.checked and rec.status == "attention"
    (line, _quiet) = rec.lines
    assert (line.day, line.provider, line.status, line.final) == ("2026-11-22", "openai", "unguarded", True)
    assert line.unguarded_usd == Decimal("1.1") and line.variance_usd == Decimal("2.1")
    assert "unguarded: o4-mini" in line.note and "price drift: gpt-4.1" in line.note
    data = json.loads(json.dumps(report.as_dict()))
    assert data["reconciliation"]["lines"][0]["unguarded_usd"] == "1.1"
    text = render_text(report)
    assert "Reconciliation with the providers' reports, last 2 days: needs attention" in text
    assert "o4-mini" in text
    html = render_html(report)
    assert "needs attention" in html and "price drift: gpt-4.1" in html


def test_given_no_reconciled_day_when_reported_then_it_says_the_reconciler_is_off():
    report = build_report(ReportInputs(now=NOW, days=7, calls=[], budgets=[], alerts=[]))

    assert report.reconciliation.status == "off"
    assert "the daily reconciler is off until a provider admin key is configured" in render_text(report)
    assert "the daily reconciler is off" in render_html(report)
