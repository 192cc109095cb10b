"""Each Lambda loads only what it uses: the pipeline functions never pay for the gateway's hot path at cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
GATEWAY_ONLY = ("costbrake.gateway.service", "costbrake.gateway.relay", "costbrake.tokens", "starlette", "uvicorn")
PROVIDER_SDKS = ("openai", "anthropic")


@pytest.mark.parametrize("function", ["aggregator", "anomaly", "sweeper", "reporter", "reconciler"])
def test_given_a_pipeline_function_when_its_handler_is_imported_then_the_gateway_and_provider_sdks_stay_unloaded(
    function,
):
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(FUNCTIONS / function / 'app.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "COSTBRAKE_LEDGER_TABLE": "ledger", "COSTBRAKE_CALLS_TABLE": "calls"}

    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], env=env, text=True)))

    assert "costbrake" in loaded
    assert not loaded & set(GATEWAY_ONLY), sorted(loaded & set(GATEWAY_ONLY))
    assert not loaded & set(PROVIDER_SDKS)


@pytest.mark.parametrize(
    "rules",
    [
        "costbrake.policy",
        "costbrake.budgets",
        "costbrake.gateway.planner",
        "costbrake.gateway.bounds",
        "costbrake.tokens",
    ],
)
def test_given_a_module_of_rules_when_imported_then_no_storage_is_loaded(rules):
    code = f"import json, sys, {rules}\nprint(json.dumps(sorted(sys.modules)))"

    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))

    storage = sorted(name for name in loaded if name.startswith(("costbrake.dal", "pynamodb", "boto3")))
    assert storage == []
