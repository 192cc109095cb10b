"""The CloudWatch dashboard in template.yaml: valid JSON once substituted, showing exactly what the code emits.

The Costbrake metrics and their dimension sets are read from ``costbrake.gateway.telemetry`` (whose unit tests
check them against the EMF it prints): a SEARCH schema or a metric row must name one of those sets exactly, or
CloudWatch finds nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from costbrake.gateway import telemetry
from template_refs import substitute

SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)'")
METRIC_NAME = re.compile(r'MetricName="(?P<name>[^"]+)"')
GRID_COLUMNS = 24


@pytest.fixture
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["CostbrakeDashboard"]["Properties"]["DashboardBody"]
    assert set(body) == {"Fn::Sub"} and isinstance(body["Fn::Sub"], str)
    parsed: dict[str, Any] = json.loads(substitute(body["Fn::Sub"], template))
    return parsed


def metric_rows(dashboard: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every plain metric row of every widget."""
    rows = []
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            fields = [field for field in row if not isinstance(field, dict)]
            if not fields:
                continue  # an expression row
            namespace, metric, *pairs = fields
            assert namespace != ".", "no shorthand rows: each row names its namespace, metric and dimensions"
            assert len(pairs) % 2 == 0, row
            rows.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return rows


def searches(dashboard: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    """(namespace, dimension names, metric) of every SEARCH expression."""
    found = []
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            for field in row:
                if isinstance(field, dict) and "expression" in field:
                    match = SEARCH.search(field["expression"])
                    assert match, field["expression"]
                    namespace, *dimensions = (part.strip() for part in match["schema"].split(","))
                    metric = METRIC_NAME.search(match["terms"])
                    assert metric, f"{field['expression']} names no MetricName"
                    found.append((namespace, tuple(dimensions), metric["name"]))
    return found


def costbrake_uses(dashboard: dict[str, Any]) -> set[tuple[str, frozenset[str]]]:
    """(metric, dimension set) of every Costbrake metric the dashboard shows."""
    uses = {(metric, frozenset(dims)) for ns, metric, dims in metric_rows(dashboard) if ns == telemetry.NAMESPACE}
    uses |= {(metric, frozenset(dims)) for ns, dims, metric in searches(dashboard) if ns == telemetry.NAMESPACE}
    return uses


def test_given_dashboard_when_substituted_then_widgets_fit_the_grid_and_show_the_stacks_region(dashboard):
    widgets = dashboard["widgets"]

    assert len(widgets) > 10
    for widget in widgets:
        assert widget["x"] + widget["width"] <= GRID_COLUMNS
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "us-east-1"
            assert widget["properties"]["metrics"]


def test_given_dashboard_when_read_then_every_costbrake_metric_is_emitted_with_exactly_that_dimension_set(dashboard):
    emitted = {
        (metric, frozenset(dimension_set))
        for metric, dimension_sets in telemetry.emitted_metrics().items()
        for dimension_set in dimension_sets
    }

    used = costbrake_uses(dashboard)

    assert used and used <= emitted, used - emitted
    assert {metric for metric, _ in used} == set(telemetry.emitted_metrics()), "a metric the gateway emits is unshown"


def test_given_dashboard_when_read_then_searches_filter_on_the_gateway_service(dashboard):
    expressions = [
        field["expression"]
        for widget in dashboard["widgets"]
        for row in widget["properties"].get("metrics", [])
        for field in row
        if isinstance(field, dict) and "expression" in field
    ]

    assert expressions
    assert all(f'service="{telemetry.SERVICE}"' in expression for expression in expressions)
    plain = [dims for ns, _, dims in metric_rows(dashboard) if ns == telemetry.NAMESPACE]
    assert all(dims["service"] == telemetry.SERVICE for dims in plain)


def test_given_dashboard_when_read_then_every_function_shows_errors_and_stream_consumers_their_iterator_age(
    dashboard, template
):
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    consumers = {
        name
        for name in functions
        if any(e["Type"] == "DynamoDB" for e in template["Resources"][name]["Properties"].get("Events", {}).values())
    }
    lambda_rows = [(metric, dims["FunctionName"]) for ns, metric, dims in metric_rows(dashboard) if ns == "AWS/Lambda"]

    assert {"ReporterFunction", "GatewayFunction"} <= functions
    assert consumers == {"AggregatorFunction", "AnomalyFunction"}
    assert {name for metric, name in lambda_rows if metric == "Errors"} == functions
    assert {name for metric, name in lambda_rows if metric == "IteratorAge"} == consumers
    assert {"Throttles", "Duration"} <= {metric for metric, name in lambda_rows if name == "GatewayFunction"}


def test_given_dashboard_when_read_then_api_tables_and_failure_queue_are_watched(dashboard, template):
    rows = metric_rows(dashboard)
    tables = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}

    api = {(metric, dims["ApiName"], dims["Stage"]) for ns, metric, dims in rows if ns == "AWS/ApiGateway"}
    # An Api without a Name is named after the stack by SAM; Stage is SAM's stage resource of CostbrakeApi.
    assert "Name" not in template["Resources"]["CostbrakeApi"]["Properties"]
    assert {"4XXError", "5XXError", "Latency"} <= {metric for metric, name, stage in api if name == "costbrake"}
    assert {stage for _, _, stage in api} == {"CostbrakeApi.Stage"}
    throttles = {(metric, dims["TableName"]) for ns, metric, dims in rows if ns == "AWS/DynamoDB"}
    for table in tables:
        assert {("ReadThrottleEvents", table), ("WriteThrottleEvents", table)} <= throttles
    queues = {dims["QueueName"] for ns, _, dims in rows if ns == "AWS/SQS"}
    assert queues == {"PipelineFailureQueue.QueueName"}


def test_given_outputs_when_resolved_then_dashboard_url_opens_the_dashboard(template):
    url = substitute(template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"], template)

    assert url == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=CostbrakeDashboard"
    )
    assert template["Resources"]["CostbrakeDashboard"]["Properties"]["DashboardName"] == {"Ref": "AWS::StackName"}


def test_given_the_over_reservation_alarm_then_it_watches_a_metric_and_dimension_set_the_gateway_emits(
    template: dict[str, Any],
):
    alarm = template["Resources"]["SettledAboveReservedAlarm"]["Properties"]

    dimensions = {pair["Name"]: pair["Value"] for pair in alarm["Dimensions"]}
    assert alarm["Namespace"] == telemetry.NAMESPACE
    assert tuple(sorted(dimensions)) in telemetry.emitted_metrics()[alarm["MetricName"]]
    assert dimensions["service"] == telemetry.SERVICE
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
