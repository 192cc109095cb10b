"""The gateway streams on AWS: Lambda Web Adapter, API Gateway REST with a STREAM integration, or a streaming URL.

The AWS facts these checks rely on, with their sources and the ones only a real deploy proves, are in docs/aws.md.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.eventually import eventually
from template_refs import resolve, substitute

ADAPTER_LAYER = re.compile(r"^arn:aws:lambda:\$\{AWS::Region\}:753240598075:layer:LambdaAdapterLayerArm64:(\d+)$")
STREAMING_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2021-11-15/functions/GatewayFunction.Arn/response-streaming-invocations"
)
MAX_STREAMING_INTEGRATION_MS = 15 * 60 * 1000  # API Gateway REST response streaming: up to 15 minutes


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


@pytest.fixture
def gateway(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["GatewayFunction"]["Properties"]
    return properties


@pytest.fixture
def api(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["CostbrakeApi"]["Properties"]
    return properties


def test_given_gateway_then_it_runs_run_sh_behind_the_web_adapter_layer_in_response_stream_mode(gateway):
    variables = gateway["Environment"]["Variables"]
    adapter_layers = [
        layer["Fn::Sub"]
        for layer in gateway["Layers"]
        if isinstance(layer, dict) and ADAPTER_LAYER.match(layer.get("Fn::Sub", ""))
    ]

    assert len(adapter_layers) == 1, gateway["Layers"]
    assert gateway["Handler"] == "run.sh"
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"].lower() == "response_stream"
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert variables["AWS_LWA_PORT"] == "8080"


def test_given_gateway_build_then_run_sh_is_copied_executable(repo_root: Path) -> None:
    makefile = (repo_root / "functions" / "gateway" / "Makefile").read_text(encoding="utf-8")

    assert re.search(r"install -m 0?755 run\.sh \"\$\(ARTIFACTS_DIR\)/run\.sh\"", makefile)
    assert (repo_root / "functions" / "gateway" / "run.sh").stat().st_mode & stat.S_IXUSR


def test_given_run_sh_when_started_as_the_adapter_does_then_uvicorn_serves_the_asgi_app_on_the_adapter_port(
    repo_root: Path, tmp_path: Path
) -> None:
    # A stand-in `python` records what the runtime's interpreter would be asked to run.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_python = fake_bin / "python"
    fake_python.write_text('#!/bin/sh\nprintf "%s\\n" "$PYTHONPATH" "$@"\n', encoding="utf-8")
    fake_python.chmod(0o755)
    env = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "AWS_LWA_PORT": "9123",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LAMBDA_TASK_ROOT": "/var/task",
    }

    result = subprocess.run(
        [str(repo_root / "functions" / "gateway" / "run.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    pythonpath, *argv = result.stdout.splitlines()
    assert pythonpath.split(":")[:3] == ["/opt/python", "/var/runtime", "/var/task"]
    assert argv[:4] == ["-m", "uvicorn", "--factory", "costbrake.gateway.asgi:create_app"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"  # the adapter's default AWS_LWA_HOST
    assert argv[argv.index("--port") + 1] == "9123"


def test_given_api_definition_then_every_path_and_method_reaches_the_gateway_through_a_streaming_integration(
    api, template
):
    paths = api["DefinitionBody"]["paths"]
    integration_ms = int(template["Parameters"]["IntegrationTimeoutSeconds"]["Default"]) * 1000

    assert set(paths) == {"/", "/{proxy+}"}
    for path, operations in paths.items():
        assert set(operations) == {"x-amazon-apigateway-any-method"}, path
        integration = operations["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert integration["httpMethod"] == "POST"
        assert integration["responseTransferMode"] == "STREAM"
        assert resolve(integration["uri"], template) == STREAMING_URI
        assert int(resolve(integration["timeoutInMillis"], template)) == integration_ms
    assert template["Parameters"]["IntegrationTimeoutSeconds"]["MaxValue"] * 1000 <= MAX_STREAMING_INTEGRATION_MS


def test_given_api_then_it_is_a_regional_rest_api_on_stage_api_redeployed_on_every_update(api):
    assert api["EndpointConfiguration"]["Type"] == "REGIONAL"  # 5-minute idle timeout for streams (edge: 30 s)
    assert api["StageName"] == "api"
    assert api["AlwaysDeploy"] is True


def test_given_sam_transform_when_run_twice_then_each_run_creates_a_new_deployment(sam_transform, template):
    first = sam_transform()
    # SAM hashes int(time.time()) into the deployment id under AlwaysDeploy: the second run is in a later second.
    started = int(time.time())
    eventually(lambda: int(time.time()), until=lambda now: now != started, timeout=2, what="the next second")
    second = sam_transform()

    deployments = [set(resources_of_type(cfn, "AWS::ApiGateway::Deployment")) for cfn in (first, second)]
    assert all(len(names) == 1 for names in deployments)
    assert deployments[0] != deployments[1], "AlwaysDeploy: a stack update must redeploy the stage"
    (stage,) = resources_of_type(first, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "api"
    assert stage["Properties"]["DeploymentId"] == {"Ref": next(iter(deployments[0]))}


def test_given_sam_transform_then_the_rest_api_is_named_after_the_stack_as_the_dashboard_expects(sam_transform):
    rest_api = sam_transform()["Resources"]["CostbrakeApi"]

    assert rest_api["Type"] == "AWS::ApiGateway::RestApi"
    assert "Name" not in rest_api["Properties"]  # so the name is the OpenAPI title
    assert rest_api["Properties"]["Body"]["info"]["title"] == {"Ref": "AWS::StackName"}
    assert rest_api["DependsOn"] == "ApiGatewayAccount"  # the access logs need the account's CloudWatch role


def test_given_api_then_a_permission_lets_this_api_alone_invoke_the_gateway(template):
    permissions = [
        r["Properties"]
        for r in resources_of_type(template, "AWS::Lambda::Permission").values()
        if r["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]

    assert len(permissions) == 1
    (permission,) = permissions
    assert permission["Action"] == "lambda:InvokeFunction"  # also authorises InvokeWithResponseStream
    assert permission["FunctionName"] == {"Ref": "GatewayFunction"}
    assert resolve(permission["SourceArn"], template) == "arn:aws:execute-api:us-east-1:123456789012:CostbrakeApi/*"
    assert "Events" not in template["Resources"]["GatewayFunction"]["Properties"]  # routes live in the body only


def test_given_function_url_option_then_it_streams_without_iam_auth_and_is_off_by_default(template):
    url = template["Resources"]["GatewayFunctionUrl"]
    permissions = {
        r["Properties"]["Action"]: r
        for r in resources_of_type(template, "AWS::Lambda::Permission").values()
        if r["Properties"]["Principal"] == "*"
    }

    assert template["Parameters"]["EnableFunctionUrl"]["Default"] == "false"
    assert template["Conditions"]["HasFunctionUrl"] == {"Fn::Equals": [{"Ref": "EnableFunctionUrl"}, "true"]}
    assert url["Condition"] == "HasFunctionUrl"
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    assert url["Properties"]["AuthType"] == "NONE"  # the gateway authenticates every call with costbrake keys
    assert url["Properties"]["TargetFunctionArn"] == {"Fn::GetAtt": ["GatewayFunction", "Arn"]}
    # Since October 2025 a new function URL needs both; the second is limited to calls through the URL.
    assert set(permissions) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert permissions["lambda:InvokeFunctionUrl"]["Properties"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["Properties"]["InvokedViaFunctionUrl"] is True
    assert all(p["Condition"] == "HasFunctionUrl" for p in permissions.values())
    url_outputs = [o for o in template["Outputs"].values() if o.get("Condition") == "HasFunctionUrl"]
    assert len(url_outputs) == 2


def test_given_stage_then_throttling_parameters_feed_every_method(api, template):
    (settings,) = api["MethodSettings"]
    parameters = template["Parameters"]

    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}
    assert parameters["ThrottlingRateLimit"]["Default"] >= 1
    assert parameters["ThrottlingBurstLimit"]["Default"] >= parameters["ThrottlingRateLimit"]["Default"]


def test_given_reserved_concurrency_parameter_then_zero_leaves_the_gateway_unreserved(gateway, template):
    assert template["Parameters"]["GatewayReservedConcurrency"]["Default"] == 0
    assert template["Conditions"]["HasGatewayReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "GatewayReservedConcurrency"}, 0]}]
    }
    assert gateway["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasGatewayReservedConcurrency", {"Ref": "GatewayReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }


def test_given_access_log_format_then_it_is_one_json_object_with_request_id_status_and_latency(api, template):
    setting = api["AccessLogSetting"]
    fields = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", setting["Format"]))
    log_group = template["Resources"][setting["DestinationArn"]["Fn::GetAtt"][0]]

    assert "\n" not in setting["Format"]
    assert {"requestId", "status", "responseLatency", "integrationLatency"} <= set(fields)
    assert "Authorization" not in setting["Format"] and "header" not in setting["Format"].lower()
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_given_access_logs_then_the_account_role_api_gateway_logs_through_is_set_and_kept(template):
    account = template["Resources"]["ApiGatewayAccount"]
    role = template["Resources"][account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]
    statement = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]

    assert template["Resources"]["CostbrakeApi"]["DependsOn"] == "ApiGatewayAccount"
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert [substitute(arn["Fn::Sub"], template) for arn in role["Properties"]["ManagedPolicyArns"]] == [
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    ]
    # One account-wide setting per region: other APIs may log through it after this stack is gone.
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"


def test_given_every_function_then_it_logs_to_a_log_group_of_its_own_with_retention(template):
    functions = resources_of_type(template, "AWS::Serverless::Function")
    retention = template["Parameters"]["LogRetentionDays"]

    log_groups = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()]

    assert len(functions) == 6  # gateway, sweeper, aggregator, anomaly, reporter, reconciler
    assert len(set(log_groups)) == len(log_groups)
    for name in log_groups:
        group = template["Resources"][name]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert retention["Default"] == 30 and 30 in retention["AllowedValues"]


def test_given_runtime_then_functions_layer_and_layer_build_agree_on_python_3_11(template, repo_root: Path):
    makefile = (repo_root / "layers" / "deps" / "Makefile").read_text(encoding="utf-8")
    build_version = re.search(r"^RUNTIME_PYTHON := (\S+)$", makefile, re.MULTILINE)
    functions = resources_of_type(template, "AWS::Serverless::Function").values()

    assert template["Globals"]["Function"]["Runtime"] == "python3.11"
    assert all("Runtime" not in f["Properties"] for f in functions)
    assert template["Resources"]["DependencyLayer"]["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    assert build_version and build_version[1] == "3.11"


def test_given_layer_build_with_another_python_then_it_stops_before_installing_anything(
    repo_root: Path, tmp_path: Path
) -> None:
    # sitecustomize makes this interpreter report 3.12, as a build machine with the wrong Python would.
    fake_site = tmp_path / "site"
    fake_site.mkdir()
    (fake_site / "sitecustomize.py").write_text(
        "import sys\nsys.version_info = (3, 12, 1, 'final', 0)\nsys.version = '3.12.1 (fake)'\n", encoding="utf-8"
    )
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "PYTHONPATH": str(fake_site)}

    result = subprocess.run(
        ["make", "-f", str(repo_root / "layers" / "deps" / "Makefile"), "build-DependencyLayer"],
        env={**env, "ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "python3.11" in result.stderr and "3.12.1" in result.stderr
    assert not artifacts.exists()


def test_given_guided_deploy_then_sam_cli_has_no_authentication_prompt_that_would_stop_it(
    sam_executable: str, repo_root: Path
) -> None:
    # `sam deploy --guided` asks "<function> has no authentication. Is this okay?" (default N) for each entry
    # that auth_per_resource reports; the gateway authenticates calls itself, so none may be reported.
    python = Path(sam_executable).resolve().parent / "python"
    script = (
        "from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider\n"
        "from samcli.commands.deploy.auth_utils import auth_per_resource\n"
        "for url in ('false', 'true'):\n"
        "    stacks, _ = SamLocalStackProvider.get_stacks('template.yaml', "
        "parameter_overrides={'EnableFunctionUrl': url})\n"
        "    print(url, auth_per_resource(stacks))\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}

    result = subprocess.run(
        [str(python), "-c", script], cwd=repo_root, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["false []", "true []"]
