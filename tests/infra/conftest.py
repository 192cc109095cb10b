from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from costbrake.local.template import create_tables, load_template
from moto import mock_aws

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def sam_executable() -> str:
    """The SAM CLI: $COSTBRAKE_SAM, else `sam` on PATH. Missing is a failure, never a skip."""
    configured = os.environ.get("COSTBRAKE_SAM")
    if configured:
        if not Path(configured).is_file():
            pytest.fail(f"COSTBRAKE_SAM={configured} does not exist; run `make tools` to install the SAM CLI")
        return configured
    found = shutil.which("sam")
    if found is None:
        pytest.fail("SAM CLI not found (set COSTBRAKE_SAM or put `sam` on PATH); run `make tools` to install it")
    return found


@pytest.fixture(scope="session")
def run_sam(sam_executable: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the SAM CLI in the repository, offline-friendly: no telemetry, a fixed region, no AWS account."""

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        env = {
            **{name: value for name, value in os.environ.items() if name != "AWS_PROFILE"},
            "SAM_CLI_TELEMETRY": "0",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        return subprocess.run(
            [sam_executable, *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def sam_transform(sam_executable: str) -> Callable[[Path], dict[str, Any]]:
    """template.yaml after the SAM transform, by the SAM CLI's own translator (its venv's Python), offline."""
    python = Path(sam_executable).resolve().parent / "python"
    if not python.is_file():
        pytest.fail(f"{python} not found: the SAM CLI must be installed in a venv (`make tools`)")
    script = Path(__file__).with_name("sam_transform.py")

    def transform(template_path: Path = TEMPLATE_PATH) -> dict[str, Any]:
        env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
        result = subprocess.run(
            [str(python), str(script), str(template_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        transformed: dict[str, Any] = json.loads(result.stdout)
        return transformed

    return transform


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch, template: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The template's tables in moto in-process (logical id -> table name), with no AWS endpoint or profile
    leaking in from the environment."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for endpoint in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS"):
        monkeypatch.delenv(endpoint, raising=False)
    with mock_aws():
        yield create_tables(boto3.client("dynamodb", region_name="us-east-1"), template, "infra")
