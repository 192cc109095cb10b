"""The CLI ends with a message, never a traceback, on what operators mistype or what breaks around them."""

from __future__ import annotations

import boto3
import click
import pytest
from click.testing import CliRunner
from costbrake.cli import main
from costbrake.cli.report import write_report
from moto import mock_aws


@pytest.fixture
def unreachable_tables(monkeypatch):
    """Table names that exist nowhere (moto has no tables): every ledger read fails."""
    monkeypatch.setenv("COSTBRAKE_LEDGER_TABLE", "gone-LedgerTable")
    monkeypatch.setenv("COSTBRAKE_CALLS_TABLE", "gone-CallsTable")
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1")
        yield


def test_given_an_unreachable_ledger_when_status_then_a_one_line_error_not_a_traceback(unreachable_tables):
    result = CliRunner().invoke(main, ["status"])

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # click's exit, not a crash
    assert result.output.strip().startswith("Error: ") and "(LedgerUnavailable)" in result.output


@pytest.mark.parametrize("amount", ["nan", "NaN", "inf", "-1", "ten"])
def test_given_a_bad_amount_when_setting_a_budget_then_a_usage_error(amount):
    result = CliRunner().invoke(main, ["budgets", "set", "--global", "--month", amount])

    assert result.exit_code == 2 and "--month" in result.output


def test_given_an_unwritable_path_when_writing_a_report_then_a_clear_error(tmp_path):
    with pytest.raises(click.ClickException, match=r"cannot write .*No such file or directory"):
        write_report(_empty_report(), "text", tmp_path / "missing" / "report.txt")


def _empty_report():
    from datetime import UTC, datetime

    from costbrake.reports.inputs import ReportInputs
    from costbrake.reports.model import build_report

    return build_report(ReportInputs(now=datetime(2026, 11, 24, tzinfo=UTC), days=1, calls=[], budgets=[], alerts=[]))
