"""`--stack NAME`: the CLI finds the tables, topic and region of a deployed stack from its outputs."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner
from costbrake.cli import main
from costbrake.local.template import create_tables, load_template
from moto import mock_aws

REGION = "eu-west-1"  # not the default, and set only in ~/.aws/config: the CLI must take boto3's region


@pytest.fixture
def deployed_stack(monkeypatch, tmp_path):
    for name in ("COSTBRAKE_LEDGER_TABLE", "COSTBRAKE_CALLS_TABLE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    config = tmp_path / "config"
    config.write_text(f"[default]\nregion = {REGION}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    with mock_aws():
        names = create_tables(boto3.client("dynamodb", region_name=REGION), load_template(), "prod")
        outputs = {
            "LedgerTableName": {"Value": names["LedgerTable"]},
            "CallsTableName": {"Value": names["CallsTable"]},
            "AlertTopicArn": {"Value": {"Ref": "Topic"}},
        }
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="costbrake-prod", TemplateBody=json.dumps(template)
        )
        yield "costbrake-prod"


def test_given_a_deployed_stack_when_a_command_names_it_then_it_works_on_that_stacks_tables(deployed_stack):
    runner = CliRunner()

    set_out = runner.invoke(main, ["--stack", deployed_stack, "budgets", "set", "--global", "--month", "2500"])
    shown = runner.invoke(main, ["--stack", deployed_stack, "budgets", "show", "--global", "--json"])

    assert set_out.exit_code == 0, set_out.output
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["month_usd"] == "2500"


def test_given_no_stack_and_no_tables_when_a_command_runs_then_it_says_which_deployment_is_missing(monkeypatch):
    for name in ("COSTBRAKE_LEDGER_TABLE", "COSTBRAKE_CALLS_TABLE", "COSTBRAKE_STACK"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(main, ["switch", "list"])

    assert result.exit_code != 0 and "--stack NAME" in result.output
