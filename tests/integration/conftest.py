"""The local stack over HTTP: official SDKs → local API gateway → handler → moto server / mock provider."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
from click.testing import CliRunner, Result
from costbrake.cli import main
from costbrake.gateway.asgi import build_app
from costbrake.gateway.service import Gateway
from costbrake.local.app_server import AppServer
from costbrake.local.mock_provider import MockProvider
from costbrake.local.stack import LocalStack
from costbrake.operations.keys import create_key
from costbrake.operations.users import set_user_limits
from costbrake.records import Limits
from costbrake.wiring import gateway_from_settings

# Short provider timeout so the timeout test is quick; the cache is short so switch flips land fast.
STACK_SETTINGS = {
    "provider_timeout_seconds": 2.0,
    "provider_idle_timeout_seconds": 1.5,
    "settings_cache_seconds": 1.0,
    "global_month_usd": Decimal("100000"),
}


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    # The sweeper and the anomaly backstop run when a test calls them, not on a timer in the middle of another test.
    # Alerts are printed to the real stderr: the CLI tests' runner swaps sys.stdout, and an alert printed by the
    # stack's pipeline thread meanwhile would land in a command's output.
    with LocalStack(
        settings_overrides=STACK_SETTINGS,
        mock_only=True,
        sweep_seconds=3600,
        anomaly_backstop_seconds=3600,
        echo=lambda line: print(line, file=sys.__stderr__),
    ) as running:
        yield running


@pytest.fixture
def mock(stack: LocalStack) -> MockProvider:
    assert stack.mock_provider is not None, "the integration stack runs against the mock provider"
    return stack.mock_provider


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_key(stack: LocalStack) -> Callable[..., str]:
    def make(
        user: str | None = None,
        *,
        service: bool = False,
        feature: str | None = None,
        features: Sequence[str] = (),
        any_feature: bool = False,
        limits: Limits | None = None,
        key_limits: Limits | None = None,
    ) -> str:
        """A key: ``feature`` (its default) and ``features`` are what it may charge (none: "default" only);
        ``limits`` the user's own, ``key_limits`` the key's."""
        assert stack.stores is not None
        new = create_key(
            stack.stores.admin,
            stack.clock,
            user_id=user,
            tier="free",
            service=service,
            feature=feature,
            features=features,
            any_feature=any_feature,
            limits=key_limits,
        )
        if user and limits:
            set_user_limits(stack.stores.admin, stack.clock, user, limits, "test")
        return new.secret

    return make


class RequestLog:
    """Counts the HTTP requests an SDK sends (to prove it did not retry)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture
def openai_client(stack: LocalStack, request_log: RequestLog) -> Callable[..., openai.OpenAI]:
    def make(key: str, max_retries: int = 2) -> openai.OpenAI:
        http = httpx.Client(event_hooks={"request": [request_log]})
        return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=max_retries, http_client=http)

    return make


@pytest.fixture
def anthropic_client(stack: LocalStack, request_log: RequestLog) -> Callable[..., anthropic.Anthropic]:
    def make(key: str, max_retries: int = 2) -> anthropic.Anthropic:
        http = httpx.Client(event_hooks={"request": [request_log]})
        return anthropic.Anthropic(base_url=stack.url, api_key=key, max_retries=max_retries, http_client=http)

    return make


@dataclass
class Cli:
    """Runs `costbrake` commands as an operator would, in a shell with `costbrake local`'s exports."""

    runner: CliRunner

    def __call__(self, *args: str) -> str:
        """stdout of a command that must succeed."""
        result = self.runner.invoke(main, list(args), catch_exceptions=False, terminal_width=160)
        assert result.exit_code == 0, result.output
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def fails(self, *args: str) -> Result:
        result = self.runner.invoke(main, list(args))
        assert result.exit_code != 0, result.output
        return result


@pytest.fixture
def cli(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name, value in stack.env_exports().items():
        monkeypatch.setenv(name, value)
    return Cli(CliRunner())


@pytest.fixture(scope="session")
def serve_gateway(stack: LocalStack) -> Callable[..., AbstractContextManager[tuple[str, Gateway]]]:
    """``with serve_gateway(**settings) as (url, gateway)``: one more gateway app for the block, with settings of
    its own, on the stack's stores and mock provider (``own_stores=True``: stores built from its settings)."""

    @contextmanager
    def serve(*, own_stores: bool = False, **overrides: Any) -> Iterator[tuple[str, Gateway]]:
        assert stack.settings is not None
        settings = stack.settings.model_copy(update=overrides)
        gateway = gateway_from_settings(settings, stack.clock, None if own_stores else stack.stores)
        server = AppServer(build_app(gateway))
        try:
            yield server.start(), gateway
        finally:
            server.stop()

    return serve
