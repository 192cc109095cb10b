"""Shared test configuration: no test may reach real AWS."""

import os

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# Fake credentials and a region, so a misconfigured boto3 call fails locally instead of reaching AWS.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
# The CLI sizes its tables by $COLUMNS, as in a shell: the tests read it as a pipe does, whatever the terminal
# (pytest-xdist's workers run with COLUMNS=80, too narrow for the CLI's tables).
os.environ.pop("COLUMNS", None)
# `make test` runs two test files at a time on a 2-core machine: a property test's input generation or an example
# that the busy machine slows down is no failure (assertions are untouched; a test's own settings still apply).
hypothesis_settings.register_profile("costbrake", suppress_health_check=[HealthCheck.too_slow], deadline=None)
hypothesis_settings.load_profile("costbrake")

# The longest test files (seconds on a 2-core machine), run first within their suite. `make test` hands whole files
# to its pytest-xdist workers in this order: a long file started last would keep one worker busy while the other
# idles. Only the order changes: each suite (unit, infra, integration) still runs before the next one given.
LONGEST_FIRST = (
    "test_incident_replay.py",  # ~100 s: the incident replayed through its own in-process stack
    "test_token_bound.py",  # ~70 s: 20,000 generated strings against the reference tokenizers
    "test_streaming.py",  # ~45 s: a 31-second stream (issue 9) and other real-time streams
    "test_cli_operators.py",
    "test_adversarial.py",
    "test_cost_reducers.py",
    "test_aggregator.py",
    "test_operator_actions.py",
    "test_dependency_layer.py",  # sam build
    "test_template_streaming.py",  # the SAM transform, run several times
    "test_sam_validate.py",
)


def _suite(item: pytest.Item) -> tuple[str, ...]:
    """tests/<suite>, or the folder of a test outside tests/."""
    try:
        return item.path.relative_to(item.config.rootpath).parts[:2]
    except ValueError:
        return item.path.parent.parts


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    suites: dict[tuple[str, ...], int] = {}
    for item in items:
        suites.setdefault(_suite(item), len(suites))
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (suites[_suite(item)], rank.get(item.path.name, len(rank))))
