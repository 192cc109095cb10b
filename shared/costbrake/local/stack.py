"""`costbrake local`: moto's server, tables from template.yaml, the gateway on loopback, a mock provider.

Processes: moto's server always runs in a child process (``MotoServer``); the gateway app runs either in a child
process of its own (``gateway_process=True``, what `costbrake local` does: uvicorn with the factory
``costbrake.gateway.asgi:create_app``, as in Lambda) or in a thread of this process (the default, for tests
that reach into ``stack.gateway``). The pipeline (stream poller, sweeper and anomaly schedules) and the mock
provider run in this process. Either way the request path shares no interpreter with moto or the pipeline
when it matters: in the child-process mode not at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from costbrake.clock import Clock, SystemClock
from costbrake.config import LocalStackSettings, Settings
from costbrake.gateway.asgi import build_app
from costbrake.gateway.service import Gateway
from costbrake.local.alerts import PrintingPublisher
from costbrake.local.app_server import AppProcess, AppServer, settings_environment
from costbrake.local.mock_admin import ANTHROPIC_ADMIN_KEY, OPENAI_ADMIN_KEY, MockAdmin, start_admin_mock
from costbrake.local.mock_provider import MockProvider
from costbrake.local.moto_server import MotoServer
from costbrake.local.schedule import Every
from costbrake.local.streams import StreamPoller, streams_client, subscriptions_from_template
from costbrake.local.template import create_tables, load_template
from costbrake.operations.budgets import seed_defaults
from costbrake.operations.keys import create_key
from costbrake.pipeline.aggregator import RollupBatchProcessor, stream_handler
from costbrake.pipeline.alerts import LoggingPublisher, SnsPublisher
from costbrake.pipeline.monitor import Monitor, on_stream_batch
from costbrake.pipeline.sweeper import sweep
from costbrake.wiring import Stores, gateway_from_settings, stores_from_settings

# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
TABLE_PREFIX = "costbrake-local"
DEV_USER = "dev-user"


@dataclass
class LocalStack:
    """Everything `make dev` runs: this process's threads and its child processes (see the module's docstring)."""

    port: int = 0
    moto_port: int = 0
    dev_key: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    template_path: Path | None = None
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    seed: bool = True
    mock_only: bool = False  # tests and benchmarks never call real providers, whatever the environment holds
    sweep_seconds: float = 60.0  # the template schedules the sweeper every minute
    anomaly_backstop_seconds: float = 300.0  # and the anomaly function every 5 minutes, besides its stream
    echo: Callable[[str], None] = print  # where alerts are shown
    # The gateway app in a child process of its own (uvicorn --factory costbrake.gateway.asgi:create_app, as in
    # Lambda), wired from this stack's settings. ``stack.gateway`` is then a twin built from the same settings
    # and stores (for admit(), forget_cached() and the like); it does not serve the HTTP requests.
    gateway_process: bool = False
    gateway_output: Any = None  # where that child prints (its logs): None inherits this process's stdout

    def __post_init__(self) -> None:
        self.moto = MotoServer(port=self.moto_port)
        self.mock_provider: MockProvider | None = None
        self.mock_admin: MockAdmin | None = None
        self.admin_url: str | None = None
        self.app_server: AppServer | AppProcess | None = None
        self.settings: Settings | None = None
        self.stores: Stores | None = None
        self.gateway: Gateway | None = None
        self.table_names: dict[str, str] = {}
        self.dev_secret: str | None = None
        self.schedules: list[Every] = []
        self.stream_poller: StreamPoller | None = None
        self.dead_letters: list[dict[str, Any]] = []  # the on-failure queue of the stream consumers
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> LocalStack:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no child process or environment change outlives a failed start
            raise

    def _start(self) -> LocalStack:
        moto_url = self.moto.start()
        # boto3 in this process (the CLI, tests) talks to moto; stop() puts the environment back.
        exports = {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": moto_url}
        self._saved_env = {name: os.environ.get(name) for name in exports}
        os.environ.update(exports)
        dynamodb = boto3.client("dynamodb", endpoint_url=moto_url, region_name=LOCAL_AWS_ENV["AWS_REGION"])
        template = load_template(self.template_path)
        self.table_names = create_tables(dynamodb, template, TABLE_PREFIX)

        overrides: dict[str, Any] = {
            "ledger_table": self.table_names["LedgerTable"],
            "calls_table": self.table_names["CallsTable"],
            "cache_table": self.table_names["ResponseCacheTable"],
            "dynamodb_endpoint_url": moto_url,
            "aws_region": LOCAL_AWS_ENV["AWS_REGION"],
        }
        real_keys = {} if self.mock_only else LocalStackSettings().provider_keys()
        if real_keys:
            overrides |= {f"{name}_api_key": key for name, key in real_keys.items()}
        else:
            self.mock_provider = MockProvider(clock=self.clock)
            mock_url = self.mock_provider.start()
            # The providers' admin usage/cost APIs, from what the mock billed: `costbrake reconcile` works locally.
            self.mock_admin, self.admin_url = start_admin_mock(self.mock_provider, clock=self.clock)
            overrides |= {
                "openai_base_url": mock_url,
                "anthropic_base_url": mock_url,
                "openai_api_key": "mock-openai-key",
                "anthropic_api_key": "mock-anthropic-key",
            }
        sns = boto3.client("sns", endpoint_url=moto_url, region_name=LOCAL_AWS_ENV["AWS_REGION"])
        topic_arn = sns.create_topic(Name=f"{TABLE_PREFIX}-alerts")["TopicArn"]
        overrides["alert_topic_arn"] = topic_arn
        overrides |= self.settings_overrides
        self.settings = Settings(**overrides)
        self.stores = stores = stores_from_settings(self.settings)
        # The pipeline on a client of its own, as its Lambdas are: faults injected into the gateway's stay there.
        pipeline = stores_from_settings(self.settings)
        self.alerts = PrintingPublisher(LoggingPublisher(SnsPublisher(sns, topic_arn), pipeline.alerts), echo=self.echo)
        if self.seed:
            seed_defaults(stores.admin, self.clock, self.settings)
        new_key = create_key(
            stores.admin,
            self.clock,
            user_id=DEV_USER,
            tier="pro",
            service=False,
            feature="chat",
            any_feature=True,  # a developer tries every configured feature with the one key
            name="dev key (costbrake local)",
            secret=self.dev_key,
        )
        self.dev_secret = new_key.secret
        self.gateway = gateway_from_settings(self.settings, self.clock, stores)
        if self.gateway_process:
            environment = {**os.environ, **settings_environment(self.settings)}
            self.app_server = AppProcess(environment, port=self.port, output=self.gateway_output)
        else:
            self.app_server = AppServer(build_app(self.gateway), port=self.port)
        self.app_server.start()
        clock = self.clock
        # The stream consumers, with the event-source settings the template gives them.
        aggregator = stream_handler(RollupBatchProcessor(pipeline.rollups, self.clock))
        self.monitor = Monitor(
            pipeline.admin, pipeline.alerts, pipeline.rollups, self.settings, self.clock, self.alerts
        )
        anomaly = on_stream_batch(self.monitor, pipeline.alerts, self.clock)
        consumers = {"AggregatorFunction": aggregator, "AnomalyFunction": anomaly}
        self.schedules = [
            Every(self.sweep_seconds, lambda: sweep(pipeline.reservations, clock), "sweeper").start(),
            Every(self.anomaly_backstop_seconds, lambda: anomaly({}, None), "anomaly-backstop").start(),
        ]
        subscriptions = subscriptions_from_template(
            template, self.table_names, consumers, on_failure=self.dead_letters.append
        )
        streams = streams_client(moto_url, LOCAL_AWS_ENV["AWS_REGION"])
        self.stream_poller = StreamPoller(streams, dynamodb, subscriptions, clock=self.clock).start()
        return self

    def pause_pipeline(self) -> None:
        """Stop the stream consumers and scheduled functions (for measuring the gateway alone)."""
        if self.stream_poller:
            self.stream_poller.stop()
        for schedule in self.schedules:
            schedule.stop()

    def stop(self) -> None:
        self.pause_pipeline()
        if self.app_server:
            self.app_server.stop()
            self.app_server = None
        if self.mock_admin:
            self.mock_admin.stop()
        if self.mock_provider:
            self.mock_provider.stop()
        self.moto.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.app_server is not None, "start() first"
        return self.app_server.url

    def env_exports(self) -> dict[str, str]:
        """What a shell needs for the CLI (or boto3) to talk to this stack."""
        assert self.settings is not None
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            **LOCAL_AWS_ENV,
            "COSTBRAKE_LEDGER_TABLE": self.settings.ledger_table,
            "COSTBRAKE_CALLS_TABLE": self.settings.calls_table,
            **({"COSTBRAKE_CACHE_TABLE": self.settings.cache_table} if self.settings.cache_table else {}),
            **({"COSTBRAKE_ALERT_TOPIC_ARN": self.settings.alert_topic_arn} if self.settings.alert_topic_arn else {}),
            **self._admin_exports(),
        }

    def _admin_exports(self) -> dict[str, str]:
        """The mock admin APIs and their keys, for `costbrake reconcile` against this stack."""
        if self.admin_url is None:
            return {}
        return {
            "COSTBRAKE_OPENAI_ADMIN_BASE_URL": self.admin_url,
            "COSTBRAKE_ANTHROPIC_ADMIN_BASE_URL": self.admin_url,
            "COSTBRAKE_OPENAI_ADMIN_KEY": OPENAI_ADMIN_KEY,
            "COSTBRAKE_ANTHROPIC_ADMIN_KEY": ANTHROPIC_ADMIN_KEY,
        }
